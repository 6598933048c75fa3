//! Errors of the inference core. Messages are lowercase, specific, and quote the offending value,
//! so a CLI user or an API client can act on them without reading code.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid setting `{field}`: {message}")]
    InvalidConfig {
        field: &'static str,
        message: String,
    },

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

    #[error("artifact format version {found} is newer than this build reads (up to {supported}): upgrade tagger to a build that reads format {found}")]
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

    #[error("artifact payload cannot be decoded: {context}")]
    Decode {
        context: String,
        #[source]
        source: Option<bincode::error::DecodeError>,
    },

    #[error("artifact cannot be encoded")]
    Encode(#[source] bincode::error::EncodeError),

    #[error("artifact cannot be encoded: {0}")]
    Unencodable(String),

    #[error("question is empty")]
    EmptyQuestion,

    #[error(
        "model has no explainer background rows: retrain it with this version to get explanations"
    )]
    NoBackground,

    #[error("output {output} is out of range: the model has {n_outputs} outputs")]
    OutputOutOfRange { output: usize, n_outputs: usize },
}

impl Error {
    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            message: message.into(),
        }
    }

    /// A payload that is well-formed bincode but breaks an invariant of the format.
    pub fn decode(context: impl Into<String>) -> Self {
        Error::Decode {
            context: context.into(),
            source: None,
        }
    }
}
