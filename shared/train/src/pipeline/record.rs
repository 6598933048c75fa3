//! What a run takes in and gives out: the rows, the run report, the record kept in the artifact.

use serde::{Deserialize, Serialize};
use tagger_core::artifact::{Artifact, HeadlineMetrics, ModelInfo, RowCounts};

use crate::config::Settings;
use crate::dataset::{Example, LoadReport};
use crate::metrics::Report;
use crate::train::EpochStats;

/// Training rows and where they came from.
#[derive(Clone, Debug)]
pub struct TrainData {
    pub examples: Vec<Example>,
    pub load: LoadReport,
    /// Human-readable origin (`s3://bucket/data/x.csv`, a path).
    pub source: String,
    /// SHA-256 (hex) of the bytes the rows were read from.
    pub sha256: String,
}

/// A separate test set (otherwise `Settings::test_split` of the training rows is held out).
#[derive(Clone, Debug)]
pub struct TestData {
    pub examples: Vec<Example>,
    pub load: LoadReport,
}

/// Everything about one training run, written as `metrics.json` beside the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub version: String,
    pub source: String,
    pub created_at: String,
    pub rows: RowCounts,
    pub labels: usize,
    pub features: usize,
    pub train_load: LoadReport,
    pub test_load: Option<LoadReport>,
    /// Test tag occurrences whose tag never appears in training (they count as misses).
    pub unknown_test_tags: u64,
    /// Tags trained without an output unit, on fewer than `settings.train.min_tag_rows`
    /// training rows: never predicted, still counted in the metrics.
    #[serde(default)]
    pub untrained_tags: usize,
    pub metrics: Option<Report>,
    pub history: Vec<EpochStats>,
    pub best_epoch: usize,
    pub timings: Timings,
    pub settings: Settings,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub prepare_seconds: f64,
    pub fit_seconds: f64,
    pub calibrate_seconds: f64,
    pub evaluate_seconds: f64,
    pub total_seconds: f64,
}

/// Training's record of a run inside the artifact ([`ModelInfo::training_json`]): what
/// `tagger info` and `GET /model` show beyond the headline figures. Read with defaults, so
/// records written by older builds (format 1 included) still parse.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingRecord {
    pub settings: Option<Settings>,
    pub metrics: Option<Report>,
    /// Per-epoch losses; wall times are zeroed (they live in the run report) so that the same
    /// inputs give the same bytes.
    pub history: Vec<EpochStats>,
    pub train_load: LoadReport,
}

impl TrainingRecord {
    /// The record in `info`; a record that does not parse reads as empty (it is informational).
    pub fn of(info: &ModelInfo) -> TrainingRecord {
        serde_json::from_str(&info.training_json).unwrap_or_default()
    }
}

/// The headline figures of a test report.
pub fn headline(r: &Report) -> HeadlineMetrics {
    HeadlineMetrics {
        examples: r.examples as u64,
        p_at_1: r.p_at_1,
        micro_f1: r.micro_f1,
        macro_f1: r.macro_f1,
    }
}

#[derive(Clone, Debug)]
pub struct Trained {
    pub artifact: Artifact,
    pub report: RunReport,
    /// The raw test rows, so a caller can score another model on exactly the same data.
    pub test_examples: Vec<Example>,
}
