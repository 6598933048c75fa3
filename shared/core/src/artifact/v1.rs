//! Format 1's payload: the positional bincode of the first release's artifact struct, which
//! embedded that release's internal settings, load report, metrics and history types. They are
//! frozen here, field for field, so format-1 files keep loading; training's parts go into
//! [`ModelInfo::training_json`] with the field names they had, which the training crate's
//! record type still reads.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::{part, Artifact, HeadlineMetrics, ModelInfo, RowCounts};
use crate::error::Result;
use crate::labels::LabelSet;
use crate::model::{Dense, Mlp};
use crate::sparse::SparseRows;
use crate::text::Masker;
use crate::thresholds::Thresholds;
use crate::tokenizer::{Tokenizer, TokenizerConfig};

#[derive(Deserialize)]
pub(super) struct Payload {
    provenance: Provenance,
    settings: Settings,
    masker: MaskerV1,
    tokenizer: TokenizerV1,
    labels: LabelsV1,
    model: MlpV1,
    thresholds: ThresholdsV1,
    background: SparseV1,
    metrics: Option<Report>,
    history: Vec<EpochStats>,
}

#[derive(Deserialize)]
struct Provenance {
    version: String,
    created_at: String,
    crate_version: String,
    source: String,
    data_sha256: String,
    rows: RowCountsV1,
    train_load: LoadReport,
}

#[derive(Deserialize)]
struct RowCountsV1 {
    train: usize,
    validation: usize,
    test: usize,
}

#[derive(Serialize, Deserialize)]
struct LoadReport {
    rows_read: u64,
    rows_used: u64,
    skipped: Vec<SkipCount>,
}

#[derive(Serialize, Deserialize)]
struct SkipCount {
    reason: SkipReason,
    count: u64,
    first_rows: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
enum SkipReason {
    MissingField,
    MalformedRow,
    InvalidUtf8,
    TextTooLong,
    EmptyText,
    NoTags,
}

#[derive(Serialize, Deserialize)]
struct Settings {
    preset: Preset,
    tokenizer: TokenizerConfigV1,
    train: TrainConfig,
    thresholds: ThresholdStrategy,
    validation_split: f64,
    shuffle: bool,
    refit: bool,
    auto_size: bool,
    test_split: f64,
    mask: MaskSettings,
    csv: CsvOptions,
    background_rows: usize,
    background_mode: BackgroundMode,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Preset {
    Seed,
    Default,
}

#[derive(Clone, Serialize, Deserialize)]
enum TokenizerConfigV1 {
    Keras {
        num_words: usize,
    },
    Words {
        min_count: usize,
        max_features: usize,
        bigrams: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct TrainConfig {
    hidden: Vec<usize>,
    epochs: usize,
    batch_size: usize,
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    dropout: f32,
    early_stopping_patience: usize,
    seed: u64,
    sparse_adam: bool,
    lr_decay: f32,
}

#[derive(Serialize, Deserialize)]
enum ThresholdStrategy {
    Fixed(f32),
    Global,
    PerTag { min_support: usize, floor: f32 },
}

#[derive(Serialize, Deserialize)]
struct MaskSettings {
    tag_names: bool,
    words: Vec<String>,
    replacement: String,
}

#[derive(Serialize, Deserialize)]
struct CsvOptions {
    tag_separator: char,
    max_bad_fraction: f64,
    max_text_bytes: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackgroundMode {
    Sample,
    First,
}

#[derive(Deserialize)]
struct MaskerV1 {
    words: Vec<String>,
    replacement: String,
}

#[derive(Deserialize)]
struct TokenizerV1 {
    config: TokenizerConfigV1,
    vocab: Vec<String>,
}

#[derive(Deserialize)]
struct LabelsV1 {
    names: Vec<String>,
    counts: Vec<u64>,
}

#[derive(Deserialize)]
struct MlpV1 {
    layers: Vec<DenseV1>,
}

#[derive(Deserialize)]
struct DenseV1 {
    weights: Array2<f32>,
    bias: Array1<f32>,
}

#[derive(Deserialize)]
struct ThresholdsV1 {
    global: f32,
    per_tag: Vec<f32>,
}

#[derive(Deserialize)]
struct SparseV1 {
    indptr: Vec<usize>,
    indices: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct TagMetrics {
    tag: String,
    precision: f64,
    recall: f64,
    f1: f64,
    support: u64,
    predicted: u64,
}

#[derive(Serialize, Deserialize)]
struct Report {
    examples: usize,
    p_at_1: f64,
    r_at_1: f64,
    micro_precision: f64,
    micro_recall: f64,
    micro_f1: f64,
    macro_f1: f64,
    exact_match: f64,
    binary_accuracy: f64,
    per_tag: Vec<TagMetrics>,
}

#[derive(Serialize, Deserialize)]
struct EpochStats {
    epoch: usize,
    train_loss: f32,
    val_loss: Option<f32>,
    val_micro_f1: Option<f32>,
    seconds: f64,
}

/// The training record's JSON shape (the training crate's `TrainingRecord`).
#[derive(Serialize)]
struct Record<'a> {
    settings: &'a Settings,
    metrics: &'a Option<Report>,
    history: &'a [EpochStats],
    train_load: &'a LoadReport,
}

impl Payload {
    pub(super) fn into_artifact(self) -> Result<Artifact> {
        let p = self.provenance;
        let training_json = serde_json::to_string(&Record {
            settings: &self.settings,
            metrics: &self.metrics,
            history: &self.history,
            train_load: &p.train_load,
        })
        .expect("plain structs serialise to json");
        let config = match self.tokenizer.config {
            TokenizerConfigV1::Keras { num_words } => TokenizerConfig::Keras { num_words },
            TokenizerConfigV1::Words {
                min_count,
                max_features,
                bigrams,
            } => TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats: false,
                subwords: 0,
            },
        };
        Ok(Artifact {
            info: ModelInfo {
                version: p.version,
                created_at: p.created_at,
                crate_version: p.crate_version,
                source: p.source,
                data_sha256: p.data_sha256,
                rows: RowCounts {
                    train: p.rows.train as u64,
                    validation: p.rows.validation as u64,
                    test: p.rows.test as u64,
                },
                metrics: self.metrics.as_ref().map(|m| HeadlineMetrics {
                    examples: m.examples as u64,
                    p_at_1: m.p_at_1,
                    micro_f1: m.micro_f1,
                    macro_f1: m.macro_f1,
                }),
                training_json,
            },
            masker: Masker::new(self.masker.words, &self.masker.replacement),
            tokenizer: part(
                "tokenizer",
                Tokenizer::from_parts(config, self.tokenizer.vocab),
            )?,
            labels: part(
                "labels",
                LabelSet::from_parts(self.labels.names, self.labels.counts),
            )?,
            model: Mlp::from_layers(
                self.model
                    .layers
                    .into_iter()
                    .map(|l| Dense {
                        weights: l.weights,
                        bias: l.bias,
                    })
                    .collect(),
            )?,
            thresholds: Thresholds {
                global: self.thresholds.global,
                per_tag: self.thresholds.per_tag,
            },
            background: part(
                "background",
                SparseRows::from_parts(self.background.indptr, self.background.indices),
            )?,
        })
    }
}
