//! Errors of storage and the registry.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("object `{key}` not found")]
    NotFound { key: String },

    #[error("conditional write of `{key}` lost a race: it changed since it was read")]
    PreconditionFailed { key: String },

    #[error("storage {op} of `{key}` failed: {message}")]
    Store {
        op: &'static str,
        key: String,
        message: String,
        /// Whether trying again may succeed (throttling, timeouts), as opposed to a permanent
        /// fault (access denied, a missing bucket, a KMS key that cannot be used).
        retryable: bool,
    },

    #[error("pointer `{key}` is not valid json: {source}")]
    Pointer {
        key: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{key}` is not valid json: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },

    /// The store refuses us for a reason only a change of configuration fixes: access denied,
    /// a bucket that does not exist, a KMS key that cannot be used.
    #[error("storage {op} of `{key}` failed (storage configuration): {message}")]
    StorageConfig {
        op: &'static str,
        key: String,
        message: String,
    },

    #[error("object `{key}` is larger than the {limit} bytes allowed{}", size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        key: String,
        /// Its size, when the store said so before the read.
        size: Option<u64>,
        limit: u64,
    },

    #[error("version {version} cannot be published: {source}")]
    Artifact {
        version: String,
        #[source]
        source: tagger_core::Error,
    },

    #[error("invalid store uri `{uri}`: {message}")]
    BadUri { uri: String, message: String },

    #[error(transparent)]
    Core(#[from] tagger_core::Error),
}

impl Error {
    /// Faults worth retrying later (storage hiccups); everything else is permanent.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retryable: true,
                ..
            }
        )
    }
}
