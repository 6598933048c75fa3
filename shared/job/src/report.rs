//! What one upload did: its outcome, its failure kinds and the report written beside it.

use super::*;

/// One uploaded object, as the storage event describes it (the key already decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// S3's per-key event order: hex, comparable after left-padding to equal length.
    pub sequencer: Option<String>,
    pub size: Option<i64>,
}

/// What happened to an upload that did not fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Not a training upload (outside the data prefix, not `.csv`): nothing read or written.
    Ignored { reason: String },
    /// The pointer already names this data + settings: nothing trained.
    AlreadyPublished { version: String },
    /// The new version is live.
    Promoted {
        version: String,
        previous: Option<String>,
    },
    /// The version was written but a newer upload's model is live and stays so.
    Superseded { version: String, current: String },
}

/// Why an upload failed, which decides whether trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The CSV cannot be trained on (empty, missing columns, no usable rows, one tag only...).
    BadData,
    /// The sidecar or the environment's settings are invalid.
    BadConfig,
    /// Trained and written, but not good enough to publish.
    QualityGate,
    /// The object key is not valid UTF-8.
    BadKey,
    /// Storage failed (transient ones are retryable).
    Storage,
    /// The store refuses access (permissions, a missing bucket, an unusable KMS key): only a
    /// change of configuration helps, never a retry.
    StorageConfig,
    /// The run would not finish before its deadline (the Lambda invocation's): stopped, with
    /// this report, before the platform kills it.
    Timeout,
    /// Anything else (an artifact that does not verify after writing, ...).
    Internal,
}

/// A failed upload. The report beside it says the same in more detail.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub kind: FailureKind,
    /// Whether running the same upload again may succeed (a storage hiccup), as opposed to a
    /// permanent verdict on this data and these settings.
    pub retryable: bool,
    pub message: String,
}

impl JobError {
    pub(crate) fn new(kind: FailureKind, retryable: bool, message: impl Into<String>) -> Self {
        JobError {
            kind,
            retryable,
            message: message.into(),
        }
    }

    pub(crate) fn gate(message: impl Into<String>) -> Self {
        JobError::new(FailureKind::QualityGate, false, message)
    }
}

/// Every error variant is classified here on purpose, so a new one is never blamed on the
/// user's CSV by default.
impl From<tagger_core::Error> for JobError {
    fn from(e: tagger_core::Error) -> Self {
        JobError::new(core_kind(&e), false, e.to_string())
    }
}

pub(crate) fn core_kind(e: &tagger_core::Error) -> FailureKind {
    use tagger_core::Error as E;
    match e {
        E::InvalidConfig { .. } => FailureKind::BadConfig,
        // A model that does not check, encode, decode or explain after training is our fault,
        // not the data's; questions never reach a job.
        E::Shape { .. }
        | E::BadMagic { .. }
        | E::VersionTooNew { .. }
        | E::VersionTooOld { .. }
        | E::Truncated { .. }
        | E::Checksum { .. }
        | E::Decode { .. }
        | E::Encode(_)
        | E::EmptyQuestion
        | E::NoBackground
        | E::OutputOutOfRange { .. } => FailureKind::Internal,
        _ => FailureKind::Internal,
    }
}

impl From<tagger_train::Error> for JobError {
    fn from(e: tagger_train::Error) -> Self {
        use tagger_train::Error as E;
        let kind = match &e {
            E::InvalidConfig { .. } | E::ConfigJson { .. } | E::ConfigValue { .. } => {
                FailureKind::BadConfig
            }
            E::EmptyCsv
            | E::MissingColumn { .. }
            | E::CsvRow { .. }
            | E::UnclosedQuote { .. }
            | E::MergedRows { .. }
            | E::TooManyTags { .. }
            | E::NoUsableRows { .. }
            | E::TooManyBadRows { .. }
            | E::Training(_) => FailureKind::BadData,
            E::Stopped { .. } => FailureKind::Timeout,
            E::Io { .. } => FailureKind::Storage,
            E::Core(core) => core_kind(core),
            _ => FailureKind::Internal,
        };
        let retryable = matches!(e, E::Io { .. });
        JobError::new(kind, retryable, e.to_string())
    }
}

