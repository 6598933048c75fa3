//! The library's one error type. Messages are lowercase, specific, and quote the offending value,
//! so a CLI user or an API client can act on them without reading code.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("csv is empty: expected a header row naming `tags` and `text` columns")]
    EmptyCsv,

    #[error("csv has no `{column}` column (header: {header})")]
    MissingColumn {
        column: &'static str,
        header: String,
    },

    #[error("csv row {row}: {message}")]
    CsvRow { row: u64, message: String },

    #[error("csv row {row}: a quoted field is never closed, so the rest of the file ({lines} more lines) was read as one field; check the quotes in that row")]
    UnclosedQuote { row: u64, lines: u64 },

    #[error("csv has no usable rows ({total} data rows read; skipped: {skipped})")]
    NoUsableRows { total: u64, skipped: String },

    #[error("csv has too many unusable rows: {bad} of {total} ({percent:.1}%) exceed the limit of {limit_percent:.1}% (skipped: {skipped})")]
    TooManyBadRows {
        bad: u64,
        total: u64,
        percent: f64,
        limit_percent: f64,
        skipped: String,
    },

    #[error("invalid setting `{field}`: {message}")]
    InvalidConfig {
        field: &'static str,
        message: String,
    },

    #[error("invalid settings json: {0}")]
    ConfigJson(String),

    #[error("cannot train: {0}")]
    Training(String),

    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        what: &'static str,
        expected: String,
        found: String,
    },

    #[error("artifact is not a tagger model (magic bytes {found:?}, expected {expected:?})")]
    BadMagic {
        found: Vec<u8>,
        expected: &'static [u8],
    },

    #[error("artifact format version {found} is newer than this build ({supported}): upgrade tagger to load it")]
    VersionTooNew { found: u32, supported: u32 },

    #[error("artifact format version {found} is no longer supported (this build reads {min} to {supported}): retrain the model")]
    VersionTooOld {
        found: u32,
        min: u32,
        supported: u32,
    },

    #[error("artifact is truncated: {len} bytes, at least {needed} expected")]
    Truncated { len: usize, needed: usize },

    #[error(
        "artifact checksum mismatch (stored {stored}, computed {computed}): the file is corrupt"
    )]
    Checksum { stored: String, computed: String },

    #[error("artifact payload cannot be decoded: {0}")]
    Decode(String),

    #[error("question is empty")]
    EmptyQuestion,

    #[error(
        "model has no explainer background rows: retrain it with this version to get explanations"
    )]
    NoBackground,

    #[error("{0}")]
    Explain(String),

    #[error("output {output} is out of range: the model has {n_outputs} outputs")]
    OutputOutOfRange { output: usize, n_outputs: usize },

    #[error("object `{key}` not found")]
    NotFound { key: String },

    #[error("conditional write of `{key}` lost a race: it changed since it was read")]
    PreconditionFailed { key: String },

    #[error("storage {op} of `{key}` failed: {message}")]
    Store {
        op: &'static str,
        key: String,
        message: String,
        /// Whether trying again may succeed (throttling, timeouts), as opposed to a permanent fault.
        retryable: bool,
    },

    #[error("cannot write plot: {0}")]
    Plot(String),

    #[error("cannot draw png text: no usable font (searched {searched}); write svg instead or register a font file")]
    NoFont { searched: String },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }

    /// Faults worth retrying later (storage hiccups); everything else is permanent for this input.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retryable: true,
                ..
            } | Error::Io { .. }
        )
    }
}
