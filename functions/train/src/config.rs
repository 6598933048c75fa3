//! The function's configuration, read once at start from the environment. A bad value fails the
//! cold start with the variable's name in the message, rather than every invocation later.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `DATA_PREFIX` | `data/` | uploads under it train; nothing is ever written there |
//! | `MODEL_PREFIX` | `models` | versions and `latest.json` / `previous.json` |
//! | `REPORT_PREFIX` | `reports` | `reports/<data key>.json` per upload |
//! | `MIN_MICRO_F1` | `0.1` | quality gate: minimum test micro-F1 |
//! | `MAX_REGRESSION` | `0.02` | quality gate: allowed micro-F1 drop vs the live model |
//! | `TRAIN_<SETTING>` | preset's | every training setting under its own name, upper-cased: `TRAIN_PRESET` (`default` or `seed`), `TRAIN_EPOCHS`, `TRAIN_HIDDEN` (`256` or `50,25`), `TRAIN_BATCH_SIZE`, `TRAIN_LEARNING_RATE`, ..., `TRAIN_MAX_MEMORY_MB` (the README's settings list); parsed as the CLI's flag of that name; a dataset's sidecar overrides them |
//! | `TRAIN_SETTINGS` | none | the same defaults as one JSON object (sidecar format, without `force`); single variables win |
//! | `METRICS` | `emf` in Lambda, else `off` | one Embedded Metric Format document per upload on standard output |
//! | `METRICS_NAMESPACE` | `Tagger` | their CloudWatch namespace |
//!
//! `force` is never a default: it is a per-dataset decision, made in the sidecar only. A
//! `TRAIN_*` variable that names no setting is an error, not a silently ignored typo.

use std::str::FromStr;

use anyhow::{anyhow, Context as _, Result};
use tagger_job::JobConfig;
use tagger_telemetry::emf::Metrics;
use tagger_train::config::Overrides;

/// Everything the function reads from its environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub job: JobConfig,
    pub metrics: Metrics,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        // `vars()` would panic on a variable that is not unicode; those are not ours to read.
        let vars: std::collections::HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_vars(&vars)
    }

    /// Reads from a set of variables, rejecting a `TRAIN_*` one that names no setting (a typo
    /// would otherwise train with the preset's value and say nothing).
    pub fn from_vars(vars: &std::collections::HashMap<String, String>) -> Result<Self> {
        let known: Vec<String> = Overrides::names()
            .iter()
            .map(|n| Overrides::env_var(n))
            .chain(["TRAIN_SETTINGS".to_owned()])
            .collect();
        if let Some(unknown) = vars
            .keys()
            .filter(|k| k.starts_with("TRAIN_") && !known.contains(k))
            .min()
        {
            return Err(anyhow!(
                "{unknown} is not a training setting (known: {})",
                known.join(", ")
            ));
        }
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Reads from any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let defaults = JobConfig::default();
        let json = match get("TRAIN_SETTINGS") {
            Some(json) => Overrides::from_json(json.as_bytes()).context("TRAIN_SETTINGS")?,
            None => Overrides::default(),
        };
        let overrides = json.merged(&Overrides::from_env(get)?);

        let mut job = JobConfig {
            defaults: overrides,
            ..defaults
        };
        if let Some(v) = get("DATA_PREFIX") {
            job.data_prefix = v;
        }
        if let Some(v) = get("MODEL_PREFIX") {
            job.model_prefix = v;
        }
        if let Some(v) = get("REPORT_PREFIX") {
            job.report_prefix = v;
        }
        let mut min = Some(job.min_micro_f1);
        set(&get, "MIN_MICRO_F1", &mut min)?;
        let mut margin = Some(job.max_regression);
        set(&get, "MAX_REGRESSION", &mut margin)?;
        job.min_micro_f1 = min.unwrap_or(job.min_micro_f1);
        job.max_regression = margin.unwrap_or(job.max_regression);
        job.validate()
            .map_err(|e| anyhow!("invalid training configuration from the environment: {e}"))?;
        let metrics =
            Metrics::from_lookup(get, "train").map_err(|(var, e)| anyhow!("{var}: {e}"))?;
        Ok(Config { job, metrics })
    }
}

