//! Format 2's payload: frozen wire types, converted from and into [`Artifact`]. Never change a
//! type here; a new layout is a new format version with its own module.

use std::borrow::Cow;

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::{part, Artifact, HeadlineMetrics, ModelInfo, RowCounts};
use crate::error::Result;
use crate::labels::LabelSet;
use crate::model::{Dense, Mlp};
use crate::quant;
use crate::sparse::SparseRows;
use crate::text::Masker;
use crate::thresholds::Thresholds;
use crate::tokenizer::{Tokenizer, TokenizerConfig};

/// Borrowed when encoding, owned when decoding: saving copies no weights.
#[derive(Serialize, Deserialize)]
pub(super) struct Payload<'a> {
    info: Info<'a>,
    mask_words: Cow<'a, [String]>,
    mask_replacement: Cow<'a, str>,
    tokenizer: TokenizerConfigV2,
    vocabulary: Cow<'a, [String]>,
    label_names: Cow<'a, [String]>,
    label_counts: Cow<'a, [u64]>,
    layers: Vec<Layer<'a>>,
    threshold_global: f32,
    thresholds: Cow<'a, [f32]>,
    background_offsets: Cow<'a, [usize]>,
    background_indices: Cow<'a, [u32]>,
}

/// The model's description. Format 3 stores the same structure (see `v3`): it is frozen as of
/// format 2.
#[derive(Serialize, Deserialize)]
pub(super) struct Info<'a> {
    version: Cow<'a, str>,
    created_at: Cow<'a, str>,
    crate_version: Cow<'a, str>,
    source: Cow<'a, str>,
    data_sha256: Cow<'a, str>,
    rows_train: u64,
    rows_validation: u64,
    rows_test: u64,
    metrics: Option<Metrics>,
    training_json: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
struct Metrics {
    examples: u64,
    p_at_1: f64,
    micro_f1: f64,
    macro_f1: f64,
}

impl<'a> Info<'a> {
    pub(super) fn of(info: &'a ModelInfo) -> Self {
        Info {
            version: Cow::Borrowed(&info.version),
            created_at: Cow::Borrowed(&info.created_at),
            crate_version: Cow::Borrowed(&info.crate_version),
            source: Cow::Borrowed(&info.source),
            data_sha256: Cow::Borrowed(&info.data_sha256),
            rows_train: info.rows.train,
            rows_validation: info.rows.validation,
            rows_test: info.rows.test,
            metrics: info.metrics.as_ref().map(|m| Metrics {
                examples: m.examples,
                p_at_1: m.p_at_1,
                micro_f1: m.micro_f1,
                macro_f1: m.macro_f1,
            }),
            training_json: Cow::Borrowed(&info.training_json),
        }
    }

