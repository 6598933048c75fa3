//! The `train` function end to end against a real S3-compatible server (moto, started by the
//! harness): upload a CSV, hand the handler a real S3 put event, check what lands in the bucket.

use std::sync::Arc;

use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::primitives::ByteStream;
use lambda_runtime::{Context, LambdaEvent};
use tagger_job::{JobConfig, JobReport, Outcome};
use tagger_registry::registry::{Pointer, Registry};
use tagger_registry::store::ObjectStore;
use tagger_s3::S3Store;
use tagger_telemetry::emf::{self, Metrics};
use tagger_tests::Moto;
use tagger_train::config::Overrides;
use train::handler::{self, RecordResult, TrainError};

const PUT_EVENT: &str = include_str!("../fixtures/s3-put-questions.json");
const PREDICT_REQUEST: &str =
    include_str!("../../functions/predict/fixtures/apigw-v2-predict.json");
const SO_TITLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/so-titles/train.csv"
);

struct Bucket {
    _moto: Moto,
    client: aws_sdk_s3::Client,
    name: String,
}

impl Bucket {
    /// A fresh bucket on a fresh moto server; `None` (reason printed) when moto is not installed.
    async fn new(test: &str) -> Option<Bucket> {
        let moto = Moto::start()?;
        let client = moto.client();
        let name = moto.fresh_bucket(test).await;
        Some(Bucket {
            _moto: moto,
            client,
            name,
        })
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.client.clone(), &self.name, "")
    }

    /// Uploads `body` and returns the put event S3 would send for it.
    async fn upload(&self, key: &str, body: impl Into<Vec<u8>>, sequencer: &str) -> S3Event {
        let out = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body.into()))
            .send()
            .await
            .expect("upload");
        let mut event: S3Event = serde_json::from_str(PUT_EVENT).expect("fixture parses");
        let object = &mut event.records[0].s3.object;
        // As S3 does: the key form-urlencoded, the ETag unquoted.
        object.key = Some(encode_key(key));
        object.e_tag = out.e_tag().map(|e| e.trim_matches('"').to_owned());
        object.sequencer = Some(sequencer.to_owned());
        event.records[0].s3.bucket.name = Some(self.name.clone());
        event
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.store()
            .get(key)
            .await
            .expect("get")
            .map(|o| o.body.to_vec())
    }

    /// A JSON object that must exist.
    async fn json(&self, key: &str) -> serde_json::Value {
        let body = self
            .get(key)
            .await
            .unwrap_or_else(|| panic!("{key} missing"));
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    async fn latest(&self) -> Option<Pointer> {
        self.get("models/latest.json")
            .await
            .map(|b| serde_json::from_slice(&b).expect("pointer json"))
    }

    async fn report(&self, data_key: &str) -> JobReport {
        let body = self
            .get(&format!("reports/{data_key}.json"))
            .await
            .unwrap_or_else(|| panic!("no report for {data_key}"));
        serde_json::from_slice(&body).expect("report json")
    }

    async fn versions(&self) -> Vec<String> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix("models/")
            .send()
            .await
            .expect("list");
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter(|k| k.ends_with("/model.bin"))
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    async fn invoke(
        &self,
        event: S3Event,
        cfg: &JobConfig,
    ) -> Result<Vec<RecordResult>, TrainError> {
        self.invoke_with(event, cfg, &Metrics::off()).await
    }

    async fn invoke_with(
        &self,
        event: S3Event,
        cfg: &JobConfig,
        metrics: &Metrics,
    ) -> Result<Vec<RecordResult>, TrainError> {
        let ctx = handler::Context {
            client: self.client.clone(),
            job: cfg.clone(),
            metrics: metrics.clone(),
        };
        handler::handle(LambdaEvent::new(event, Context::default()), &ctx).await
    }
}

