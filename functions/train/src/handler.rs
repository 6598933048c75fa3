//! S3 event in, one [`job::retrain`] per record, a summary (or a typed error) out.
//!
//! Errors reach Lambda as a [`Diagnostic`] whose `errorType` says what a retry would do:
//! `Retryable` (a storage fault: Lambda's async retries may succeed), `BadInput` (the CSV, its
//! sidecar, its size or the key cannot be trained on), `Rejected` (trained, but the quality gate
//! kept the live model), `StorageConfig` (access denied, no such bucket, an unusable KMS key)
//! or `Timeout` (stopped before the invocation's deadline). All but the first are permanent for
//! that upload: its report already says why, and a redelivery of the same upload answers from
//! that report in one GET, without reading or training again (see the README's retry section).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tagger_job::{
    self as job, Budget, FailureKind, JobConfig, JobError, JobReport, Outcome, Upload,
};
use tagger_registry::store::ObjectStore;
use tagger_telemetry::emf::{Metrics, Unit};
use tokio::runtime::{Handle, RuntimeFlavor};

/// What one record came to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordResult {
    pub bucket: String,
    pub key: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A failed invocation, typed for the Lambda diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// A storage fault: trying again may work.
    Retryable(String),
    /// The upload (CSV, sidecar, key) cannot be trained on: fix it and upload again.
    BadInput(String),
    /// The new model was written but not published: it failed the quality gate.
    Rejected(String),
    /// The store refused access (permissions, the bucket, its KMS key): fix the deployment.
    StorageConfig(String),
    /// The run stopped before the invocation's deadline, with a report.
    Timeout(String),
}

impl TrainError {
    pub fn error_type(&self) -> &'static str {
        match self {
            TrainError::Retryable(_) => "Retryable",
            TrainError::BadInput(_) => "BadInput",
            TrainError::Rejected(_) => "Rejected",
            TrainError::StorageConfig(_) => "StorageConfig",
            TrainError::Timeout(_) => "Timeout",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TrainError::Retryable(m)
            | TrainError::BadInput(m)
            | TrainError::Rejected(m)
            | TrainError::StorageConfig(m)
            | TrainError::Timeout(m) => m,
        }
    }

    /// The same kind of error with another message.
    fn with_message(&self, m: String) -> TrainError {
        match self {
            TrainError::Retryable(_) => TrainError::Retryable(m),
            TrainError::BadInput(_) => TrainError::BadInput(m),
            TrainError::Rejected(_) => TrainError::Rejected(m),
            TrainError::StorageConfig(_) => TrainError::StorageConfig(m),
            TrainError::Timeout(_) => TrainError::Timeout(m),
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, TrainError::Retryable(_))
    }
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message())
    }
}

impl std::error::Error for TrainError {}

/// lambda_runtime names a boxed error's `errorType` after the Rust type (`alloc::boxed::Box<dyn
/// core::error::Error>`); this conversion sets it from the variant instead.
impl From<TrainError> for Diagnostic {
    fn from(e: TrainError) -> Diagnostic {
        Diagnostic {
            error_type: e.error_type().into(),
            error_message: e.message().into(),
        }
    }
}

fn classify(key: &str, e: &JobError) -> TrainError {
    let message = format!("{key}: {}", e.message);
    match (e.retryable, e.kind) {
        (true, _) => TrainError::Retryable(message),
        (false, FailureKind::QualityGate) => TrainError::Rejected(message),
        (false, FailureKind::StorageConfig) => TrainError::StorageConfig(message),
        (false, FailureKind::Timeout) => TrainError::Timeout(message),
        (false, _) => TrainError::BadInput(message),
    }
}

/// An event key after decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodedKey {
    Utf8(String),
    /// The decoded bytes are not UTF-8: see [`job::reject_invalid_key`] for where its report goes.
    NotUtf8(Vec<u8>),
}

