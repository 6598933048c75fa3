//! Application tests through real `lambda_http` requests: fixture events (the same files
//! `cargo lambda invoke --data-file` takes) and Function URL events built per case, each sent
//! through the whole router with its layers, as `lambda_http::run` does.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http_body_util::BodyExt;
use lambda_http::{Body, Request};
use serde_json::{json, Value};
use tagger_core::artifact::Artifact;
use tagger_core::predictor::PredictOptions;
use tagger_registry::store::MemoryStore;

use tower::ServiceExt;

use super::*;
use crate::{routes, Config};

const PREFIX: &str = "models";

type Response = http::Response<Bytes>;

struct Setup {
    store: Arc<MemoryStore>,
    state: Arc<State>,
    artifact: Artifact,
}

fn config() -> Config {
    Config {
        refresh: Duration::ZERO,
        ..Config::for_local("memory://")
    }
}

async fn with_config(config: Config) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let artifact = tagger_testkit::tiny_artifact(1);
    tagger_testkit::publish(store.as_ref(), PREFIX, &artifact).await;
    let state = Arc::new(State::new(store.clone(), PREFIX, config).await);
    Setup {
        store,
        state,
        artifact,
    }
}

async fn setup() -> Setup {
    with_config(config()).await
}

async fn empty() -> (Arc<MemoryStore>, Arc<State>) {
    let store = Arc::new(MemoryStore::new());
    let state = Arc::new(State::new(store.clone(), PREFIX, config()).await);
    (store, state)
}

/// A Function URL event as AWS sends it, through lambda_http's own deserializer.
fn event(
    method: &str,
    path: &str,
    query: &str,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Request {
    let mut headers =
        json!({"host": "abc.lambda-url.us-east-1.on.aws", "x-forwarded-proto": "https"});
    if let Some(ct) = content_type {
        headers["content-type"] = json!(ct);
    }
    let (body, base64) = match body {
        None => (Value::Null, false),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (json!(s), false),
            Err(_) => (json!(b64(b)), true),
        },
    };
    let ev = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
            "requestId": "id", "routeKey": "$default", "stage": "$default",
            "time": "12/Jan/2024:10:15:33 +0000", "timeEpoch": 1705054533000u64
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    lambda_http::request::from_str(&ev.to_string()).expect("valid function URL event")
}

fn post_json(path: &str, query: &str, body: &Value) -> Request {
    event(
        "POST",
        path,
        query,
        Some("application/json"),
        Some(body.to_string().as_bytes()),
    )
}

