//! Where things live in the bucket and what a new model must achieve.

use super::*;

/// `MAX_UPLOAD_MB`'s default: the largest CSV the job reads.
pub const DEFAULT_MAX_UPLOAD_MB: u64 = 1000;

/// Where things live in the bucket and what a new model must achieve to be published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    /// Uploads under this prefix trigger training (`data/`).
    pub data_prefix: String,
    /// Versions and the pointer (`models`).
    pub model_prefix: String,
    /// One report per upload (`reports`).
    pub report_prefix: String,
    /// A new model's test micro-F1 must be at least this.
    pub min_micro_f1: f64,
    /// ... and at most this much below the current model's, on the same test rows and on the
    /// live version's reference set.
    pub max_regression: f64,
    /// ... and at least this much above the no-skill baseline on its own test rows.
    pub min_skill_margin: f64,
    /// Without `force`, the candidate's tags must cover at least this share of the live
    /// model's training tag occurrences.
    pub min_label_mass: f64,
    /// Without `force`, at least this share of the rows must have distinct text.
    pub min_distinct_fraction: f64,
    /// Uploads larger than this are refused before they are read.
    pub max_upload_bytes: u64,
    /// Training settings from the environment; a sidecar overrides them field by field.
    pub defaults: Overrides,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            data_prefix: "data/".into(),
            model_prefix: "models".into(),
            report_prefix: "reports".into(),
            min_micro_f1: 0.1,
            max_regression: 0.02,
            min_skill_margin: 0.05,
            min_label_mass: 0.5,
            min_distinct_fraction: 0.5,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_MB << 20,
            defaults: Overrides::default(),
        }
    }
}

impl JobConfig {
    /// Rejects layouts that would let the job write where uploads trigger it, and nonsense gates.
    pub fn validate(&self) -> Result<(), tagger_train::Error> {
        let data = self.data_prefix.trim_start_matches('/');
        if data.is_empty() {
            return Err(tagger_train::Error::config(
                "data_prefix",
                "must not be empty: every object in the bucket would trigger training",
            ));
        }
        for (field, prefix) in [
            ("model_prefix", &self.model_prefix),
            ("report_prefix", &self.report_prefix),
        ] {
            let p = prefix.trim_matches('/');
            if p.is_empty() {
                return Err(tagger_train::Error::config(field, "must not be empty"));
            }
            if format!("{p}/").starts_with(data) || data.starts_with(&format!("{p}/")) {
                return Err(tagger_train::Error::config(
                    field,
                    format!("{prefix:?} overlaps the data prefix {:?}: writing there would retrigger training", self.data_prefix),
                ));
            }
        }
        for (field, value) in [
            ("min_micro_f1", self.min_micro_f1),
            ("min_label_mass", self.min_label_mass),
            ("min_distinct_fraction", self.min_distinct_fraction),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(tagger_train::Error::config(
                    field,
                    format!("must be in [0, 1], got {value}"),
                ));
            }
        }
        for (field, value) in [
            ("max_regression", self.max_regression),
            ("min_skill_margin", self.min_skill_margin),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(tagger_train::Error::config(
                    field,
                    format!("must be a non-negative number, got {value}"),
                ));
            }
        }
        if self.max_upload_bytes == 0 {
            return Err(tagger_train::Error::config(
                "max_upload_bytes",
                "must be positive",
            ));
        }
        Settings::default().apply(&self.defaults)?;
        Ok(())
    }

    /// `reports/<data key>.json`.
    pub fn report_key(&self, data_key: &str) -> String {
        join(&self.report_prefix, &format!("{data_key}.json"))
    }

    pub fn gate_limits(&self) -> GateLimits {
        GateLimits {
            min_micro_f1: self.min_micro_f1,
            max_regression: self.max_regression,
            min_skill_margin: self.min_skill_margin,
            min_label_mass: self.min_label_mass,
            min_distinct_fraction: self.min_distinct_fraction,
        }
    }
}