/// Decodes an S3 event key: keys arrive form-urlencoded (`+` for a space, `%XX` for the rest).
/// Bytes that are not UTF-8 are kept as they are, never replaced: a replaced key names another
/// object.
pub fn decode_key(raw: &str) -> DecodedKey {
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
    match String::from_utf8(bytes) {
        Ok(key) => DecodedKey::Utf8(key),
        Err(e) => DecodedKey::NotUtf8(e.into_bytes()),
    }
}

/// The upload a record describes; for a key that is not UTF-8, `upload.key` is its escaped
/// form ([`job::escape_key_bytes`]) and the raw bytes come alongside.
pub fn upload_of(record: &S3EventRecord) -> Result<(String, Upload, Option<Vec<u8>>), TrainError> {
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| TrainError::BadInput("event record has no bucket name".into()))?;
    let raw = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or_else(|| TrainError::BadInput("event record has no object key".into()))?;
    let object = &record.s3.object;
    let (key, invalid) = match decode_key(raw) {
        DecodedKey::Utf8(key) => (key, None),
        DecodedKey::NotUtf8(bytes) => (job::escape_key_bytes(&bytes), Some(bytes)),
    };
    Ok((
        bucket,
        Upload {
            key,
            etag: object.e_tag.clone(),
            version_id: object.version_id.clone(),
            sequencer: object.sequencer.clone(),
            size: object.size,
        },
        invalid,
    ))
}

/// Time kept before the invocation's deadline for evaluation, publishing and the report: 20 s,
/// or a quarter of the time left when that is less.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(20);

/// The budget for an invocation whose deadline is `deadline_ms` (milliseconds since the Unix
/// epoch, as the Lambda context gives it).
pub fn budget_for(deadline_ms: u64) -> Budget {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Budget {
        finish_by: Some(Instant::now() + left),
        reserve: DEADLINE_RESERVE.min(left / 4),
    }
}

/// `MAX_UPLOAD_MB` (megabytes of 2^20 bytes; default [`job::DEFAULT_MAX_UPLOAD_MB`]) into
/// `cfg.max_upload_bytes`.
pub fn apply_upload_limit(cfg: &mut JobConfig, value: Option<&str>) -> Result<(), String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    match v.parse::<u64>() {
        Ok(mb) if (1..=1 << 20).contains(&mb) => {
            cfg.max_upload_bytes = mb << 20;
            Ok(())
        }
        _ => Err(format!(
            "MAX_UPLOAD_MB: expected a whole number of megabytes from 1 to 1048576, got {v:?}"
        )),
    }
}

/// Runs every record of `event` against the store `store_for(bucket)` gives. All records are
/// attempted; if any failed the invocation fails, retryable if any failure is (re-running the
/// records that succeeded is harmless: they answer `AlreadyPublished`).
pub async fn handle_with<F>(
    event: S3Event,
    cfg: &JobConfig,
    budget: Budget,
    metrics: &Metrics,
    store_for: F,
) -> Result<Vec<RecordResult>, TrainError>
where
    F: Fn(&str) -> Arc<dyn ObjectStore>,
{
    let mut results = Vec::with_capacity(event.records.len());
    let mut failures: Vec<TrainError> = Vec::new();
    for record in &event.records {
        let (bucket, upload, invalid_key) = match upload_of(record) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "unusable event record");
                record_decision(metrics, None, "failed", None);
                failures.push(e);
                continue;
            }
        };
        let store = store_for(&bucket);
        tracing::info!(bucket = %bucket, key = %upload.key, etag = ?upload.etag, sequencer = ?upload.sequencer, "upload");
        let (result, report) = match &invalid_key {
            Some(bytes) => (
                job::reject_invalid_key(store.as_ref(), bytes, &upload, cfg).await,
                None,
            ),
            None => run_blocking(store.as_ref(), &upload, cfg, budget).await,
        };
        if let Some(outcome) = outcome_name(&result) {
            record_decision(metrics, Some(&upload.key), outcome, report.as_ref());
        }
        match result {
            Ok(outcome) => results.push(RecordResult {
                bucket,
                key: upload.key,
                outcome,
            }),
            Err(e) => failures.push(classify(&upload.key, &e)),
        }
    }
    if failures.is_empty() {
        return Ok(results);
    }
    let retryable = failures.iter().any(TrainError::is_retryable);
    let first = failures
        .iter()
        .find(|f| f.is_retryable() == retryable)
        .cloned()
        .unwrap_or_else(|| failures[0].clone());
    if failures.len() == 1 {
        return Err(first);
    }
    let all = failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Err(first.with_message(all))
}

