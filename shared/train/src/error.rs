//! Errors of reading training data, validating settings and training. Messages are lowercase,
//! specific, and quote the offending value or row.

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

    #[error("csv row {row}: {source}")]
    CsvRow {
        row: u64,
        #[source]
        source: csv::Error,
    },

    #[error("csv row {row}: a quoted field is never closed, so the rest of the file ({lines} more lines) was read as one field; check the quotes in that row")]
    UnclosedQuote { row: u64, lines: u64 },

    #[error("csv row {row}: a quoted field opened there runs over {lines} line(s) and closes in the middle of a field on line {line}, so rows were merged; check the quotes in row {row} (a quote inside a quoted field is written \"\")")]
    MergedRows { row: u64, lines: u64, line: u64 },

    #[error("csv has more than {limit} distinct tags (`max_tags`; row {row} brings tag {tag:?} past it): merge or drop rare tags, or raise max_tags (at most 100000)")]
    TooManyTags { limit: usize, tag: String, row: u64 },

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

    #[error("invalid settings json{}: {source}", if path == "." { String::new() } else { format!(" at `{path}`") })]
    ConfigJson {
        /// Where in the object (`epochs`, `hidden[0]`; `.` for the whole document).
        path: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("invalid setting from {origin}: {message}")]
    ConfigValue { origin: String, message: String },

    #[error("cannot train: {0}")]
    Training(String),

    /// The caller's `on_epoch` asked to stop (a time budget ran out) after this many epochs.
    #[error("training stopped by its caller after {epochs} epochs")]
    Stopped { epochs: usize },

    #[error(transparent)]
    Core(#[from] tagger_core::Error),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config_json(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        Error::ConfigJson {
            path,
            source: e.into_inner(),
        }
    }

    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }
}
