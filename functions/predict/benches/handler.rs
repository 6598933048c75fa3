//! Warm handler cost: a Function URL request with a ~1 KB JSON question -> parse -> predict ->
//! JSON encode, through the same router (`predict::app`, all its layers) that Lambda and
//! `tagger serve` run.
//!
//! Also prints, once, the in-process cold path: `State::new` + the first model load + the first
//! answer (what a Lambda init adds on top of process start and runtime registration).
//!
//! The model is trained on `../shared/data/cooking/train.csv` with the default settings when that
//! file exists (the reference model), else on the tiny built-in CSV (printed).
//! `HANDLER_BENCH_MODEL=<file>` benches a saved model instead, or saves the trained one there
//! when the file does not exist yet. `cargo bench -p predict --bench handler`

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tagger_core::artifact::Artifact;
use tagger_registry::store::LocalStore;
use tagger_train::config::Settings;

const COOKING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cooking/train.csv"
);

fn model() -> (Artifact, &'static str) {
    // A saved artifact skips the training (e.g. under valgrind, where training takes minutes);
    // a path that does not exist yet gets the trained model saved there (see `bench`).
    if let Some(path) = saved_model_path().filter(|p| std::path::Path::new(p).exists()) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let artifact = Artifact::from_bytes(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        return (artifact, "HANDLER_BENCH_MODEL");
    }
    match std::fs::read_to_string(COOKING) {
        Ok(csv) => {
            let t = Instant::now();
            let a = tagger_testkit::train(&csv, &Settings::default(), COOKING);
            eprintln!(
                "trained the cooking model in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            (a, "cooking (default settings)")
        }
        Err(e) => {
            eprintln!("{COOKING} unreadable ({e}): benchmarking the tiny test model instead");
            (tagger_testkit::tiny_artifact(1), "tiny test model")
        }
    }
}

/// `HANDLER_BENCH_MODEL`: a saved model to bench, or where to save the trained one.
fn saved_model_path() -> Option<String> {
    std::env::var("HANDLER_BENCH_MODEL").ok()
}

fn event(body: &str) -> String {
    event_with_query(body, "")
}

fn event_with_query(body: &str, query: &str) -> String {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/predict", "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": "x.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws", "domainPrefix": "x",
            "http": {"method": "POST", "path": "/predict", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "id", "routeKey": "$default", "stage": "$default", "time": "12/Jan/2024:10:15:33 +0000", "timeEpoch": 0
        },
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

fn request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("valid event")
}

/// One request through the router, as `lambda_http::run` sends it: status and body bytes.
async fn answer(app: &axum::Router, req: lambda_http::Request) -> (u16, bytes::Bytes) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = app.clone().oneshot(req).await.expect("the app never fails");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    (status, body)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (artifact, which) = model();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(LocalStore::new(dir.path()));
    rt.block_on(tagger_testkit::publish(store.as_ref(), "", &artifact));
    let model_path = dir
        .path()
        .join(format!("{}/model.bin", artifact.info.version));
    let model_bytes = std::fs::metadata(&model_path).map(|m| m.len()).unwrap_or(0);
    if let Some(path) = saved_model_path().filter(|p| !std::path::Path::new(p).exists()) {
        std::fs::copy(&model_path, &path).unwrap_or_else(|e| panic!("{path}: {e}"));
        eprintln!("saved the trained model to {path}");
    }
    drop(artifact);

    let question = "How long can I keep homemade chicken stock in the fridge before it goes bad, and is it safe \
to freeze it again after thawing? I simmered the bones with onions, carrots and celery for six hours, strained \
it, let it cool on the counter for about two hours and then put it in glass jars. Some recipes say three days, \
others say a week. Does the fat layer on top protect it? Would boiling it again reset the clock, or do the \
bacteria leave toxins behind that boiling does not destroy? I also wonder whether pressure canning is worth it \
for small batches, and how the salt content affects how long the stock keeps in the refrigerator. \
Last time a jar smelled slightly sour after four days even though it looked fine, so I threw it out. Is smell a \
reliable test, or can stock be unsafe without any sign? Should I cool it faster in an ice bath next time, and is \
it fine to store it in plastic containers instead of glass jars in the freezer for a few months at a time?";
    // Pad to ~1 KB with more of the same kind of text.
    let mut question = question.to_owned();
    while question.len() < 1024 {
        question.push_str(" The stock is for soup, risotto and gravy.");
    }
    let body = json!({ "question": question }).to_string();
    assert!(body.len() >= 1000, "{} bytes", body.len());
    let event = event(&body);
    let explain_event = event_with_query(&body, "explain=true");

    // Cold path in-process: state, first load from the folder, first answer.
    let t = Instant::now();
    let config = predict::Config {
        // No pointer checks during the measurement (in Lambda: one per MODEL_REFRESH_SECS).
        refresh: Duration::from_secs(3600),
        ..predict::Config::for_local(dir.path().display().to_string())
    };
    let state = Arc::new(rt.block_on(predict::State::new(store.clone(), "", config)));
    let app = predict::app(Arc::clone(&state));
    let loaded = t.elapsed();
    let (status, body) = rt.block_on(answer(&app, request(&event)));
    let first = t.elapsed();
    assert_eq!(status, 200, "{body:?}");
    eprintln!(
        "model: {which}, {model_bytes} bytes on disk; version {}\n\
         cold (in-process): State::new incl. first load {:.2} ms, + first answer {:.2} ms",
        state
            .models()
            .current()
            .map(|s| s.version().to_owned())
            .unwrap_or_default(),
        loaded.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );

    c.bench_function("app: 1 KB JSON question -> tags (warm)", |b| {
        b.iter_batched(
            || request(&event),
            |req| {
                let (status, body) = rt.block_on(answer(&app, req));
                assert_eq!(status, 200);
                body
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // The same with the per-request metrics document built and serialised (as on Lambda, where
    // it goes to stdout; here to a sink that drops it, so only the document's cost is measured).
    let config = predict::Config {
        metrics: tagger_telemetry::emf::Metrics::with_sink("Tagger", "bench", |_| {}),
        ..state.config().clone()
    };
    let with_metrics = predict::app(Arc::new(rt.block_on(predict::State::new(
        Arc::clone(&store) as Arc<dyn tagger_registry::store::ObjectStore>,
        "",
        config,
    ))));
    c.bench_function(
        "app: 1 KB JSON question -> tags (warm, EMF document written)",
        |b| {
            b.iter_batched(
                || request(&event),
                |req| {
                    let (status, body) = rt.block_on(answer(&with_metrics, req));
                    assert_eq!(status, 200);
                    body
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
    // The same question through the model alone: the router's share is the difference.
    let predictor = tagger_core::Predictor::new(
        Artifact::from_bytes(&std::fs::read(&model_path).expect("model file")).expect("artifact"),
    );
    c.bench_function("predictor alone: same question -> tags", |b| {
        b.iter(|| {
            predictor
                .predict(&question, &Default::default())
                .expect("an answer")
        })
    });
    // explain=true through the router against the library's own predict + explain (prepared
    // explainer): the handler's share of an explanation is the ratio.
    c.bench_function(
        "app: 1 KB JSON question -> tags + explanation (warm)",
        |b| {
            b.iter_batched(
                || request(&explain_event),
                |req| {
                    let (status, body) = rt.block_on(answer(&app, req));
                    assert_eq!(status, 200);
                    body
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
    c.bench_function(
        "predictor alone: same question -> tags + explanation (prepared explainer)",
        |b| {
            b.iter(|| {
                let p = predictor
                    .predict(&question, &Default::default())
                    .expect("an answer");
                predictor
                    .explain(&question, &p.tags, &Default::default())
                    .expect("an explanation")
            })
        },
    );
    c.bench_function(
        "event JSON -> lambda_http::Request (runtime side, not the handler)",
        |b| b.iter(|| request(&event)),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