/// Standard base64, so binary bodies travel as Lambda sends them.
fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Status, JSON body and `x-model-version`, after checking the content type every response must carry.
fn parts(resp: Response) -> (u16, Value, Option<String>) {
    assert_eq!(
        resp.headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: Value = serde_json::from_slice(resp.body()).expect("every response is JSON");
    let version = resp
        .headers()
        .get("x-model-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status().as_u16(), body, version)
}

/// One request through the whole application, as `lambda_http::run` sends it.
async fn respond(req: Request, state: &Arc<State>) -> Response {
    let resp = app(Arc::clone(state))
        .oneshot(req)
        .await
        .expect("the app never fails");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("a complete body").to_bytes();
    http::Response::from_parts(parts, bytes)
}

async fn call(req: Request, state: &Arc<State>) -> (u16, Value, Option<String>) {
    parts(respond(req, state).await)
}

fn tags(v: &Value) -> Vec<String> {
    serde_json::from_value(v["tags"].clone()).expect("tags is an array of strings")
}

fn expected(a: &Artifact, q: &str, opts: PredictOptions) -> Vec<String> {
    tagger_core::Predictor::new(a.clone())
        .predict(q, &opts)
        .expect("library predicts")
        .tags
}

fn fixture(text: &str) -> Request {
    lambda_http::request::from_str(text).expect("fixture is a valid event")
}

// ---------------------------------------------------------------------------------------------
// The model itself: guards against testing the handler with a model that learned nothing.

#[test]
fn tiny_model_learns_its_topics() {
    let a = tagger_testkit::tiny_artifact(1);
    let opts = PredictOptions {
        threshold: Some(0.5),
        ..Default::default()
    };
    assert!(
        expected(&a, "borrow checker lifetime error in rust", opts.clone())
            .contains(&"rust".to_owned())
    );
    assert!(
        expected(&a, "react component and npm package in javascript", opts)
            .contains(&"javascript".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures

#[tokio::test]
async fn apigw_v2_fixture_predicts_tags_for_a_question() {
    let s = setup().await;
    let (status, body, version) = call(
        fixture(include_str!("../../fixtures/apigw-v2-predict.json")),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let q = "How do I fix the borrow checker lifetime error in my rust code?";
    assert_eq!(
        tags(&body),
        expected(&s.artifact, q, PredictOptions::default())
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only tags by default: {body}"
    );
    assert_eq!(version.as_deref(), Some(s.artifact.info.version.as_str()));
}

#[tokio::test]
async fn function_url_fixture_at_root_predicts_with_scores() {
    let s = setup().await;
    let (status, body, _) = call(
        fixture(include_str!("../../fixtures/function-url-predict.json")),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let q = "react component and npm package problem in my javascript code";
    assert_eq!(
        tags(&body),
        expected(&s.artifact, q, PredictOptions::default())
    );
    let scores = body["scores"]
        .as_object()
        .expect("scores=true gives scores");
    let names: Vec<&String> = scores.keys().collect();
    assert_eq!(names, s.artifact.labels.names().iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn rest_api_v1_fixture_with_stage_prefix_predicts() {
    let s = setup().await;
    let req = fixture(include_str!("../../fixtures/apigw-v1-predict.json"));
    assert_eq!(
        req.uri().path(),
        "/prod/predict",
        "lambda_http puts the stage in the path"
    );
    let (status, body, _) = call(req, &s.state).await;
    assert_eq!(status, 200, "{body}");
    let q = "python virtualenv and pip install fail for my django view";
    let opts = PredictOptions {
        top_k: Some(3),
        scores: true,
        ..Default::default()
    };
    assert_eq!(tags(&body), expected(&s.artifact, q, opts));
    assert!(body["scores"].is_object());
}

#[tokio::test]
async fn batch_fixture_answers_each_instance_with_tags_and_no_scores_unless_asked() {
    let s = setup().await;
    let (status, body, _) = call(
        fixture(include_str!("../../fixtures/apigw-v2-batch.json")),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let predictions = body["predictions"].as_array().expect("predictions array");
    let questions = [
        "pandas dataframe from a numpy array in python",
        "react component state in javascript",
    ];
    assert_eq!(predictions.len(), questions.len());
    for (p, q) in predictions.iter().zip(questions) {
        let opts = PredictOptions {
            top_k: Some(2),
            ..Default::default()
        };
        assert_eq!(tags(p), expected(&s.artifact, q, opts));
        assert!(p.get("scores").is_none(), "{p}");
    }
}

#[tokio::test]
async fn html_fixture_is_stripped_and_predicted() {
    let s = setup().await;
    let req = fixture(include_str!("../../fixtures/apigw-v2-html.json"));
    let html = std::str::from_utf8(req.body()).unwrap().to_owned();
    let (status, body, _) = call(req, &s.state).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tags(&body),
        expected(&s.artifact, &html, PredictOptions::default())
    );
    // The markup is gone before tokenizing: the same words as plain text score the same.
    let plain = tagger_core::text::html_to_text(&html);
    assert!(!plain.contains('<'), "{plain}");
    assert_eq!(
        body["scores"],
        call(
            post_json("/predict", "scores=true", &json!({"question": plain})),
            &s.state
        )
        .await
        .1["scores"]
    );
}

#[tokio::test]
async fn base64_text_fixture_is_decoded() {
    let s = setup().await;
    let req = fixture(include_str!("../../fixtures/function-url-base64.json"));
    assert!(
        matches!(req.body(), Body::Binary(_)),
        "lambda_http decodes base64 bodies to binary"
    );
    let text = String::from_utf8(req.body().to_vec()).unwrap();
    assert!(text.contains('\u{2014}'), "non-ASCII survives: {text}");
    let (status, body, _) = call(req, &s.state).await;
    assert_eq!(status, 200, "{body}");
    let opts = PredictOptions {
        threshold: Some(0.5),
        ..Default::default()
    };
    assert_eq!(tags(&body), expected(&s.artifact, &text, opts));
}

#[tokio::test]
async fn health_and_model_fixtures_describe_the_loaded_model() {
    let s = setup().await;
    let version = s.artifact.info.version.clone();
    let (status, body, _) = call(
        fixture(include_str!("../../fixtures/function-url-health.json")),
        &s.state,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str(), body["version"].as_str()),
        (200, Some("ok"), Some(version.as_str()))
    );

    let (status, body, _) = call(
        fixture(include_str!("../../fixtures/apigw-v2-stage-model.json")),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], json!(version));
    assert_eq!(body["labels"], json!(s.artifact.labels.names()));
    assert_eq!(body["trained_at"], json!(s.artifact.info.created_at));
    assert_eq!(body["source"], json!("memory://tiny.csv"));
    assert_eq!(
        body["thresholds"]["per_tag"].as_object().map(|m| m.len()),
        Some(s.artifact.labels.len())
    );
    assert_eq!(
        body["metrics"],
        serde_json::to_value(&s.artifact.info.metrics).unwrap()
    );
    assert!(
        body["metrics"]["micro_f1"].is_number(),
        "the tiny model has test metrics: {body}"
    );
}

// ---------------------------------------------------------------------------------------------
// Every error in the issue, and the option checks

#[tokio::test]
async fn bad_requests_get_specific_statuses_and_codes() {
    let s = with_config(Config {
        max_body_bytes: 4096,
        max_instances: 3,
        ..config()
    })
    .await;
    let json = Some("application/json");
    let big = "word ".repeat(1000);
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "invalid json",
            event("POST", "/predict", "", json, Some(b"{\"question\": ")),
            400,
            "invalid_json",
        ),
        (
            "empty json body",
            event("POST", "/predict", "", json, Some(b"")),
            400,
            "invalid_json",
        ),
        (
            "json array",
            event("POST", "/predict", "", json, Some(b"[\"a\"]")),
            400,
            "invalid_json",
        ),
        (
            "question not a string",
            post_json("/predict", "", &json!({"question": 3})),
            400,
            "invalid_field",
        ),
        (
            "html not a string",
            post_json("/predict", "", &json!({"html": ["<p>"]})),
            400,
            "invalid_field",
        ),
        (
            "instances not an array",
            post_json("/predict", "", &json!({"instances": "a"})),
            400,
            "invalid_field",
        ),
        (
            "instance not a string",
            post_json("/predict", "", &json!({"instances": ["a", 1]})),
            400,
            "invalid_field",
        ),
        (
            "scores not a bool",
            post_json("/predict", "", &json!({"question": "a", "scores": "yes"})),
            400,
            "invalid_field",
        ),
        (
            "explain not a bool",
            post_json("/predict", "", &json!({"question": "a", "explain": 1})),
            400,
            "invalid_field",
        ),
        (
            "threshold a string",
            post_json(
                "/predict",
                "",
                &json!({"question": "a", "threshold": "0.5"}),
            ),
            400,
            "invalid_field",
        ),
        (
            "threshold above 1",
            post_json("/predict", "", &json!({"question": "a", "threshold": 1.5})),
            400,
            "invalid_threshold",
        ),
        (
            "threshold below 0",
            post_json("/predict", "", &json!({"question": "a", "threshold": -0.1})),
            400,
            "invalid_threshold",
        ),
        (
            "top_k zero",
            post_json("/predict", "", &json!({"question": "a", "top_k": 0})),
            400,
            "invalid_top_k",
        ),
        (
            "top_k fractional",
            post_json("/predict", "", &json!({"question": "a", "top_k": 1.5})),
            400,
            "invalid_field",
        ),
        (
            "top_k negative",
            post_json("/predict", "", &json!({"question": "a", "top_k": -2})),
            400,
            "invalid_field",
        ),
        (
            "query threshold not a number",
            post_json("/predict", "threshold=high", &json!({"question": "a"})),
            400,
            "invalid_parameter",
        ),
        (
            "query threshold NaN",
            post_json("/predict", "threshold=NaN", &json!({"question": "a"})),
            400,
            "invalid_threshold",
        ),
        (
            "query threshold above 1",
            post_json("/predict", "threshold=2", &json!({"question": "a"})),
            400,
            "invalid_threshold",
        ),
        (
            "query top_k zero",
            post_json("/predict", "top_k=0", &json!({"question": "a"})),
            400,
            "invalid_top_k",
        ),
        (
            "query top_k text",
            post_json("/predict", "top_k=all", &json!({"question": "a"})),
            400,
            "invalid_parameter",
        ),
        (
            "query scores text",
            post_json("/predict", "scores=maybe", &json!({"question": "a"})),
            400,
            "invalid_parameter",
        ),
        // Booleans are `true`/`false` as the OpenAPI document says (schemathesis found a bare
        // `?explain=` accepted as true).
        (
            "query explain empty",
            post_json("/predict", "explain=", &json!({"question": "a"})),
            400,
            "invalid_parameter",
        ),
        (
            "query scores 1",
            post_json("/predict", "scores=1", &json!({"question": "a"})),
            400,
            "invalid_parameter",
        ),
        (
            "no question",
            post_json("/predict", "", &json!({})),
            400,
            "missing_question",
        ),
        (
            "two inputs",
            post_json(
                "/predict",
                "",
                &json!({"question": "a", "html": "<p>b</p>"}),
            ),
            400,
            "conflicting_fields",
        ),
        (
            "misspelt field",
            post_json("/predict", "", &json!({"questoin": "a"})),
            400,
            "unknown_field",
        ),
        (
            "invalid utf-8",
            event(
                "POST",
                "/predict",
                "",
                Some("text/plain"),
                Some(b"caf\xe9 \xff"),
            ),
            400,
            "invalid_encoding",
        ),
        (
            "body over the limit",
            event(
                "POST",
                "/predict",
                "",
                Some("text/plain"),
                Some(big.as_bytes()),
            ),
            413,
            "body_too_large",
        ),
        (
            "too many instances",
            post_json("/predict", "", &json!({"instances": ["a", "b", "c", "d"]})),
            413,
            "too_many_instances",
        ),
        (
            "xml",
            event(
                "POST",
                "/predict",
                "",
                Some("application/xml"),
                Some(b"<q>a</q>"),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "image",
            event(
                "POST",
                "/predict",
                "",
                Some("image/png"),
                Some(b"\x89PNG\r\n"),
            ),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown charset",
            event(
                "POST",
                "/predict",
                "",
                Some("text/plain; charset=shift_jis"),
                Some(b"a"),
            ),
            415,
            "unsupported_charset",
        ),
        (
            "json in latin-1",
            event(
                "POST",
                "/predict",
                "",
                Some("application/json; charset=iso-8859-1"),
                Some(b"{}"),
            ),
            415,
            "unsupported_charset",
        ),
        (
            "empty question",
            post_json("/predict", "", &json!({"question": ""})),
            422,
            "empty_question",
        ),
        (
            "whitespace question",
            post_json("/predict", "", &json!({"question": " \n\t "})),
            422,
            "empty_question",
        ),
        (
            "whitespace text body",
            event("POST", "/predict", "", Some("text/plain"), Some(b"   ")),
            422,
            "empty_question",
        ),
        (
            "empty text body",
            event("POST", "/", "", Some("text/plain"), None),
            422,
            "empty_question",
        ),
        (
            "html with no text",
            post_json("/predict", "", &json!({"html": "<p> <br/> </p>"})),
            422,
            "empty_question",
        ),
        (
            "empty instance",
            post_json("/predict", "", &json!({"instances": ["rust", " "]})),
            422,
            "empty_question",
        ),
        (
            "no instances",
            post_json("/predict", "", &json!({"instances": []})),
            422,
            "empty_question",
        ),
        (
            "unknown route",
            event("GET", "/nope", "", None, None),
            404,
            "not_found",
        ),
        (
            "route with extra segment",
            post_json("/predict/extra", "", &json!({"question": "a"})),
            404,
            "not_found",
        ),
        (
            "GET predict",
            event("GET", "/predict", "", None, None),
            405,
            "method_not_allowed",
        ),
        (
            "POST health",
            event("POST", "/health", "", json, Some(b"{}")),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE model",
            event("DELETE", "/model", "", None, None),
            405,
            "method_not_allowed",
        ),
    ];
    for (name, req, status, code) in cases {
        let resp = respond(req, &s.state).await;
        let allow = resp.headers().get(ALLOW).cloned();
        let (got, body, _) = parts(resp);
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty() && !message.contains("internal"),
            "{name}: {body}"
        );
        assert_eq!(
            allow.is_some(),
            status == 405,
            "{name}: Allow header only on 405"
        );
    }
}

#[tokio::test]
async fn error_messages_name_the_bad_value() {
    let s = setup().await;
    let msg = |v: Value| {
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (_, body, _) = call(
        post_json("/predict", "", &json!({"question": "a", "threshold": 1.5})),
        &s.state,
    )
    .await;
    assert!(msg(body.clone()).contains("1.5") && msg(body).contains("threshold"));
    let (_, body, _) = call(
        post_json("/predict", "", &json!({"questoin": "a"})),
        &s.state,
    )
    .await;
    assert!(msg(body).contains("questoin"));
    let (_, body, _) = call(
        event(
            "POST",
            "/predict",
            "",
            Some("application/xml"),
            Some(b"<q/>"),
        ),
        &s.state,
    )
    .await;
    assert!(msg(body).contains("application/xml"));
    let resp = respond(event("GET", "/predict", "", None, None), &s.state).await;
    assert_eq!(resp.headers().get(ALLOW).unwrap(), "POST");
}

#[tokio::test]
async fn explain_names_words_of_the_question_for_each_returned_tag() {
    let s = setup().await;
    let question = "rust borrow checker";
    let (status, body, _) = call(
        post_json("/predict", "explain=true", &json!({"question": question})),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let returned = tags(&body);
    assert!(!returned.is_empty(), "{body}");
    let explanations = body["explanations"]
        .as_object()
        .expect("explanations object");
    assert_eq!(explanations.len(), returned.len(), "{body}");
    for tag in &returned {
        let e = &explanations[tag.as_str()];
        let p = e["probability"].as_f64().unwrap();
        let base = e["expected_value"].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&base),
            "{e}"
        );
        let positive = e["positive"].as_array().unwrap();
        for pair in positive.iter().chain(e["negative"].as_array().unwrap()) {
            let word = pair[0].as_str().unwrap();
            assert!(question.contains(word), "{word} is not in the question");
        }
        // A confident tag well above its base rate owes it to some word pushing it up.
        if p > base + 0.1 {
            assert!(!positive.is_empty(), "{e}");
        }
    }
    let (status, body, _) = call(
        post_json(
            "/predict",
            "",
            &json!({"question": "rust", "explain": false}),
        ),
        &s.state,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("explanations").is_none(), "{body}");
}

#[tokio::test]
async fn options_change_the_answer() {
    let s = setup().await;
    let q = "borrow checker problem in rust with pandas dataframe in python";
    let all_labels = s.artifact.labels.len();
    // Threshold 0: every tag is above it (sigmoid outputs are > 0), most probable first.
    let (status, body, _) = call(
        post_json("/predict", "threshold=0", &json!({"question": q})),
        &s.state,
    )
    .await;
    assert_eq!(status, 200);
    let t = tags(&body);
    assert_eq!(
        t,
        expected(
            &s.artifact,
            q,
            PredictOptions {
                threshold: Some(0.0),
                ..Default::default()
            }
        )
    );
    assert_eq!(t.len(), all_labels);
    // top_k truncates; the JSON body overrides the query string.
    let (_, body, _) = call(
        post_json(
            "/predict",
            "threshold=0&top_k=1",
            &json!({"question": q, "top_k": 2}),
        ),
        &s.state,
    )
    .await;
    assert_eq!(tags(&body), t[..2].to_vec());
    // Threshold 1: nothing can pass; an empty list, not an error.
    let (status, body, _) = call(
        post_json("/predict", "", &json!({"question": q, "threshold": 1})),
        &s.state,
    )
    .await;
    assert_eq!((status, tags(&body).len()), (200, 0));
    // scores: every tag's probability, consistent with the returned tags.
    let (_, body, _) = call(
        post_json(
            "/predict",
            "scores=true&threshold=0.5",
            &json!({"question": q}),
        ),
        &s.state,
    )
    .await;
    let scores = body["scores"].as_object().unwrap();
    assert_eq!(scores.len(), all_labels);
    for tag in tags(&body) {
        assert!(scores[&tag].as_f64().unwrap() >= 0.5);
    }
    // Batch answers carry every score only when asked, like single ones.
    let (_, body, _) = call(
        post_json("/predict", "", &json!({"instances": [q]})),
        &s.state,
    )
    .await;
    assert!(body["predictions"][0].get("scores").is_none(), "{body}");
    let (_, body, _) = call(
        post_json("/predict", "scores=true", &json!({"instances": [q]})),
        &s.state,
    )
    .await;
    assert_eq!(
        body["predictions"][0]["scores"]
            .as_object()
            .map(|m| m.len()),
        Some(all_labels),
        "{body}"
    );
}

#[tokio::test]
async fn other_body_forms_are_accepted() {
    let s = setup().await;
    let q = "react component and npm package in javascript";
    let want = expected(&s.artifact, q, PredictOptions::default());
    let cases: Vec<(&str, Request)> = vec![
        (
            "text/plain",
            event(
                "POST",
                "/predict",
                "",
                Some("text/plain; charset=UTF-8"),
                Some(q.as_bytes()),
            ),
        ),
        (
            "no content type, JSON",
            event(
                "POST",
                "/predict",
                "",
                None,
                Some(json!({"question": q}).to_string().as_bytes()),
            ),
        ),
        (
            "no content type, text",
            event("POST", "/predict", "", None, Some(q.as_bytes())),
        ),
        // What `curl -d '{...}'` sends.
        (
            "curl -d json",
            event(
                "POST",
                "/",
                "",
                Some("application/x-www-form-urlencoded"),
                Some(json!({"question": q}).to_string().as_bytes()),
            ),
        ),
        (
            "html form",
            event(
                "POST",
                "/predict",
                "",
                Some("application/x-www-form-urlencoded"),
                Some(b"question=react+component+and+npm+package+in+javascript"),
            ),
        ),
        (
            "vendor json",
            event(
                "POST",
                "/predict",
                "",
                Some("application/vnd.api+json"),
                Some(json!({"question": q}).to_string().as_bytes()),
            ),
        ),
        (
            "json with BOM",
            event(
                "POST",
                "/predict",
                "",
                Some("application/json"),
                Some(format!("\u{feff}{}", json!({"question": q})).as_bytes()),
            ),
        ),
        (
            "stage-less trailing slash",
            post_json("/predict/", "", &json!({"question": q})),
        ),
        (
            "custom domain base path",
            post_json("/api/v1/predict", "", &json!({"question": q})),
        ),
    ];
    for (name, req) in cases {
        let (status, body, _) = call(req, &s.state).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(tags(&body), want, "{name}");
    }
    // Latin-1 bytes are decoded as Latin-1.
    let (status, body, _) = call(
        event(
            "POST",
            "/predict",
            "",
            Some("text/plain; charset=ISO-8859-1"),
            Some(b"caf\xe9 rust borrow checker"),
        ),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tags(&body),
        expected(
            &s.artifact,
            "caf\u{e9} rust borrow checker",
            PredictOptions::default()
        )
    );
    // Base64 JSON (a Function URL encodes bodies it does not consider text).
    let mut req = post_json("/predict", "", &json!({"question": q}));
    *req.body_mut() = Body::Binary(json!({"question": q}).to_string().into_bytes());
    let (status, body, _) = call(req, &s.state).await;
    assert_eq!((status, tags(&body)), (200, want));
}

#[tokio::test]
async fn one_kilobyte_question_is_answered() {
    let s = setup().await;
    let q = "Why does the borrow checker reject my rust code when cargo build runs? ".repeat(15);
    assert!(q.len() >= 1000);
    let (status, body, _) =
        call(post_json("/predict", "", &json!({"question": q})), &s.state).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tags(&body),
        expected(&s.artifact, &q, PredictOptions::default())
    );
}

// ---------------------------------------------------------------------------------------------
// No model, refresh

#[tokio::test]
async fn without_a_model_every_route_answers_503_until_one_is_published() {
    let (store, state) = empty().await;
    for req in [
        event("GET", "/health", "", None, None),
        event("GET", "/model", "", None, None),
        post_json("/predict", "", &json!({"question": "rust"})),
    ] {
        let (status, body, version) = call(req, &state).await;
        assert_eq!(
            (status, body["error"]["code"].as_str(), version),
            (503, Some("no_model"), None),
            "{body}"
        );
    }
    // Client mistakes are still reported as such.
    let (status, _, _) = call(post_json("/predict", "", &json!({"question": " "})), &state).await;
    assert_eq!(status, 422);

    let a = tagger_testkit::tiny_artifact(1);
    tagger_testkit::publish(store.as_ref(), PREFIX, &a).await;
    let (status, body, version) = call(event("GET", "/health", "", None, None), &state).await;
    assert_eq!(
        (status, version.as_deref()),
        (200, Some(a.info.version.as_str())),
        "{body}"
    );
}

#[tokio::test]
async fn a_new_pointer_is_served_on_the_next_due_request() {
    let s = setup().await;
    let b = tagger_testkit::tiny_artifact(2);
    let ask = || post_json("/predict", "", &json!({"question": "rust"}));
    let (_, _, v) = call(ask(), &s.state).await;
    assert_eq!(v.as_deref(), Some(s.artifact.info.version.as_str()));
    tagger_testkit::publish(s.store.as_ref(), PREFIX, &b).await;
    let (status, _, v) = call(ask(), &s.state).await;
    assert_eq!((status, v.as_deref()), (200, Some(b.info.version.as_str())));
}

#[tokio::test]
async fn a_new_pointer_waits_for_the_refresh_interval() {
    let s = with_config(Config {
        refresh: Duration::from_secs(3600),
        ..config()
    })
    .await;
    tagger_testkit::publish(s.store.as_ref(), PREFIX, &tagger_testkit::tiny_artifact(2)).await;
    let (_, body, v) = call(event("GET", "/health", "", None, None), &s.state).await;
    assert_eq!(
        v.as_deref(),
        Some(s.artifact.info.version.as_str()),
        "{body}"
    );
}

#[tokio::test]
async fn a_corrupt_new_artifact_is_ignored_and_the_old_model_answers() {
    let s = setup().await;
    tagger_testkit::publish_corrupt(s.store.as_ref(), PREFIX, "broken").await;
    let (status, body, v) = call(
        post_json("/predict", "", &json!({"question": "rust borrow checker"})),
        &s.state,
    )
    .await;
    assert_eq!(
        (status, v.as_deref()),
        (200, Some(s.artifact.info.version.as_str())),
        "{body}"
    );
    let (_, body, _) = call(event("GET", "/model", "", None, None), &s.state).await;
    assert_eq!(body["version"], json!(s.artifact.info.version));
}

#[tokio::test]
async fn a_corrupt_first_artifact_means_503_not_a_crash() {
    let (store, state) = empty().await;
    tagger_testkit::publish_corrupt(store.as_ref(), PREFIX, "broken").await;
    let (status, body, _) = call(event("GET", "/health", "", None, None), &state).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("no_model"))
    );
}

#[test]
fn base64_helper_matches_the_standard_alphabet() {
    // RFC 4648 section 10 test vectors.
    for (raw, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(b64(raw.as_bytes()), enc);
    }
}

#[tokio::test]
async fn model_facts_are_cacheable_but_errors_and_predictions_are_not() {
    let cache_control = |resp: &Response| {
        resp.headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let s = setup().await;
    let model = respond(event("GET", "/model", "", None, None), &s.state).await;
    assert_eq!(model.status(), 200);
    assert_eq!(cache_control(&model).as_deref(), Some("public, max-age=60"));
    let predicted = respond(
        post_json("/predict", "", &json!({"question": "rust cargo"})),
        &s.state,
    )
    .await;
    assert_eq!(cache_control(&predicted).as_deref(), Some("no-store"));
    let health = respond(event("GET", "/health", "", None, None), &s.state).await;
    assert_eq!(cache_control(&health).as_deref(), Some("no-store"));

    let (_, empty_state) = empty().await;
    let missing = respond(event("GET", "/model", "", None, None), &empty_state).await;
    assert_eq!(missing.status(), 503);
    assert_eq!(cache_control(&missing).as_deref(), Some("no-store"));

    let uncached = with_config(Config {
        model_cache_secs: 0,
        ..config()
    })
    .await;
    let model = respond(event("GET", "/model", "", None, None), &uncached.state).await;
    assert_eq!(cache_control(&model).as_deref(), Some("no-store"));
}

// ---------------------------------------------------------------------------------------------
// The application's own layers: CORS, the page, limits, request ids

/// A request as a local server hands it to the app: no Lambda event around it.
fn plain(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::from(body.to_vec())).unwrap()
}

fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn cors_headers(resp: &Response) -> Vec<String> {
    resp.headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

async fn with_cors(origins: &str) -> Setup {
    with_config(Config {
        cors: crate::CorsOrigins::parse(origins).unwrap(),
        ..config()
    })
    .await
}

fn preflight(origin: &str) -> Request {
    plain(
        "OPTIONS",
        "/predict",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-amz-content-sha256",
            ),
        ],
        b"",
    )
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_is_answered_204_with_the_cors_headers() {
    let s = with_cors("https://ask.example, https://other.example").await;
    let resp = respond(preflight("https://ask.example"), &s.state).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("https://ask.example")
    );
    let methods = header(&resp, "access-control-allow-methods").unwrap();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let allowed = header(&resp, "access-control-allow-headers").unwrap();
    assert!(
        allowed.contains("content-type") && allowed.contains("x-amz-content-sha256"),
        "{allowed}"
    );
    assert_eq!(
        header(&resp, "access-control-max-age").as_deref(),
        Some("600")
    );

    // The actual request carries the origin and exposes the model version to the page.
    let mut req = post_json("/predict", "", &json!({"question": "rust borrow checker"}));
    req.headers_mut()
        .insert("origin", "https://other.example".parse().unwrap());
    let resp = respond(req, &s.state).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("https://other.example")
    );
    assert!(header(&resp, "access-control-expose-headers")
        .unwrap()
        .contains("x-model-version"));
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_cors_headers() {
    let s = with_cors("https://ask.example").await;
    let resp = respond(preflight("https://evil.example"), &s.state).await;
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
    let mut req = post_json("/predict", "", &json!({"question": "rust"}));
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let resp = respond(req, &s.state).await;
    assert_eq!(resp.status(), 200, "same-origin callers are not affected");
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers() {
    let s = setup().await;
    let resp = respond(preflight("https://ask.example"), &s.state).await;
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
    let mut req = post_json("/predict", "", &json!({"question": "rust"}));
    req.headers_mut()
        .insert("origin", "https://ask.example".parse().unwrap());
    let resp = respond(req, &s.state).await;
    assert!(cors_headers(&resp).is_empty(), "{:?}", resp.headers());
}

#[tokio::test]
async fn any_origin_gets_a_wildcard() {
    let s = with_cors("*").await;
    let resp = respond(preflight("https://anyone.example"), &s.state).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_types_and_a_strict_csp() {
    let s = setup().await;
    for (path, content_type, body) in [
        ("/", "text/html", routes::INDEX_HTML),
        ("/index.html", "text/html", routes::INDEX_HTML),
        ("/app.js", "text/javascript", routes::APP_JS),
        ("/app.css", "text/css", routes::APP_CSS),
    ] {
        let resp = respond(event("GET", path, "", None, None), &s.state).await;
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            header(&resp, "content-type")
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        assert_eq!(resp.body().as_ref(), body.as_bytes(), "{path}");
        let csp = header(&resp, "content-security-policy");
        if content_type == "text/html" {
            assert_eq!(csp.as_deref(), Some("default-src 'self'"), "{path}");
        }
    }
    // The page refers to its assets relatively, so under a stage they resolve there too.
    assert!(routes::INDEX_HTML.contains("href=\"app.css\""));
    assert!(routes::INDEX_HTML.contains("src=\"app.js\""));
    // The root still predicts on POST; other methods are told what it takes.
    let (status, _, _) = call(event("DELETE", "/", "", None, None), &s.state).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn the_page_is_served_at_a_stage_root_and_assets_under_the_stage() {
    let s = setup().await;
    let mut ev: Value =
        serde_json::from_str(include_str!("../../fixtures/apigw-v2-stage-model.json")).unwrap();
    ev["rawPath"] = json!("/prod/");
    ev["requestContext"]["http"]["path"] = json!("/prod/");
    let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
    let resp = respond(req, &s.state).await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, "content-type")
        .unwrap()
        .starts_with("text/html"));
    ev["rawPath"] = json!("/prod/app.js");
    let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
    let resp = respond(req, &s.state).await;
    assert_eq!(resp.body().as_ref(), routes::APP_JS.as_bytes());
}

#[tokio::test]
async fn a_repeated_or_unknown_query_parameter_is_a_400() {
    let s = setup().await;
    let q = json!({"question": "rust borrow checker"});
    for (query, code) in [
        ("top_k=1&top_k=2", "duplicate_parameter"),
        ("explain=true&explain=false", "duplicate_parameter"),
        ("scores&scores", "duplicate_parameter"),
        ("topk=1", "unknown_parameter"),
    ] {
        let (status, body, _) = call(post_json("/predict", query, &q), &s.state).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
    }
    // The same in a form post.
    let (status, body, _) = call(
        event(
            "POST",
            "/predict",
            "",
            Some("application/x-www-form-urlencoded"),
            Some(b"question=rust&question=python"),
        ),
        &s.state,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("duplicate_parameter"))
    );
    // A REST API (v1) event sends repeats in multiValueQueryStringParameters: same answer.
    let mut ev: Value =
        serde_json::from_str(include_str!("../../fixtures/apigw-v1-predict.json")).unwrap();
    ev["multiValueQueryStringParameters"] = json!({"top_k": ["3", "1"]});
    ev["queryStringParameters"] = json!({"top_k": "1"});
    let (status, body, _) = call(
        lambda_http::request::from_str(&ev.to_string()).unwrap(),
        &s.state,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("duplicate_parameter")),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_whether_or_not_its_length_is_declared() {
    let s = with_config(Config {
        max_body_bytes: 100,
        ..config()
    })
    .await;
    let big = vec![b'a'; 101];
    // Declared: the limit layer answers before reading.
    let declared = plain(
        "POST",
        "/predict",
        &[("content-type", "text/plain"), ("content-length", "101")],
        &big,
    );
    // Not declared (a chunked upload): the body is cut off at the limit.
    let undeclared = plain("POST", "/predict", &[("content-type", "text/plain")], &big);
    for req in [declared, undeclared] {
        let (status, body, _) = call(req, &s.state).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (413, Some("body_too_large")),
            "{body}"
        );
        assert!(body["error"]["message"].as_str().unwrap().contains("100"));
    }
    let (status, _, _) = call(
        plain(
            "POST",
            "/predict",
            &[("content-type", "text/plain")],
            &big[..100],
        ),
        &s.state,
    )
    .await;
    assert_ne!(status, 413, "exactly the limit is allowed");
}

#[tokio::test]
async fn explanations_over_the_cost_cap_are_refused_with_the_numbers() {
    let s = with_config(Config {
        max_explain_cost: 10,
        ..config()
    })
    .await;
    let long = "rust borrow checker cargo lifetime ".repeat(4);
    let (status, body, _) = call(
        post_json(
            "/predict",
            "explain=true&threshold=0",
            &json!({"question": long}),
        ),
        &s.state,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("explain_too_costly")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limit is 10") && message.contains("explain"),
        "{message}"
    );
    // The same question without explain, or with few enough tags, is answered.
    let (status, _, _) = call(
        post_json("/predict", "threshold=0", &json!({"question": long})),
        &s.state,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body, _) = call(
        post_json(
            "/predict",
            "explain=true&top_k=1",
            &json!({"question": "rust borrow"}),
        ),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn scores_are_rounded_to_four_decimals() {
    let s = setup().await;
    let (_, body, _) = call(
        post_json(
            "/predict",
            "scores=true",
            &json!({"question": "rust pandas"}),
        ),
        &s.state,
    )
    .await;
    for (tag, v) in body["scores"].as_object().unwrap() {
        let v = v.as_f64().unwrap();
        assert!(((v * 1e4).round() - v * 1e4).abs() < 1e-6, "{tag}: {v}");
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let s = setup().await;
    let resp = respond(event("GET", "/health", "", None, None), &s.state).await;
    assert!(header(&resp, "x-request-id").is_some_and(|id| !id.is_empty()));
    let given = plain("GET", "/health", &[("x-request-id", "abc-123")], b"");
    let resp = respond(given, &s.state).await;
    assert_eq!(header(&resp, "x-request-id").as_deref(), Some("abc-123"));
}

#[tokio::test]
async fn the_cpu_pool_answers_like_inline_work() {
    let s = with_config(Config {
        cpu_workers: 1,
        ..config()
    })
    .await;
    let q = "rust borrow checker";
    let (status, body, _) = call(
        post_json("/predict", "explain=true", &json!({"question": q})),
        &s.state,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tags(&body),
        expected(&s.artifact, q, PredictOptions::default())
    );
}
