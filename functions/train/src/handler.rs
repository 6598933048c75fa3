//! S3 event in, one [`job::retrain`] per record, a summary (or a typed error) out.
//!
//! Errors reach Lambda as a [`Diagnostic`] whose `errorType` says what a retry would do:
//! `Retryable` (a storage fault: Lambda's async retries may succeed), `BadInput` (the CSV, its
//! sidecar or the key cannot be trained on) or `Rejected` (trained, but the quality gate kept
//! the live model). The last two are permanent for that upload: its report already says why,
//! and a redelivery of the same upload answers from that report in one GET, without reading
//! or training again (see the README's retry section).

use std::sync::Arc;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use tagger_job::{self as job, FailureKind, JobConfig, JobError, Outcome, Upload};
use tagger_registry::store::ObjectStore;
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
}

impl TrainError {
    pub fn error_type(&self) -> &'static str {
        match self {
            TrainError::Retryable(_) => "Retryable",
            TrainError::BadInput(_) => "BadInput",
            TrainError::Rejected(_) => "Rejected",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TrainError::Retryable(m) | TrainError::BadInput(m) | TrainError::Rejected(m) => m,
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
        (false, _) => TrainError::BadInput(message),
    }
}

/// Decodes an S3 event key: keys arrive form-urlencoded (`+` for a space, `%XX` for the rest).
pub fn decode_key(raw: &str) -> Result<String, TrainError> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| {
            TrainError::BadInput(format!("object key {raw:?} does not decode to UTF-8: {e}"))
        })
}

/// The upload a record describes.
pub fn upload_of(record: &S3EventRecord) -> Result<(String, Upload), TrainError> {
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
    Ok((
        bucket,
        Upload {
            key: decode_key(raw)?,
            etag: object.e_tag.clone(),
            version_id: object.version_id.clone(),
            sequencer: object.sequencer.clone(),
            size: object.size,
        },
    ))
}

/// Runs every record of `event` against the store `store_for(bucket)` gives. All records are
/// attempted; if any failed the invocation fails, retryable if any failure is (re-running the
/// records that succeeded is harmless: they answer `AlreadyPublished`).
pub async fn handle_with<F>(
    event: S3Event,
    cfg: &JobConfig,
    store_for: F,
) -> Result<Vec<RecordResult>, TrainError>
where
    F: Fn(&str) -> Arc<dyn ObjectStore>,
{
    let mut results = Vec::with_capacity(event.records.len());
    let mut failures: Vec<TrainError> = Vec::new();
    for record in &event.records {
        let (bucket, upload) = match upload_of(record) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "unusable event record");
                failures.push(e);
                continue;
            }
        };
        let store = store_for(&bucket);
        tracing::info!(bucket = %bucket, key = %upload.key, etag = ?upload.etag, sequencer = ?upload.sequencer, "upload");
        match run_blocking(store.as_ref(), &upload, cfg).await {
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
    Err(match first {
        TrainError::Retryable(_) => TrainError::Retryable(all),
        TrainError::BadInput(_) => TrainError::BadInput(all),
        TrainError::Rejected(_) => TrainError::Rejected(all),
    })
}

/// Training is seconds of CPU: on a multi-threaded runtime, tell tokio this thread is busy so
/// the S3 client's I/O keeps running on the others.
async fn run_blocking(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
) -> Result<Outcome, JobError> {
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| {
            Handle::current().block_on(job::retrain(store, upload, cfg))
        }),
        _ => job::retrain(store, upload, cfg).await,
    }
}

/// What `main` builds once and every invocation shares.
#[derive(Clone, Debug)]
pub struct Context {
    pub client: aws_sdk_s3::Client,
    pub job: JobConfig,
}

/// The Lambda entry point: the bucket comes from each record.
pub async fn handle(
    event: LambdaEvent<S3Event>,
    ctx: &Context,
) -> Result<Vec<RecordResult>, TrainError> {
    tracing::info!(request_id = %event.context.request_id, records = event.payload.records.len(), "s3 event");
    handle_with(event.payload, &ctx.job, |bucket| {
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

    #[test]
    fn decodes_form_urlencoded_keys() {
        assert_eq!(
            decode_key("data/my+questions%282024%29.csv").unwrap(),
            "data/my questions(2024).csv"
        );
        assert_eq!(decode_key("data/a%2Bb.csv").unwrap(), "data/a+b.csv");
        assert_eq!(decode_key("data/caf%C3%A9.csv").unwrap(), "data/café.csv");
        assert!(matches!(
            decode_key("data/%FF.csv"),
            Err(TrainError::BadInput(_))
        ));
    }

    #[test]
    fn fixtures_parse_and_name_the_upload() {
        let (bucket, upload) = upload_of(&event(PUT).records[0]).unwrap();
        assert_eq!(
            (bucket.as_str(), upload.key.as_str()),
            ("tagger-bucket", "data/questions.csv")
        );
        assert!(upload.etag.is_some() && upload.sequencer.is_some());
        let (_, upload) = upload_of(&event(ENCODED).records[0]).unwrap();
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
        let out = handle_with(ev, &JobConfig::default(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
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
        let err = handle_with(event(ENCODED), &JobConfig::default(), move |_| {
            shared.clone() as Arc<dyn ObjectStore>
        })
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
