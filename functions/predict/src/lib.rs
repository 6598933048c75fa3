//! The `predict` function: HTTP tag prediction served from the latest published model.
//!
//! One handler answers a Lambda Function URL, an API Gateway HTTP API (v2) and a REST API (v1),
//! because `lambda_http` turns all three events into one `http::Request`; `tagger serve` runs the
//! same [`handle`] behind a local HTTP server.
//!
//! ```text
//! request -> handler (route, content type, JSON/text/HTML body, options)
//!         -> models (the current Artifact; a conditional GET of latest.json at most every
//!            MODEL_REFRESH_SECS swaps a new one in)
//!         -> Artifact::predict -> JSON response
//! ```
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use tagger_registry::store::LocalStore;
//!
//! let config = predict::Config::for_local("file:///tmp/models");
//! let store = Arc::new(LocalStore::new("/tmp/models"));
//! // Loads the model now; a missing one is not an error: requests get 503 until one appears.
//! let state = predict::State::new(store, "", config).await;
//! let req = lambda_http::request::from_str(include_str!("../fixtures/apigw-v2-predict.json")).unwrap();
//! let resp = predict::handle(req, &state).await;
//! assert_eq!(resp.status(), 200);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tagger_registry::store::{Location, ObjectStore};

mod handler;
mod models;
#[doc(hidden)]
pub use handler::handle;
pub use models::{ModelCache, RefreshOutcome, Served};

/// Default for `MODEL_CACHE_SECS`.
pub const DEFAULT_MODEL_CACHE_SECS: u64 = 60;
/// Default for `MODEL_REFRESH_SECS`.
pub const DEFAULT_REFRESH_SECS: u64 = 60;
/// Default for `MAX_BODY_BYTES`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default for `MAX_INSTANCES`.
pub const DEFAULT_MAX_INSTANCES: usize = 100;

/// A configuration variable that is missing or malformed; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            var,
            message: message.into(),
        }
    }
}

/// Where the models live, parsed from `MODEL_URI` by the registry's one uri parser.
pub type ModelLocation = Location;

fn parse_location(uri: &str) -> Result<ModelLocation, ConfigError> {
    Location::parse(uri).map_err(|e| ConfigError::new("MODEL_URI", e.to_string()))
}

/// Everything the function reads from its environment, once, at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MODEL_URI` (required): `s3://bucket/prefix`, `file:///dir` or a plain path.
    pub model_uri: String,
    /// `MODEL_REFRESH_SECS` (default 60): the least time between two checks of the pointer;
    /// 0 checks on every request.
    pub refresh: Duration,
    /// `MAX_BODY_BYTES` (default 1 MiB): larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `MAX_INSTANCES` (default 100): larger batches get 413.
    pub max_instances: usize,
    /// `MODEL_CACHE_SECS` (default 60): how long a `GET /model` answer may be cached (the edge
    /// cache honours it); 0 sends `no-store`.
    pub model_cache_secs: u64,
}

impl Config {
    /// Defaults for a local model folder (`tagger serve`, tests).
    pub fn for_local(model_uri: impl Into<String>) -> Config {
        Config {
            model_uri: model_uri.into(),
            refresh: Duration::from_secs(DEFAULT_REFRESH_SECS),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            model_cache_secs: DEFAULT_MODEL_CACHE_SECS,
        }
    }

    /// Reads the process environment; a missing or bad variable is an error naming it.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`] with any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let model_uri = get("MODEL_URI").ok_or_else(|| {
            ConfigError::new(
                "MODEL_URI",
                "is not set: expected s3://bucket/prefix, file:///dir or a path",
            )
        })?;
        parse_location(&model_uri)?;
        let number = |var: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<u64>() {
                    Ok(v) if v >= min => Ok(v),
                    _ => Err(ConfigError::new(
                        var,
                        format!("expected a whole number >= {min}, got {raw:?}"),
                    )),
                },
            }
        };
        let to_usize = |var: &'static str, v: u64| {
            usize::try_from(v)
                .map_err(|_| ConfigError::new(var, format!("{v} is too large for this platform")))
        };
        Ok(Config {
            model_uri: model_uri.trim().to_owned(),
            refresh: Duration::from_secs(number("MODEL_REFRESH_SECS", DEFAULT_REFRESH_SECS, 0)?),
            max_body_bytes: to_usize(
                "MAX_BODY_BYTES",
                number("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES as u64, 1)?,
            )?,
            max_instances: to_usize(
                "MAX_INSTANCES",
                number("MAX_INSTANCES", DEFAULT_MAX_INSTANCES as u64, 1)?,
            )?,
            model_cache_secs: number("MODEL_CACHE_SECS", DEFAULT_MODEL_CACHE_SECS, 0)?,
        })
    }

    /// The parsed `model_uri`.
    pub fn location(&self) -> Result<ModelLocation, ConfigError> {
        parse_location(&self.model_uri)
    }
}

