//! The function's settings, read once from the environment.

use std::time::Duration;

use tagger_registry::store::Location;
use tagger_telemetry::emf::Metrics;

/// Default for `MODEL_CACHE_SECS`.
pub const DEFAULT_MODEL_CACHE_SECS: u64 = 60;
/// Default for `MODEL_REFRESH_SECS`.
pub const DEFAULT_REFRESH_SECS: u64 = 60;
/// Default for `MAX_BODY_BYTES`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default for `MAX_INSTANCES`.
pub const DEFAULT_MAX_INSTANCES: usize = 100;
/// Default for `MAX_EXPLAIN_COST`: explained tags × distinct words the model knows, summed over the
/// instances of one request.
pub const DEFAULT_MAX_EXPLAIN_COST: u64 = 200_000;
/// Default for `BODY_TIMEOUT_SECS`: the longest wait for the next piece of a request body.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 10;
/// Default for `REQUEST_TIMEOUT_SECS`: the longest a whole request may take.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// Which browser origins may call the API from another origin (CORS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: only pages of the API's own origin can read its answers.
    #[default]
    None,
    /// `*`: any origin.
    Any,
    /// These exact origins (`https://example.com`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or a comma-separated list of origins (`scheme://host[:port]`); empty means none.
    pub fn parse(raw: &str) -> Result<CorsOrigins, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if items.contains(&"*") {
            return if items.len() == 1 {
                Ok(CorsOrigins::Any)
            } else {
                Err("`*` cannot be combined with other origins".into())
            };
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let origin = item.trim_end_matches('/');
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match host {
                Some(h)
                    if !h.is_empty()
                        && !h.contains('/')
                        && h.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    origins.push(origin.to_owned())
                }
                _ => {
                    return Err(format!(
                        "{item:?} is not an origin: expected scheme://host[:port] or *"
                    ))
                }
            }
        }
        Ok(CorsOrigins::List(origins))
    }
}

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

/// A version id to pin, if one is set: one path segment (what `tagger models list` prints).
fn model_version(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = raw.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if raw == "." || raw == ".." || raw.contains(['/', '\\']) || raw.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "MODEL_VERSION",
            format!("{raw:?} is not a version id (one folder name under the models prefix, as `tagger models list` prints it)"),
        ));
    }
    Ok(Some(raw))
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
    /// `CORS_ALLOW_ORIGINS` (default none): origins whose pages may call the API.
    pub cors: CorsOrigins,
    /// `MAX_EXPLAIN_COST` (default 200,000): a request whose explanations would cost more
    /// (explained tags × distinct known words, summed over instances) gets 422.
    pub max_explain_cost: u64,
    /// `BODY_TIMEOUT_SECS` (default 10): a body that sends nothing for this long gets 408.
    pub body_timeout: Duration,
    /// `REQUEST_TIMEOUT_SECS` (default 30): a request not answered by then gets 408.
    pub request_timeout: Duration,
    /// `MODEL_VERSION` (default none): serve this version (`<prefix>/<version>/model.bin`) and
    /// never reload; `latest.json` is not read. Empty means not pinned.
    pub model_version: Option<String>,
    /// Threads for prediction work at once (`tagger serve`); 0 runs it inline on the request's
    /// task, which suits Lambda's one event at a time. Not read from the environment.
    pub cpu_workers: usize,
    /// `METRICS` (`emf` or `off`; default `emf` inside Lambda, `off` elsewhere) and
    /// `METRICS_NAMESPACE` (default `Tagger`): one Embedded Metric Format line per request on
    /// standard output.
    pub metrics: Metrics,
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
            cors: CorsOrigins::None,
            max_explain_cost: DEFAULT_MAX_EXPLAIN_COST,
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            model_version: None,
            cpu_workers: 0,
            metrics: Metrics::off(),
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
            cors: match get("CORS_ALLOW_ORIGINS") {
                None => CorsOrigins::None,
                Some(raw) => CorsOrigins::parse(&raw).map_err(|e| {
                    ConfigError::new("CORS_ALLOW_ORIGINS", format!("{e} (got {raw:?})"))
                })?,
            },
            max_explain_cost: number("MAX_EXPLAIN_COST", DEFAULT_MAX_EXPLAIN_COST, 1)?,
            body_timeout: Duration::from_secs(number(
                "BODY_TIMEOUT_SECS",
                DEFAULT_BODY_TIMEOUT_SECS,
                1,
            )?),
            request_timeout: Duration::from_secs(number(
                "REQUEST_TIMEOUT_SECS",
                DEFAULT_REQUEST_TIMEOUT_SECS,
                1,
            )?),
            model_version: model_version(get("MODEL_VERSION"))?,
            cpu_workers: 0,
            metrics: Metrics::from_lookup(&get, "predict")
                .map_err(|(var, message)| ConfigError::new(var, message))?,
        })
    }

    /// The parsed `model_uri`.
    pub fn location(&self) -> Result<ModelLocation, ConfigError> {
        parse_location(&self.model_uri)
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
            ("MAX_EXPLAIN_COST", "0"),
            ("BODY_TIMEOUT_SECS", "0"),
            ("REQUEST_TIMEOUT_SECS", "x"),
            ("CORS_ALLOW_ORIGINS", "example.com"),
            ("CORS_ALLOW_ORIGINS", "*,https://a.example"),
            ("METRICS", "on"),
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
    fn model_version_pins_one_version_and_empty_means_unpinned() {
        let c = config(&[("MODEL_URI", "/m"), ("MODEL_VERSION", " v-123 ")]).unwrap();
        assert_eq!(c.model_version.as_deref(), Some("v-123"));
        let c = config(&[("MODEL_URI", "/m"), ("MODEL_VERSION", "")]).unwrap();
        assert_eq!(c.model_version, None);
        for bad in ["a/b", "..", "x\\y"] {
            let err = config(&[("MODEL_URI", "/m"), ("MODEL_VERSION", bad)]).unwrap_err();
            assert_eq!(err.var, "MODEL_VERSION", "{err}");
        }
    }

    #[test]
    fn cors_origins_parse() {
        let c = config(&[
            ("MODEL_URI", "/m"),
            (
                "CORS_ALLOW_ORIGINS",
                " https://a.example , http://127.0.0.1:8080/ ",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.cors,
            CorsOrigins::List(vec![
                "https://a.example".into(),
                "http://127.0.0.1:8080".into()
            ])
        );
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(" , "), Ok(CorsOrigins::None));
        assert!(CorsOrigins::parse("https://a.example/page").is_err());
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