impl From<tagger_registry::Error> for JobError {
    fn from(e: tagger_registry::Error) -> Self {
        use tagger_registry::Error as E;
        let kind = match &e {
            E::Store { .. } | E::NotFound { .. } | E::PreconditionFailed { .. } => {
                FailureKind::Storage
            }
            E::StorageConfig { .. } => FailureKind::StorageConfig,
            E::TooLarge { .. } => FailureKind::BadData,
            E::Pointer { .. } | E::Json { .. } | E::Artifact { .. } => FailureKind::Internal,
            E::Core(core) => core_kind(core),
            _ => FailureKind::Internal,
        };
        JobError::new(kind, e.is_retryable(), e.to_string())
    }
}

/// `reports/<data key>.json`: the outcome of one upload, success or failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// `promoted`, `already_published`, `superseded` or `failed`.
    pub outcome: String,
    /// One readable sentence: why it was (not) published.
    pub reason: String,
    /// Set when `outcome` is `failed`.
    pub failure: Option<FailureKind>,
    pub retryable: bool,
    pub upload: Upload,
    /// ETag of the CSV as read (it may differ from the event's when the object was replaced since).
    pub read_etag: Option<String>,
    pub source: String,
    pub data_sha256: Option<String>,
    pub version: Option<String>,
    /// The settings overrides in force: environment defaults merged with the sidecar.
    pub overrides: Option<Overrides>,
    pub sidecar: Option<String>,
    /// The teacher file the run learned from (`data/<name>.teacher.csv`), when it used one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    pub forced: bool,
    pub rows_read: Option<u64>,
    pub rows_used: Option<u64>,
    pub skipped: Vec<SkipCount>,
    /// How the CSV was read: delimiter, columns, tag format, each set or detected.
    #[serde(default)]
    pub format: Option<FormatReport>,
    /// Signs the CSV was misread (tags that look mis-split); training went ahead.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The new model's headline test metrics.
    pub metrics: Option<PointerMetrics>,
    /// The model that was live when the decision was made, scored on the same test rows.
    pub incumbent: Option<Incumbent>,
    /// Every number the quality gate measured, its limits and each check's verdict.
    pub gate: Gate,
    pub timings: JobTimings,
    pub finished_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incumbent {
    pub version: String,
    pub sequencer: Option<String>,
    /// Micro-F1 on the new run's test rows; `None` when it could not be loaded (then it does
    /// not block the new model: a broken live model should be replaced).
    pub micro_f1: Option<f64>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTimings {
    pub read_seconds: f64,
    pub train_seconds: f64,
    pub publish_seconds: f64,
    pub total_seconds: f64,
}

impl JobReport {
    /// A report on `upload` with nothing decided yet.
    pub(crate) fn new(upload: Upload, source: String, cfg: &JobConfig) -> JobReport {
        JobReport {
            outcome: String::new(),
            reason: String::new(),
            failure: None,
            retryable: false,
            upload,
            read_etag: None,
            source,
            data_sha256: None,
            version: None,
            overrides: None,
            sidecar: None,
            teacher: None,
            forced: false,
            rows_read: None,
            rows_used: None,
            skipped: Vec::new(),
            format: None,
            warnings: Vec::new(),
            metrics: None,
            incumbent: None,
            gate: Gate::new(&cfg.gate_limits()),
            timings: JobTimings::default(),
            finished_at: String::new(),
        }
    }
}

/// Rows as a version's reference set stores them.
pub fn reference_rows(examples: &[tagger_train::dataset::Example]) -> Vec<ReferenceRow> {
    examples
        .iter()
        .map(|e| ReferenceRow {
            tags: e.tags.clone(),
            text: e.text.clone(),
        })
        .collect()
}