/// What every request shares: the configuration and the model cache. Build it once per process.
pub struct State {
    config: Config,
    models: ModelCache,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .field("models", &self.models)
            .finish()
    }
}

impl State {
    /// Builds the state and loads the published model (call it at init). `prefix` is the key
    /// prefix inside `store` that holds `latest.json` (`""` when the store is rooted at the models
    /// folder, as `tagger_s3::open("s3://bucket/models")` and a local folder are).
    ///
    /// No model, or one that fails to load, is logged, not an error: the function answers 503
    /// until a later refresh finds a good one.
    pub async fn new(store: Arc<dyn ObjectStore>, prefix: &str, config: Config) -> State {
        let state = State::unloaded(store, prefix, config);
        state.models.refresh_now().await;
        state
    }

    /// Like [`State::new`] without the initial load: the first request loads the model.
    pub fn unloaded(store: Arc<dyn ObjectStore>, prefix: &str, config: Config) -> State {
        let models = ModelCache::new(store, prefix, config.refresh);
        State { config, models }
    }

    /// Checks the pointer now, whatever the refresh interval, and swaps in a changed model.
    pub async fn refresh_now(&self) -> RefreshOutcome {
        self.models.refresh_now().await
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn models(&self) -> &ModelCache {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn config_defaults_apply_when_only_model_uri_is_set() {
        let c = config(&[("MODEL_URI", "s3://bucket/models")]).unwrap();
        assert_eq!(c, Config::for_local("s3://bucket/models"));
        assert_eq!(c.refresh, Duration::from_secs(60));
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.max_instances, 100);
    }

    #[test]
    fn config_errors_name_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err.var, "MODEL_URI");
        for (var, bad) in [
            ("MODEL_REFRESH_SECS", "soon"),
            ("MODEL_REFRESH_SECS", "-1"),
            ("MAX_BODY_BYTES", "0"),
            ("MAX_BODY_BYTES", "1MB"),
            ("MAX_INSTANCES", "0"),
            ("MAX_INSTANCES", "1.5"),
        ] {
            let err = config(&[("MODEL_URI", "/tmp/m"), (var, bad)]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(
                err.to_string().contains(var) && err.to_string().contains(bad),
                "{err}"
            );
        }
        let err = config(&[("MODEL_URI", "http://example.com/models")]).unwrap_err();
        assert!(
            err.var == "MODEL_URI" && err.message.contains("http"),
            "{err}"
        );
    }

    #[test]
    fn config_reads_explicit_values() {
        let c = config(&[
            ("MODEL_URI", " file:///srv/models "),
            ("MODEL_REFRESH_SECS", "0"),
            ("MAX_BODY_BYTES", "2048"),
            ("MAX_INSTANCES", "7"),
        ])
        .unwrap();
        assert_eq!(c.model_uri, "file:///srv/models");
        assert_eq!(
            (c.refresh, c.max_body_bytes, c.max_instances),
            (Duration::ZERO, 2048, 7)
        );
    }

    #[test]
    fn model_uri_forms_parse() {
        assert_eq!(
            ModelLocation::parse("s3://bkt/models/").unwrap(),
            ModelLocation::S3 {
                bucket: "bkt".into(),
                prefix: "models".into()
            }
        );
        assert_eq!(
            ModelLocation::parse("s3://bkt").unwrap(),
            ModelLocation::S3 {
                bucket: "bkt".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            ModelLocation::parse("file:///srv/m").unwrap(),
            ModelLocation::Local("/srv/m".into())
        );
        assert_eq!(
            ModelLocation::parse("file://rel/m").unwrap(),
            ModelLocation::Local("rel/m".into())
        );
        assert_eq!(
            ModelLocation::parse("./m").unwrap(),
            ModelLocation::Local("./m".into())
        );
        assert!(ModelLocation::parse("s3:///models").is_err());
        assert!(ModelLocation::parse("").is_err());
        assert!(ModelLocation::parse("file://").is_err());
    }
}