/// Training is seconds of CPU: on a multi-threaded runtime, tell tokio this thread is busy so
/// the S3 client's I/O keeps running on the others.
async fn run_blocking(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
    budget: Budget,
) -> (Result<Outcome, JobError>, Option<JobReport>) {
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| {
            Handle::current().block_on(job::retrain_reported(store, upload, cfg, budget))
        }),
        _ => job::retrain_reported(store, upload, cfg, budget).await,
    }
}

/// The decision's name in the metrics and the log: `promoted`, `already_published`,
/// `superseded`, `rejected` (the quality gate), `bad_data` (the CSV, its sidecar or its key) or
/// `failed` (storage, timeout, internal). `None` for an upload that is not for training.
pub fn outcome_name(result: &Result<Outcome, JobError>) -> Option<&'static str> {
    Some(match result {
        Ok(Outcome::Ignored { .. }) => return None,
        Ok(Outcome::Promoted { .. }) => "promoted",
        Ok(Outcome::AlreadyPublished { .. }) => "already_published",
        Ok(Outcome::Superseded { .. }) => "superseded",
        Err(e) => match e.kind {
            FailureKind::QualityGate => "rejected",
            FailureKind::BadData | FailureKind::BadConfig | FailureKind::BadKey => "bad_data",
            _ => "failed",
        },
    })
}

/// One INFO line and one metrics document per decision (see the README's metrics table).
fn record_decision(
    metrics: &Metrics,
    data_key: Option<&str>,
    outcome: &'static str,
    report: Option<&JobReport>,
) {
    let rows_read = report.and_then(|r| r.rows_read);
    let rows_skipped = report.map(|r| r.skipped.iter().map(|s| s.count).sum::<u64>());
    let candidate = report.and_then(|r| r.metrics.as_ref()).map(|m| m.micro_f1);
    let live = report
        .and_then(|r| r.incumbent.as_ref())
        .and_then(|i| i.micro_f1);
    let version = report.and_then(|r| r.version.as_deref());
    let train_seconds = report.map(|r| r.timings.train_seconds).filter(|&s| s > 0.0);
    tracing::info!(
        data_key = data_key.unwrap_or("-"),
        outcome,
        version,
        reason = report.map(|r| r.reason.as_str()),
        rows_read,
        rows_skipped,
        candidate_micro_f1 = candidate,
        live_micro_f1 = live,
        train_seconds,
        "decision"
    );
    if !metrics.enabled() {
        return;
    }
    let mut doc = metrics.document();
    doc.dimension("Outcome", outcome)
        .metric("Uploads", Unit::Count, 1.0, &[&[], &["Outcome"]]);
    for (name, which) in [
        ("Promoted", "promoted"),
        ("Rejected", "rejected"),
        ("BadData", "bad_data"),
        ("Failed", "failed"),
    ] {
        doc.metric(name, Unit::Count, f64::from(outcome == which), &[&[]]);
    }
    if let Some(key) = data_key {
        doc.property("DataKey", key);
    }
    if let Some(v) = version {
        doc.property("Version", v);
    }
    let optional = [
        ("RowsRead", Unit::Count, rows_read.map(|n| n as f64)),
        ("RowsSkipped", Unit::Count, rows_skipped.map(|n| n as f64)),
        ("TrainingSeconds", Unit::Seconds, train_seconds),
        ("CandidateMicroF1", Unit::None, candidate),
        ("LiveMicroF1", Unit::None, live),
    ];
    for (name, unit, value) in optional {
        if let Some(v) = value {
            doc.metric(name, unit, v, &[&[]]);
        }
    }
    if let Some(r) = report {
        doc.metric("JobSeconds", Unit::Seconds, r.timings.total_seconds, &[&[]]);
    }
    metrics.emit(&doc);
}