fn encode_key(key: &str) -> String {
    key.split(' ')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("+")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Quick settings: these tests are about publishing, not about model quality.
fn quick() -> JobConfig {
    JobConfig {
        defaults: Overrides {
            epochs: Some(4),
            hidden: Some(vec![64]),
            seed: Some(5),
            ..Default::default()
        },
        ..JobConfig::default()
    }
}

fn small_csv(seed: u64, rows: usize) -> String {
    const TOPICS: [(&str, [&str; 4]); 3] = [
        ("rust", ["borrow", "cargo", "lifetime", "trait"]),
        ("python", ["pip", "django", "pandas", "dict"]),
        ("sql", ["join", "select", "index", "query"]),
    ];
    let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut out = String::from("tags,text\n");
    for i in 0..rows {
        let (tag, words) = TOPICS[next() % 3];
        // The row number keeps texts distinct (the gate refuses mostly repeated rows); each
        // number occurs once, below the vocabulary's minimum count.
        out.push_str(&format!(
            "{tag},how do I {} with {} case {i}\n",
            words[next() % 4],
            words[next() % 4]
        ));
    }
    out
}

fn so_titles() -> Option<Vec<u8>> {
    match std::fs::read(SO_TITLES) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("skipped: {SO_TITLES} not readable ({e}); the datasets live in ../shared beside the repo");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_trains_publishes_and_verifies() {
    let Some(csv) = so_titles() else { return };
    let Some(bucket) = Bucket::new("upload_trains_publis").await else {
        return;
    };
    let event = bucket
        .upload("data/questions.csv", csv, "0066321A5C8B3E4F21")
        .await;
    let out = bucket
        .invoke(event, &quick())
        .await
        .expect("train succeeds");
    let Outcome::Promoted {
        version,
        previous: None,
    } = &out[0].outcome
    else {
        panic!("{out:?}")
    };

    let pointer = bucket.latest().await.expect("latest.json written");
    assert_eq!(&pointer.version, version);
    assert_eq!(pointer.key, format!("{version}/model.bin"));
    assert_eq!(pointer.sequencer.as_deref(), Some("0066321A5C8B3E4F21"));
    let store = bucket.store();
    let artifact = Registry::new(&store, "models")
        .load(&pointer)
        .await
        .expect("artifact verifies");
    assert_eq!(
        artifact.labels.len(),
        100,
        "so-titles has 100 tags (shared/data/so-titles/README.md)"
    );

    let metrics = bucket.json(&format!("models/{version}/metrics.json")).await;
    assert_eq!(
        metrics["train_load"]["rows_read"], 24_000,
        "train.csv rows (shared/data/so-titles/README.md)"
    );
    assert!(
        metrics["metrics"]["micro_f1"].as_f64().unwrap() > 0.3,
        "{}",
        metrics["metrics"]
    );
    let source = bucket.json(&format!("models/{version}/source.json")).await;
    assert_eq!(source["key"], "data/questions.csv");
    assert_eq!(
        source["sha256"], "46c9e0094c181f7d771c0988d0c5c7c614bd8a96a138dc3329e21c108360625b",
        "shared/data/so-titles/README.md"
    );
    let report = bucket.report("data/questions.csv").await;
    assert_eq!(report.outcome, "promoted");
    assert!(
        bucket.get("data/questions.json").await.is_none(),
        "nothing written under data/"
    );

    // The predict function, pointed at the same bucket (MODEL_URI=s3://<bucket>/models), serves it.
    let models = Arc::new(S3Store::new(bucket.client.clone(), &bucket.name, "models"));
    let config = predict::Config::for_local(format!("s3://{}/models", bucket.name));
    let state = Arc::new(predict::State::new(models, "", config).await);
    let mut request: serde_json::Value = serde_json::from_str(PREDICT_REQUEST).unwrap();
    request["body"] =
        serde_json::json!({"question": "How do I select an element by id with jQuery?"})
            .to_string()
            .into();
    request["headers"]["content-length"] =
        request["body"].as_str().unwrap().len().to_string().into();
    let req = lambda_http::request::from_str(&request.to_string()).expect("API Gateway v2 request");
    let resp = tower::ServiceExt::oneshot(predict::app(state), req)
        .await
        .expect("the app never fails");
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .expect("a complete body")
        .to_bytes();
    let resp = http::Response::from_parts(parts, bytes);
    let served = resp
        .headers()
        .get("x-model-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = serde_json::from_slice(resp.body()).expect("JSON answer");
    assert_eq!(
        (resp.status().as_u16(), served.as_deref()),
        (200, Some(version.as_str())),
        "{body}"
    );
    let tags: Vec<&str> = body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t.as_str().or(t["tag"].as_str()))
        .collect();
    assert!(tags.contains(&"jquery"), "{body}");
}

/// Distillation in the deployed loop: a teacher file uploaded beside the data (its own event
/// ignored) and a settings file asking for it, through the Lambda handler on a real S3 API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teacher_file_beside_the_upload_is_learned_from() {
    let Some(bucket) = Bucket::new("teacher_file_beside").await else {
        return;
    };
    let csv = small_csv(3, 600);
    let mut teacher = String::from("text,teacher\n");
    for line in csv.lines().skip(1) {
        let (tag, text) = line.split_once(',').expect("tag,text");
        teacher.push_str(&format!("{text},{tag}=0.9\n"));
    }
    teacher.push_str("how do I borrow with cargo unlabelled,rust=0.8\n");
    bucket
        .upload("data/q.json", r#"{"distill": 0.3}"#, "01")
        .await;
    let event = bucket.upload("data/q.teacher.csv", teacher, "02").await;
    let out = bucket.invoke(event, &quick()).await.expect("handled");
    assert!(
        matches!(&out[0].outcome, Outcome::Ignored { reason } if reason.contains("teacher file")),
        "{out:?}"
    );
    let event = bucket.upload("data/q.csv", csv, "03").await;
    let out = bucket.invoke(event, &quick()).await.expect("trains");
    let Outcome::Promoted { version, .. } = &out[0].outcome else {
        panic!("{out:?}")
    };
    let report = bucket.report("data/q.csv").await;
    assert_eq!(report.teacher.as_deref(), Some("data/q.teacher.csv"));
    let source = bucket.json(&format!("models/{version}/source.json")).await;
    assert_eq!(source["teacher"], "data/q.teacher.csv");
    let distill = source["settings"]["train"]["distill"]
        .as_f64()
        .expect("distill");
    assert!((distill - 0.3).abs() < 1e-6, "{distill}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_key_from_the_fixture_is_decoded() {
    let Some(bucket) = Bucket::new("encoded_key_from_the").await else {
        return;
    };
    let key = "data/my questions(2024).csv";
    let mut event = bucket.upload(key, small_csv(1, 300), "01").await;
    let fixture: S3Event =
        serde_json::from_str(include_str!("../fixtures/s3-put-encoded-key.json")).unwrap();
    assert_eq!(
        fixture.records[0].s3.object.key, event.records[0].s3.object.key,
        "the fixture encodes keys as this test does"
    );
    event.records[0].s3.object.key = fixture.records[0].s3.object.key.clone();
    let out = bucket
        .invoke(event, &quick())
        .await
        .expect("train succeeds");
    assert_eq!(out[0].key, key);
    assert_eq!(bucket.report(key).await.outcome, "promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_csv_writes_a_report_and_keeps_the_pointer() {
    let Some(bucket) = Bucket::new("malformed_csv_writes").await else {
        return;
    };
    let event = bucket
        .upload("data/good.csv", small_csv(1, 300), "01")
        .await;
    bucket.invoke(event, &quick()).await.expect("good upload");
    let before = bucket.latest().await.expect("pointer");

    let event = bucket
        .upload(
            "data/broken.csv",
            "tags,text\npython,\"unclosed\nrust,fine\n",
            "02",
        )
        .await;
    let err = bucket.invoke(event, &quick()).await.unwrap_err();
    assert_eq!(err.error_type(), "BadInput", "{err}");
    let report = bucket.report("data/broken.csv").await;
    assert_eq!(
        (report.outcome.as_str(), report.retryable),
        ("failed", false)
    );
    assert_eq!(bucket.latest().await, Some(before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_event_twice_publishes_one_version() {
    let Some(bucket) = Bucket::new("same_event_twice_pub").await else {
        return;
    };
    let event = bucket.upload("data/q.csv", small_csv(1, 300), "01").await;
    let first = bucket
        .invoke(event.clone(), &quick())
        .await
        .expect("first delivery");
    let second = bucket
        .invoke(event, &quick())
        .await
        .expect("second delivery");
    let Outcome::Promoted { version, .. } = &first[0].outcome else {
        panic!("{first:?}")
    };
    assert_eq!(
        second[0].outcome,
        Outcome::AlreadyPublished {
            version: version.clone()
        }
    );
    assert_eq!(bucket.versions().await.len(), 1);
    assert!(bucket.get("models/previous.json").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worse_model_is_not_promoted() {
    let Some(bucket) = Bucket::new("worse_model_is_not_p").await else {
        return;
    };
    let event = bucket.upload("data/q.csv", small_csv(1, 300), "01").await;
    bucket.invoke(event, &quick()).await.expect("good upload");
    let before = bucket.latest().await.expect("pointer");

    bucket
        .upload(
            "data/q.json",
            r#"{"epochs": 1, "hidden": [2], "learning_rate": 0.00001, "threshold": 0.99}"#,
            "02",
        )
        .await;
    let event = bucket.upload("data/q.csv", small_csv(1, 300), "03").await;
    let err = bucket.invoke(event, &quick()).await.unwrap_err();
    assert_eq!(err.error_type(), "Rejected", "{err}");
    assert_eq!(bucket.latest().await, Some(before.clone()));
    assert_eq!(
        bucket.versions().await.len(),
        2,
        "the rejected version is written, not published"
    );
    let report = bucket.report("data/q.csv").await;
    assert_eq!(report.failure, Some(tagger_job::FailureKind::QualityGate));
    assert_eq!(report.incumbent.map(|i| i.version), Some(before.version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_uploads_leave_a_consistent_pointer_naming_the_newer() {
    let bucket = match Bucket::new("racing_uploads_leave").await {
        Some(b) => Arc::new(b),
        None => return,
    };
    let cfg = JobConfig {
        max_regression: 1.0,
        ..quick()
    };
    let older = bucket.upload("data/a.csv", small_csv(1, 300), "0A").await;
    let newer = bucket.upload("data/b.csv", small_csv(2, 300), "0B").await;
    let run = |event: S3Event| {
        let (bucket, cfg) = (bucket.clone(), cfg.clone());
        tokio::spawn(async move { bucket.invoke(event, &cfg).await })
    };
    let (a, b) = (run(older), run(newer));
    let (a, b) = (
        a.await.unwrap().expect("older"),
        b.await.unwrap().expect("newer"),
    );
    let pointer = bucket.latest().await.expect("pointer");
    assert_eq!(pointer.sequencer.as_deref(), Some("0B"), "{a:?} {b:?}");
    assert!(
        matches!(&b[0].outcome, Outcome::Promoted { version, .. } if *version == pointer.version),
        "{b:?}"
    );
    let store = bucket.store();
    Registry::new(&store, "models")
        .load(&pointer)
        .await
        .expect("the pointer names a complete, verified version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_csv_catalogue_each_gets_a_specific_report() {
    let Some(bucket) = Bucket::new("bad_csv_catalogue_ea").await else {
        return;
    };
    let event = bucket
        .upload("data/good.csv", small_csv(1, 300), "01")
        .await;
    bucket.invoke(event, &quick()).await.expect("good upload");
    let before = bucket.latest().await.expect("pointer");

    let cases: [(&str, &[u8], &str); 7] = [
        ("empty", b"", "csv is empty"),
        ("header-only", b"tags,text\n", "no usable rows"),
        ("no-text-column", b"tags,label\npython,x\n", "`text`"),
        ("no-tags-column", b"text,label\nhow to sort,x\n", "`tags`"),
        (
            "unbalanced-quote",
            b"tags,text\npython,\"how to\nrust,fine\nsql,ok\n",
            "quote",
        ),
        (
            "invalid-utf8",
            b"tags,text\npython,caf\xff\xfe\nrust,\xc3\x28\n",
            "invalid utf-8",
        ),
        (
            "zero-usable-rows",
            b"tags,text\npython,\n,how to sort\n",
            "no usable rows",
        ),
    ];
    for (i, (name, body, needle)) in cases.into_iter().enumerate() {
        let key = format!("data/{name}.csv");
        let event = bucket
            .upload(&key, body, &format!("{:02X}", 0x10 + i))
            .await;
        let err = bucket.invoke(event, &quick()).await.unwrap_err();
        assert_eq!(err.error_type(), "BadInput", "{name}: {err}");
        let report = bucket.report(&key).await;
        assert_eq!(
            (report.outcome.as_str(), report.retryable),
            ("failed", false),
            "{name}"
        );
        assert_eq!(
            report.failure,
            Some(tagger_job::FailureKind::BadData),
            "{name}: {}",
            report.reason
        );
        assert!(
            report.reason.to_lowercase().contains(needle),
            "{name}: {:?} lacks {needle:?}",
            report.reason
        );
    }
    assert_eq!(bucket.latest().await, Some(before));
    assert_eq!(bucket.versions().await.len(), 1);
}

/// Peak resident set of this process so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The README's sizing figures: the 188,199-row CSV from `../shared/tools/make-scale-csv`, uploaded
/// to moto and trained through the handler with the production defaults. Run in release:
/// `python3 ../shared/tools/make-scale-csv -o /tmp/scale.csv && SCALE_CSV=/tmp/scale.csv cargo test
/// --profile bench -p tagger-tests --test train_e2e scale -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "sizing measurement: needs SCALE_CSV and a release build"]
async fn scale_csv_sizing() {
    let Some(path) = std::env::var_os("SCALE_CSV") else {
        eprintln!("skipped: set SCALE_CSV to the output of ../shared/tools/make-scale-csv");
        return;
    };
    let csv = std::fs::read(&path).expect("read SCALE_CSV");
    let bytes = csv.len();
    let Some(bucket) = Bucket::new("scale").await else {
        return;
    };
    let t = std::time::Instant::now();
    let event = bucket.upload("data/scale.csv", csv, "01").await;
    let upload_s = t.elapsed().as_secs_f64();
    let rss_upload = peak_rss_mib();
    // Reset the high-water mark (Linux >= 4.0) so the figure is the handler's, not the upload's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = std::time::Instant::now();
    let out = bucket
        .invoke(event, &JobConfig::default())
        .await
        .expect("scale training succeeds");
    let handler_s = t.elapsed().as_secs_f64();
    let Outcome::Promoted { version, .. } = &out[0].outcome else {
        panic!("{out:?}")
    };
    let report = bucket.report("data/scale.csv").await;
    let model = bucket
        .get(&format!("models/{version}/model.bin"))
        .await
        .expect("model.bin")
        .len();
    println!(
        "scale: {} rows read, {} used, {bytes} CSV bytes; upload {upload_s:.1} s; handler (S3 GET + train + S3 PUTs) {handler_s:.1} s \
         [read {:.1} s, train {:.1} s, publish {:.1} s]; micro-F1 {:.3}; artifact {model} bytes; peak RSS during upload {:.0} MiB, during the handler {:.0} MiB (reset: {reset})",
        report.rows_read.unwrap_or_default(),
        report.rows_used.unwrap_or_default(),
        report.timings.read_seconds,
        report.timings.train_seconds,
        report.timings.publish_seconds,
        report.metrics.map(|m| m.micro_f1).unwrap_or_default(),
        rss_upload.unwrap_or_default(),
        peak_rss_mib().unwrap_or_default(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_rows_are_stored_and_oversized_reads_are_capped() {
    let Some(bucket) = Bucket::new("reference_rows_are_s").await else {
        return;
    };
    let event = bucket.upload("data/q.csv", small_csv(1, 300), "01").await;
    bucket.invoke(event, &quick()).await.expect("good upload");
    let pointer = bucket.latest().await.expect("pointer");
    let reference: serde_json::Value = serde_json::from_slice(
        &bucket
            .get(&format!("models/{}/reference.json", pointer.version))
            .await
            .expect("reference.json beside the version"),
    )
    .unwrap();
    assert_eq!(reference["rows_available"], 60, "20% of 300 rows held out");

    // No size in the event: S3's read itself stops at the limit.
    let mut event = bucket
        .upload("data/big.csv", small_csv(2, 3000), "02")
        .await;
    event.records[0].s3.object.size = None;
    let cfg = JobConfig {
        max_upload_bytes: 4096,
        ..quick()
    };
    let err = bucket.invoke(event, &cfg).await.unwrap_err();
    assert_eq!(err.error_type(), "BadInput", "{err}");
    assert!(
        err.message().contains("larger than the 4096 bytes"),
        "{err}"
    );
    assert_eq!(bucket.report("data/big.csv").await.read_etag, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_a_storage_configuration_error() {
    let Some(bucket) = Bucket::new("missing_bucket_is_a_").await else {
        return;
    };
    let mut event = bucket.upload("data/q.csv", small_csv(1, 300), "01").await;
    event.records[0].s3.bucket.name = Some("tagger-no-such-bucket".into());
    let err = bucket.invoke(event, &quick()).await.unwrap_err();
    assert_eq!(err.error_type(), "StorageConfig", "{err}");
    assert!(err.message().contains("NoSuchBucket"), "{err}");
}

/// Each decision writes one metrics document: its outcome as a 0/1 count among the four the
/// alarms watch, the rows, the training time and both models' scores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decision_writes_one_metrics_document() {
    let Some(bucket) = Bucket::new("each_decision_writes").await else {
        return;
    };
    let (metrics, captured) = Metrics::memory("TaggerTest", "train-test");
    let outcome_counts = |doc: &serde_json::Value| {
        ["Promoted", "Rejected", "BadData", "Failed"].map(|m| doc[m].as_f64().unwrap())
    };

    let csv = small_csv(1, 300);
    let event = bucket.upload("data/q.csv", csv.clone(), "01").await;
    bucket
        .invoke_with(event, &quick(), &metrics)
        .await
        .expect("good upload");
    let docs = captured.documents();
    assert_eq!(docs.len(), 1, "{docs:#?}");
    let promoted = &docs[0];
    emf::validate(promoted).unwrap_or_else(|e| panic!("{e}: {promoted}"));
    assert_eq!(outcome_counts(promoted), [1.0, 0.0, 0.0, 0.0], "{promoted}");
    assert_eq!(
        (
            &promoted["Outcome"],
            &promoted["DataKey"],
            &promoted["Function"]
        ),
        (
            &serde_json::json!("promoted"),
            &serde_json::json!("data/q.csv"),
            &serde_json::json!("train-test")
        )
    );
    let report = bucket.report("data/q.csv").await;
    assert_eq!(promoted["RowsRead"], report.rows_read.unwrap() as f64);
    assert_eq!(promoted["RowsSkipped"], 0.0);
    assert_eq!(
        promoted["CandidateMicroF1"],
        report.metrics.as_ref().unwrap().micro_f1
    );
    assert!(promoted["TrainingSeconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        promoted["Version"],
        report.version.clone().unwrap().as_str()
    );
    assert!(promoted.get("LiveMicroF1").is_none(), "no model was live");

    // A worse model is rejected by the gate: both scores are reported.
    bucket
        .upload(
            "data/q.json",
            r#"{"epochs": 1, "hidden": [2], "learning_rate": 0.00001, "threshold": 0.99}"#,
            "02",
        )
        .await;
    let event = bucket.upload("data/q.csv", csv, "03").await;
    bucket
        .invoke_with(event, &quick(), &metrics)
        .await
        .unwrap_err();
    let docs = captured.documents();
    let rejected = &docs[1];
    emf::validate(rejected).unwrap();
    assert_eq!(outcome_counts(rejected), [0.0, 1.0, 0.0, 0.0], "{rejected}");
    let report = bucket.report("data/q.csv").await;
    let live = report
        .incumbent
        .and_then(|i| i.micro_f1)
        .expect("live score");
    assert_eq!(rejected["LiveMicroF1"], live);
    assert!(
        rejected["CandidateMicroF1"].as_f64().unwrap() < live,
        "{rejected}"
    );

    // A CSV that cannot be read: bad data, with the rows it got to.
    let event = bucket
        .upload(
            "data/broken.csv",
            "tags,text\npython,\"unclosed\nrust,fine\n",
            "04",
        )
        .await;
    bucket
        .invoke_with(event, &quick(), &metrics)
        .await
        .unwrap_err();
    let docs = captured.documents();
    assert_eq!(docs.len(), 3, "{docs:#?}");
    emf::validate(&docs[2]).unwrap();
    assert_eq!(
        outcome_counts(&docs[2]),
        [0.0, 0.0, 1.0, 0.0],
        "{}",
        docs[2]
    );
    assert_eq!(
        docs[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Function"], ["Function", "Outcome"]])
    );
}