fn set<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut Option<T>,
) -> Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Some(raw) = get(name) {
        let v = raw
            .parse::<T>()
            .map_err(|e| anyhow!("{name}: cannot parse {raw:?}: {e}"))?;
        *slot = Some(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&map)
    }

    #[test]
    fn empty_environment_gives_the_documented_defaults() {
        let c = from(&[]).unwrap();
        assert_eq!(c.job, JobConfig::default());
    }

    #[test]
    fn reads_prefixes_gate_and_training_defaults() {
        let c = from(&[
            ("DATA_PREFIX", "uploads/"),
            ("MIN_MICRO_F1", "0.3"),
            ("TRAIN_PRESET", "seed"),
            ("TRAIN_HIDDEN", "50, 25"),
            ("TRAIN_SETTINGS", r#"{"epochs": 2, "seed": 7}"#),
            ("TRAIN_EPOCHS", "4"),
        ])
        .unwrap();
        assert_eq!(c.job.data_prefix, "uploads/");
        assert_eq!(c.job.min_micro_f1, 0.3);
        let o = &c.job.defaults;
        assert_eq!(
            (o.epochs, o.seed, o.hidden.clone()),
            (Some(4), Some(7), Some(vec![50, 25]))
        );
    }

    #[test]
    fn bad_variable_is_named_in_the_error() {
        for (name, value) in [
            ("TRAIN_EPOCHS", "three"),
            ("MIN_MICRO_F1", "high"),
            ("TRAIN_HIDDEN", "50;25"),
            ("TRAIN_PRESET", "best"),
        ] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(format!("{err:#}").contains(name), "{name}: {err:#}");
        }
        let err = from(&[("TRAIN_SETTINGS", r#"{"epochz": 1}"#)]).unwrap_err();
        assert!(format!("{err:#}").contains("TRAIN_SETTINGS"), "{err:#}");
        let err = from(&[("TRAIN_EPOCHS", "0")]).unwrap_err();
        assert!(format!("{err:#}").contains("epochs"), "{err:#}");
    }

    #[test]
    fn every_setting_has_its_variable_and_force_is_not_one() {
        let c = from(&[
            ("TRAIN_LEARNING_RATE", "0.001"),
            ("TRAIN_MASK_WORDS", "tf,sklearn"),
            ("TRAIN_MAX_MEMORY_MB", "2048"),
            ("TRAIN_REFIT", "false"),
        ])
        .unwrap();
        let o = &c.job.defaults;
        assert_eq!(o.learning_rate, Some(0.001));
        assert_eq!(o.mask_words, Some(vec!["tf".into(), "sklearn".into()]));
        assert_eq!((o.max_memory_mb, o.refit), (Some(2048), Some(false)));
        let err = from(&[("TRAIN_SETTINGS", r#"{"force": true}"#)]).unwrap_err();
        assert!(format!("{err:#}").contains("force"), "{err:#}");
        let err = from(&[("TRAIN_FORCE", "true")]).unwrap_err();
        assert!(format!("{err:#}").contains("TRAIN_FORCE"), "{err:#}");
        let err = from(&[("TRAIN_EPOCHZ", "3")]).unwrap_err();
        assert!(format!("{err:#}").contains("TRAIN_EPOCHZ"), "{err:#}");
        for (name, value) in [("TRAIN_LEARNING_RATE", "NaN"), ("TRAIN_DROPOUT", "inf")] {
            let err = from(&[(name, value)]).unwrap_err();
            assert!(format!("{err:#}").contains(name), "{name}: {err:#}");
        }
    }

    #[test]
    fn rejects_model_prefix_inside_the_data_prefix() {
        let err = from(&[("MODEL_PREFIX", "data/models")]).unwrap_err();
        assert!(format!("{err:#}").contains("model_prefix"), "{err:#}");
    }
}