/// What `main` builds once and every invocation shares.
#[derive(Clone, Debug)]
pub struct Context {
    pub client: aws_sdk_s3::Client,
    pub job: JobConfig,
    pub metrics: Metrics,
}

/// The Lambda entry point: the bucket comes from each record.
pub async fn handle(
    event: LambdaEvent<S3Event>,
    ctx: &Context,
) -> Result<Vec<RecordResult>, TrainError> {
    tracing::info!(request_id = %event.context.request_id, records = event.payload.records.len(), "s3 event");
    // A context without a deadline (0: local tools) means no budget.
    let budget = match event.context.deadline {
        0 => Budget::UNLIMITED,
        ms => budget_for(ms),
    };
    handle_with(event.payload, &ctx.job, budget, &ctx.metrics, |bucket| {
        Arc::new(tagger_s3::S3Store::new(ctx.client.clone(), bucket, "")) as Arc<dyn ObjectStore>
    })
    .await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tagger_registry::store::{MemoryStore, PutMode};

    use super::*;

    const PUT: &str = include_str!("../../../tests/fixtures/s3-put-questions.json");
    const ENCODED: &str = include_str!("../../../tests/fixtures/s3-put-encoded-key.json");

    fn event(json: &str) -> S3Event {
        serde_json::from_str(json).expect("fixture parses as an S3 event")
    }

    fn utf8(k: &str) -> DecodedKey {
        DecodedKey::Utf8(k.into())
    }

    #[test]
    fn decodes_form_urlencoded_keys() {
        assert_eq!(
            decode_key("data/my+questions%282024%29.csv"),
            utf8("data/my questions(2024).csv")
        );
        assert_eq!(decode_key("data/a%2Bb.csv"), utf8("data/a+b.csv"));
        assert_eq!(decode_key("data/caf%C3%A9.csv"), utf8("data/café.csv"));
        // Not UTF-8: the bytes are kept, never replaced by U+FFFD (another key).
        assert_eq!(
            decode_key("data/bad%FFname.csv"),
            DecodedKey::NotUtf8(b"data/bad\xffname.csv".to_vec())
        );
    }

    #[tokio::test]
    async fn non_utf8_key_is_bad_input_with_a_report_that_maps_back() {
        let store = Arc::new(MemoryStore::new());
        let mut ev = event(PUT);
        ev.records[0].s3.object.key = Some("data/bad%FFname.csv".into());
        let shared = store.clone();
        let err = handle_with(
            ev,
            &JobConfig::default(),
            Budget::UNLIMITED,
            &Metrics::off(),
            move |_| shared.clone() as Arc<dyn ObjectStore>,
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "BadInput", "{err}");
        assert!(
            err.message().contains("not valid UTF-8")
                && !err.message().contains("no longer exists"),
            "{err}"
        );
        let key = "reports/_invalid-utf8/data/bad%FFname.csv.json";
        assert_eq!(store.keys(), [key], "only the report is written");
        let report: serde_json::Value =
            serde_json::from_slice(&store.get(key).await.unwrap().unwrap().body).unwrap();
        assert_eq!(
            (report["failure"].as_str(), report["retryable"].as_bool()),
            (Some("bad_key"), Some(false))
        );
        // The rule maps back: percent-decoding the name gives the key's bytes.
        let name = report["upload"]["key"].as_str().unwrap();
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(name).collect();
        assert_eq!(bytes, b"data/bad\xffname.csv");
        // A UTF-8 key spelling the same characters has its report elsewhere.
        assert_eq!(
            decode_key("data/bad%25FFname.csv"),
            utf8("data/bad%FFname.csv")
        );
        assert_ne!(JobConfig::default().report_key("data/bad%FFname.csv"), key);
    }

    #[tokio::test]
    async fn oversized_upload_is_refused_before_reading() {
        let store = Arc::new(MemoryStore::new());
        store
            .put(
                "data/questions.csv",
                Bytes::from_static(b"tags,text\n"),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let mut cfg = JobConfig::default();
        apply_upload_limit(&mut cfg, Some("1")).unwrap();
        assert_eq!(cfg.max_upload_bytes, 1 << 20);
        assert!(apply_upload_limit(&mut cfg, Some("0")).is_err());
        assert!(apply_upload_limit(&mut cfg, Some("lots")).is_err());
        let mut ev = event(PUT);
        ev.records[0].s3.object.size = Some((1 << 20) + 1);
        let shared = store.clone();
        let err = handle_with(ev, &cfg, Budget::UNLIMITED, &Metrics::off(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "BadInput", "{err}");
        assert!(err.message().contains("MAX_UPLOAD_MB"), "{err}");
        let report: serde_json::Value = serde_json::from_slice(
            &store
                .get("reports/data/questions.csv.json")
                .await
                .unwrap()
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(report["failure"], "bad_data");
        assert_eq!(report["read_etag"], serde_json::Value::Null, "never read");
    }

    #[tokio::test]
    async fn upload_larger_than_the_limit_without_a_size_is_capped_on_read() {
        let store = Arc::new(MemoryStore::new());
        store
            .put(
                "data/questions.csv",
                Bytes::from(vec![b'x'; 2048]),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let cfg = JobConfig {
            max_upload_bytes: 1024,
            ..JobConfig::default()
        };
        let mut ev = event(PUT);
        ev.records[0].s3.object.size = None;
        let shared = store.clone();
        let err = handle_with(ev, &cfg, Budget::UNLIMITED, &Metrics::off(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "BadInput", "{err}");
        assert!(
            err.message().contains("larger than the 1024 bytes"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn deadline_stops_training_with_a_timeout_report() {
        let store = Arc::new(MemoryStore::new());
        let mut csv = String::from("tags,text\n");
        for i in 0..3000 {
            let (tag, word) = [("rust", "borrow"), ("python", "pandas"), ("sql", "join")][i % 3];
            csv.push_str(&format!("{tag},how do I {word} thing {i} {word}\n"));
        }
        store
            .put("data/questions.csv", Bytes::from(csv), PutMode::Overwrite)
            .await
            .unwrap();
        // A second is plenty to read and prepare 3,000 short rows, far too little for 1,000
        // epochs (milliseconds each).
        let budget = Budget {
            finish_by: Some(Instant::now() + Duration::from_secs(1)),
            reserve: Duration::ZERO,
        };
        let cfg = JobConfig {
            defaults: tagger_train::config::Overrides {
                epochs: Some(1000),
                patience: Some(0),
                ..Default::default()
            },
            ..JobConfig::default()
        };
        let shared = store.clone();
        let err = handle_with(event(PUT), &cfg, budget, &Metrics::off(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "Timeout", "{err}");
        assert!(err.message().contains("training after epoch"), "{err}");
        let report: serde_json::Value = serde_json::from_slice(
            &store
                .get("reports/data/questions.csv.json")
                .await
                .unwrap()
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(
            (report["failure"].as_str(), report["retryable"].as_bool()),
            (Some("timeout"), Some(false))
        );
        assert!(store.get("models/latest.json").await.unwrap().is_none());
        // Past the deadline already: stopped before reading anything.
        let past = Budget {
            finish_by: Some(Instant::now()),
            reserve: Duration::from_secs(1),
        };
        let mut ev = event(PUT);
        ev.records[0].s3.object.sequencer = Some("0066321A5C8B3E4F99".into());
        let shared = store.clone();
        let err = handle_with(ev, &cfg, past, &Metrics::off(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
        .await
        .unwrap_err();
        assert!(err.message().contains("before reading"), "{err}");
    }

    #[test]
    fn budget_follows_the_invocation_deadline() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let b = budget_for(now_ms + 300_000);
        assert_eq!(b.reserve, DEADLINE_RESERVE);
        assert!(b.allows(Duration::from_secs(200)) && !b.allows(Duration::from_secs(290)));
        // Little time left: a quarter of it is kept (8 s less the milliseconds since `now_ms`:
        // a loaded machine makes that more than nothing, so no exact value).
        let reserve = budget_for(now_ms + 8_000).reserve;
        assert!(
            reserve <= Duration::from_secs(2) && reserve > Duration::from_millis(1_900),
            "{reserve:?}"
        );
    }

    #[test]
    fn storage_configuration_faults_have_their_own_error_type() {
        let e = JobError {
            kind: FailureKind::StorageConfig,
            retryable: false,
            message: "AccessDenied (http 403)".into(),
        };
        let d: Diagnostic = classify("data/x.csv", &e).into();
        assert_eq!(d.error_type, "StorageConfig");
        let e: JobError = tagger_registry::Error::StorageConfig {
            op: "get",
            key: "data/x.csv".into(),
            message: "NoSuchBucket (http 404)".into(),
        }
        .into();
        assert_eq!((e.kind, e.retryable), (FailureKind::StorageConfig, false));
    }

    #[test]
    fn fixtures_parse_and_name_the_upload() {
        let (bucket, upload, _) = upload_of(&event(PUT).records[0]).unwrap();
        assert_eq!(
            (bucket.as_str(), upload.key.as_str()),
            ("tagger-bucket", "data/questions.csv")
        );
        assert!(upload.etag.is_some() && upload.sequencer.is_some());
        let (_, upload, _) = upload_of(&event(ENCODED).records[0]).unwrap();
        assert_eq!(upload.key, "data/my questions(2024).csv");
    }

    #[test]
    fn diagnostic_carries_the_failure_type() {
        let d: Diagnostic = TrainError::BadInput("data/x.csv: csv is empty".into()).into();
        assert_eq!(
            (d.error_type.as_str(), d.error_message.as_str()),
            ("BadInput", "data/x.csv: csv is empty")
        );
        let d: Diagnostic = TrainError::Retryable("slow down".into()).into();
        assert_eq!(d.error_type, "Retryable");
    }

    #[tokio::test]
    async fn ignores_records_outside_the_data_prefix() {
        let store = Arc::new(MemoryStore::new());
        let mut ev = event(PUT);
        ev.records[0].s3.object.key = Some("reports/data/questions.csv.json".into());
        let shared = store.clone();
        let out = handle_with(
            ev,
            &JobConfig::default(),
            Budget::UNLIMITED,
            &Metrics::off(),
            move |_| shared.clone() as Arc<dyn ObjectStore>,
        )
        .await
        .unwrap();
        assert!(matches!(out[0].outcome, Outcome::Ignored { .. }), "{out:?}");
        assert!(
            store.keys().is_empty(),
            "nothing written: {:?}",
            store.keys()
        );
    }

    #[tokio::test]
    async fn empty_csv_is_bad_input_with_a_report() {
        let store = Arc::new(MemoryStore::new());
        store
            .put(
                "data/my questions(2024).csv",
                Bytes::new(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let shared = store.clone();
        let err = handle_with(
            event(ENCODED),
            &JobConfig::default(),
            Budget::UNLIMITED,
            &Metrics::off(),
            move |_| shared.clone() as Arc<dyn ObjectStore>,
        )
        .await
        .unwrap_err();
        assert_eq!(err.error_type(), "BadInput", "{err}");
        let report = store
            .get("reports/data/my questions(2024).csv.json")
            .await
            .unwrap()
            .expect("report written");
        let report: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
        assert_eq!(report["outcome"], "failed");
        assert_eq!(report["failure"], "bad_data");
        assert!(store.get("models/latest.json").await.unwrap().is_none());
    }
}