    pub(super) fn into_model_info(self) -> ModelInfo {
        ModelInfo {
            version: self.version.into_owned(),
            created_at: self.created_at.into_owned(),
            crate_version: self.crate_version.into_owned(),
            source: self.source.into_owned(),
            data_sha256: self.data_sha256.into_owned(),
            rows: RowCounts {
                train: self.rows_train,
                validation: self.rows_validation,
                test: self.rows_test,
            },
            metrics: self.metrics.map(|m| HeadlineMetrics {
                examples: m.examples,
                p_at_1: m.p_at_1,
                micro_f1: m.micro_f1,
                macro_f1: m.macro_f1,
            }),
            training_json: self.training_json.into_owned(),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum TokenizerConfigV2 {
    Keras {
        num_words: u64,
    },
    Words {
        min_count: u64,
        max_features: u64,
        bigrams: bool,
    },
}

/// A dense layer: weights row-major `(inputs, outputs)` as `bits`-wide codes with one scale
/// per row (see `crate::quant`), biases as `f32`.
#[derive(Serialize, Deserialize)]
struct Layer<'a> {
    inputs: u64,
    outputs: u64,
    bits: u8,
    scales: Vec<f32>,
    codes: Vec<u8>,
    bias: Cow<'a, [f32]>,
}

fn slice<T: Clone>(a: &[T]) -> Cow<'_, [T]> {
    Cow::Borrowed(a)
}

impl<'a> Payload<'a> {
    pub(super) fn from_artifact(a: &'a Artifact) -> Self {
        let (offsets, indices) = a.background.parts();
        Payload {
            info: Info::of(&a.info),
            mask_words: slice(a.masker.words()),
            mask_replacement: Cow::Borrowed(a.masker.replacement()),
            tokenizer: match *a.tokenizer.config() {
                TokenizerConfig::Keras { num_words } => TokenizerConfigV2::Keras {
                    num_words: num_words as u64,
                },
                TokenizerConfig::Words {
                    min_count,
                    max_features,
                    bigrams,
                    ..
                } => TokenizerConfigV2::Words {
                    min_count: min_count as u64,
                    max_features: max_features as u64,
                    bigrams,
                },
            },
            vocabulary: slice(a.tokenizer.vocabulary()),
            label_names: slice(a.labels.names()),
            label_counts: slice(a.labels.counts()),
            layers: a
                .model
                .layers()
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let bits = quant::bits_for_layer(i);
                    let weights = match (i, a.model.coded_first()) {
                        (0, Some(coded)) => Cow::Owned(coded.to_array()),
                        _ => Cow::Borrowed(&l.weights),
                    };
                    let (scales, codes) = quant::encode(&weights, bits);
                    Layer {
                        inputs: weights.nrows() as u64,
                        outputs: weights.ncols() as u64,
                        bits,
                        scales,
                        codes,
                        bias: match l.bias.as_slice() {
                            Some(b) => Cow::Borrowed(b),
                            None => Cow::Owned(l.bias.to_vec()),
                        },
                    }
                })
                .collect(),
            threshold_global: a.thresholds.global,
            thresholds: slice(&a.thresholds.per_tag),
            background_offsets: slice(offsets),
            background_indices: slice(indices),
        }
    }

    pub(super) fn into_artifact(self) -> Result<Artifact> {
        // The format has no field for repeat features: a vocabulary with any says they are on
        // (and one without encodes the same either way).
        let repeats = self
            .vocabulary
            .iter()
            .any(|w| crate::tokenizer::repeat_parts(w).is_some());
        let config = match self.tokenizer {
            TokenizerConfigV2::Keras { num_words } => TokenizerConfig::Keras {
                num_words: part("tokenizer", to_usize(num_words))?,
            },
            TokenizerConfigV2::Words {
                min_count,
                max_features,
                bigrams,
            } => TokenizerConfig::Words {
                min_count: part("tokenizer", to_usize(min_count))?,
                max_features: part("tokenizer", to_usize(max_features))?,
                bigrams,
                repeats,
                subwords: 0,
            },
        };
        let layers = self
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let (rows, cols) = (
                    part("layer", to_usize(l.inputs))?,
                    part("layer", to_usize(l.outputs))?,
                );
                let weights = quant::decode(rows, cols, l.bits, &l.scales, &l.codes).ok_or_else(
                    || {
                        super::Error::decode(format!(
                            "layer {i}: {} scales and {} bytes of {}-bit codes do not fit {rows} x {cols} weights",
                            l.scales.len(),
                            l.codes.len(),
                            l.bits
                        ))
                    },
                )?;
                Ok(Dense {
                    weights,
                    bias: Array1::from_vec(l.bias.into_owned()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let info = self.info;
        Ok(Artifact {
            info: info.into_model_info(),
            masker: Masker::new(self.mask_words.iter(), &self.mask_replacement),
            tokenizer: part(
                "tokenizer",
                Tokenizer::from_parts(config, self.vocabulary.into_owned()),
            )?,
            labels: part(
                "labels",
                LabelSet::from_parts(
                    self.label_names.into_owned(),
                    self.label_counts.into_owned(),
                ),
            )?,
            model: Mlp::from_layers(layers)?,
            thresholds: Thresholds {
                global: self.threshold_global,
                per_tag: self.thresholds.into_owned(),
            },
            background: part(
                "background",
                SparseRows::from_parts(
                    self.background_offsets.into_owned(),
                    self.background_indices.into_owned(),
                ),
            )?,
        })
    }
}

fn to_usize(v: u64) -> std::result::Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{v} does not fit this machine's usize"))
}
