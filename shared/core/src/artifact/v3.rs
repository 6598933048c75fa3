//! Format 3's payload, laid out to be decoded while it downloads:
//!
//! ```text
//! meta length (u32 LE) | meta inflated length (u32 LE) | meta: deflate(bincode(Meta))
//! | layer 0 codes | layer 1 codes | ...       (each as `crate::quant::encode` packs it)
//! ```
//!
//! `Meta` is everything but the weight codes: model info and training record, masker,
//! tokenizer and vocabulary, labels, thresholds, explainer background, and per layer its shape,
//! bit width, row scales and biases. It is small (tens of kB), text-heavy and compresses well;
//! the codes are most of the file, already dense, and are unpacked into weights piece by piece
//! as they arrive ([`crate::quant::Unpacker`]), so decoding ends with the download.
//!
//! Format 4 is this layout with one more tokenizer variant, `WordsSubwords` (a word tokenizer
//! with sub-word features): written only for such tokenizers, so every other model stays in
//! format 3, byte for byte, and a reader of format 3 alone refuses format 4 by its version
//! instead of misreading it. A format-3 payload holding that variant is rejected.
//!
//! Never change a type here otherwise; a new layout is a new format version with its own module.

use std::borrow::Cow;

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::v2::Info;
use super::{bincode_config, part, Artifact, ModelInfo};
use crate::error::{Error, Result};
use crate::labels::LabelSet;
use crate::model::{Dense, Mlp};
use crate::quant::{self, Unpacker};
use crate::sparse::SparseRows;
use crate::text::Masker;
use crate::thresholds::Thresholds;
use crate::tokenizer::{Tokenizer, TokenizerConfig};

/// The two `u32` lengths before the meta block.
const FRAME_LEN: usize = 8;
/// Vocabulary entries are joined with this byte; no tokenizer produces a token containing it
/// (both split on whitespace).
const VOCAB_SEPARATOR: char = '\n';
/// Deflate level of the meta block: written once per training, read on every cold start, so
/// the smallest output wins (decoding speed barely depends on the level).
const DEFLATE_LEVEL: u8 = 10;

#[derive(Serialize, Deserialize)]
struct Meta<'a> {
    info: Info<'a>,
    mask_words: Cow<'a, [String]>,
    mask_replacement: Cow<'a, str>,
    tokenizer: TokenizerConfigV3,
    /// Entries in feature order, joined by `VOCAB_SEPARATOR`; empty for no entries.
    vocabulary: Cow<'a, str>,
    label_names: Cow<'a, [String]>,
    label_counts: Cow<'a, [u64]>,
    threshold_global: f32,
    thresholds: Cow<'a, [f32]>,
    /// Explainer background: per row its length, then its strictly increasing indices as the
    /// first index followed by the gaps to the next, all varints.
    background_lengths: Vec<u32>,
    background_gaps: Vec<u32>,
    layers: Vec<LayerHead<'a>>,
}

#[derive(Serialize, Deserialize)]
enum TokenizerConfigV3 {
    Keras {
        num_words: u64,
    },
    Words {
        min_count: u64,
        max_features: u64,
        bigrams: bool,
        /// Repeat features (`word×2` for a word seen twice in one text, see the tokenizer).
        repeats: bool,
    },
    /// Format 4 only: `Words` with sub-words of `subwords` characters.
    WordsSubwords {
        min_count: u64,
        max_features: u64,
        bigrams: bool,
        repeats: bool,
        subwords: u64,
    },
}

/// The format a tokenizer's artifact is written in: 4 with sub-words, else 3.
pub(super) fn format_for(tokenizer: &Tokenizer) -> u32 {
    if tokenizer.config().subwords() > 0 {
        super::FORMAT_VERSION
    } else {
        super::BASE_FORMAT_VERSION
    }
}

/// A dense layer but its codes: weights `(inputs, outputs)` as `bits`-wide codes (after the
/// meta block, in layer order) with one scale per input row; biases as `f32`.
#[derive(Serialize, Deserialize)]
struct LayerHead<'a> {
    inputs: u64,
    outputs: u64,
    bits: u8,
    scales: Vec<f32>,
    bias: Cow<'a, [f32]>,
}

fn slice<T: Clone>(a: &[T]) -> Cow<'_, [T]> {
    Cow::Borrowed(a)
}

/// The payload of `a` in format 3.
pub(super) fn encode(a: &Artifact) -> Result<Vec<u8>> {
    let info = &a.info;
    let vocab = a.tokenizer.vocabulary();
    if let Some(w) = vocab.iter().find(|w| w.contains(VOCAB_SEPARATOR)) {
        return Err(Error::Unencodable(format!(
            "vocabulary entry {w:?} contains a line break, which no tokenizer produces"
        )));
    }
    let mut background_lengths = Vec::with_capacity(a.background.len());
    let mut background_gaps = Vec::with_capacity(a.background.nnz());
    for row in a.background.iter() {
        background_lengths.push(row.len() as u32);
        let mut previous = 0;
        for (k, &i) in row.iter().enumerate() {
            background_gaps.push(if k == 0 { i } else { i - previous });
            previous = i;
        }
    }
    let mut codes = Vec::new();
    let model = a.model.expanded();
    let layers = model
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bits = quant::bits_for_layer(i);
            let (scales, packed) = quant::encode(&l.weights, bits);
            codes.push(packed);
            LayerHead {
                inputs: l.weights.nrows() as u64,
                outputs: l.weights.ncols() as u64,
                bits,
                scales,
                bias: match l.bias.as_slice() {
                    Some(b) => Cow::Borrowed(b),
                    None => Cow::Owned(l.bias.to_vec()),
                },
            }
        })
        .collect();
    let meta = Meta {
        info: Info::of(info),
        mask_words: slice(a.masker.words()),
        mask_replacement: Cow::Borrowed(a.masker.replacement()),
        tokenizer: match *a.tokenizer.config() {
            TokenizerConfig::Keras { num_words } => TokenizerConfigV3::Keras {
                num_words: num_words as u64,
            },
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                subwords: 0,
            } => TokenizerConfigV3::Words {
                min_count: min_count as u64,
                max_features: max_features as u64,
                bigrams,
                repeats,
            },
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                subwords,
            } => TokenizerConfigV3::WordsSubwords {
                min_count: min_count as u64,
                max_features: max_features as u64,
                bigrams,
                repeats,
                subwords: subwords as u64,
            },
        },
        vocabulary: Cow::Owned(vocab.join("\n")),
        label_names: slice(a.labels.names()),
        label_counts: slice(a.labels.counts()),
        threshold_global: a.thresholds.global,
        thresholds: slice(&a.thresholds.per_tag),
        background_lengths,
        background_gaps,
        layers,
    };
    let raw = bincode::serde::encode_to_vec(&meta, bincode_config()).map_err(Error::Encode)?;
    let packed = miniz_oxide::deflate::compress_to_vec(&raw, DEFLATE_LEVEL);
    let too_long = |what: &str, n: usize| {
        Error::Unencodable(format!(
            "{what} is {n} bytes, more than a format-3 frame holds"
        ))
    };
    let packed_len = u32::try_from(packed.len()).map_err(|_| too_long("meta", packed.len()))?;
    let raw_len = u32::try_from(raw.len()).map_err(|_| too_long("inflated meta", raw.len()))?;
    let mut out =
        Vec::with_capacity(FRAME_LEN + packed.len() + codes.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&packed_len.to_le_bytes());
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&packed);
    for c in &codes {
        out.extend_from_slice(c);
    }
    Ok(out)
}

/// Decodes a format-3 payload from the pieces it arrives in.
#[derive(Debug)]
pub(super) struct Streaming {
    /// Payload bytes the whole payload has, from the header.
    declared: u64,
    /// 3 or 4 (see the module docs).
    version: u32,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// Collecting the frame and the compressed meta block.
    Meta { buf: Vec<u8> },
    /// Unpacking layer codes; `layer` is the one bytes go to now.
    Codes {
        parts: Box<Parts>,
        unpackers: Vec<Unpacker>,
        layer: usize,
    },
}

/// Everything of the artifact but the weights.
#[derive(Debug)]
struct Parts {
    info: ModelInfo,
    masker: Masker,
    tokenizer: Tokenizer,
    labels: LabelSet,
    thresholds: Thresholds,
    background: SparseRows,
    biases: Vec<Vec<f32>>,
}

impl Streaming {
    pub(super) fn new(declared: u64, version: u32) -> Self {
        Streaming {
            declared,
            version,
            stage: Stage::Meta { buf: Vec::new() },
        }
    }

    /// Takes the next payload bytes (never more than the declared payload: the caller stops
    /// there).
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            match &mut self.stage {
                Stage::Meta { buf } => {
                    let need = meta_end(buf).unwrap_or(FRAME_LEN);
                    if need as u64 > self.declared {
                        return Err(Error::decode(format!(
                            "the meta block's {need} bytes do not fit the {}-byte payload",
                            self.declared
                        )));
                    }
                    let take = (need - buf.len()).min(bytes.len());
                    buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if meta_end(buf) == Some(buf.len()) {
                        let (parts, unpackers) = decode_meta(buf, self.declared, self.version)?;
                        self.stage = Stage::Codes {
                            parts: Box::new(parts),
                            unpackers,
                            layer: 0,
                        };
                    }
                }
                Stage::Codes {
                    unpackers, layer, ..
                } => {
                    while *layer < unpackers.len() && unpackers[*layer].remaining() == 0 {
                        *layer += 1;
                    }
                    let Some(unpacker) = unpackers.get_mut(*layer) else {
                        // The declared length was checked against the layers' sizes.
                        return Err(Error::decode("bytes after the last layer's codes"));
                    };
                    let took = unpacker.feed(bytes);
                    bytes = &bytes[took..];
                }
            }
        }
        Ok(())
    }

    /// The artifact, once the whole declared payload came in.
    pub(super) fn finish(self) -> Result<Artifact> {
        let Stage::Codes {
            parts, unpackers, ..
        } = self.stage
        else {
            return Err(Error::decode("the payload ends inside its meta block"));
        };
        let Parts {
            info,
            masker,
            tokenizer,
            labels,
            thresholds,
            background,
            biases,
        } = *parts;
        let early =
            |i: usize| Error::decode(format!("layer {i}: its codes end early or carry padding"));
        let mut layers = unpackers.into_iter().zip(biases);
        let (first, first_bias) = layers
            .next()
            .ok_or_else(|| Error::decode("the model has no layers"))?;
        let first = first.finish_coded().ok_or_else(|| early(0))?;
        let rest = layers
            .enumerate()
            .map(|(i, (u, bias))| {
                let weights = u.finish().ok_or_else(|| early(i + 1))?;
                Ok(Dense {
                    weights,
                    bias: Array1::from_vec(bias),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let model = Mlp::from_coded_first(first, Array1::from_vec(first_bias), rest)?;
        Ok(Artifact {
            info,
            masker,
            tokenizer,
            labels,
            model,
            thresholds,
            background,
        })
    }
}

/// Where the meta block ends, once the frame is in.
fn meta_end(buf: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?);
    Some(FRAME_LEN + len as usize)
}

fn decode_meta(buf: &[u8], declared: u64, version: u32) -> Result<(Parts, Vec<Unpacker>)> {
    let raw_len = u32::from_le_bytes(buf[4..8].try_into().expect("4-byte slice")) as usize;
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(&buf[FRAME_LEN..], raw_len)
        .map_err(|e| Error::decode(format!("meta block does not inflate: {e}")))?;
    if raw.len() != raw_len {
        return Err(Error::decode(format!(
            "meta block inflates to {} bytes, its frame says {raw_len}",
            raw.len()
        )));
    }
    let (meta, used): (Meta, usize) = bincode::serde::decode_from_slice(&raw, bincode_config())
        .map_err(|e| Error::Decode {
            context: "the meta block does not match format 3's schema".into(),
            source: Some(e),
        })?;
    if used != raw.len() {
        return Err(Error::decode(format!(
            "meta block has {} unread bytes",
            raw.len() - used
        )));
    }
    let mut codes_len = 0u64;
    let mut unpackers = Vec::with_capacity(meta.layers.len());
    let mut biases = Vec::with_capacity(meta.layers.len());
    for (i, l) in meta.layers.into_iter().enumerate() {
        let (rows, cols) = (
            part("layer", to_usize(l.inputs))?,
            part("layer", to_usize(l.outputs))?,
        );
        let (n_scales, bits) = (l.scales.len(), l.bits);
        let bad = || {
            Error::decode(format!(
                "layer {i}: {n_scales} scales of {bits}-bit codes do not fit {rows} x {cols} weights"
            ))
        };
        let len = quant::packed_len(rows, cols, l.bits).ok_or_else(bad)?;
        codes_len = codes_len.saturating_add(len as u64);
        // Checked before the weights are reserved: a crafted shape cannot allocate more than
        // the payload could fill.
        if buf.len() as u64 + codes_len > declared {
            return Err(Error::decode(format!(
                "layer {i}'s {len} bytes of codes do not fit the {declared}-byte payload"
            )));
        }
        // The first layer stays coded (see `Mlp`); the small deeper ones become `f32`.
        let unpacker = if i == 0 {
            Unpacker::keeping_codes(rows, cols, l.bits, l.scales)
        } else {
            Unpacker::new(rows, cols, l.bits, l.scales)
        };
        unpackers.push(unpacker.ok_or_else(bad)?);
        biases.push(l.bias.into_owned());
    }
    let total = buf.len() as u64 + codes_len;
    if total != declared {
        return Err(Error::decode(format!(
            "meta block and layer codes make {total} bytes, the header declares {declared}"
        )));
    }
    let config = match meta.tokenizer {
        TokenizerConfigV3::Keras { num_words } => TokenizerConfig::Keras {
            num_words: part("tokenizer", to_usize(num_words))?,
        },
        TokenizerConfigV3::Words {
            min_count,
            max_features,
            bigrams,
            repeats,
        } => TokenizerConfig::Words {
            min_count: part("tokenizer", to_usize(min_count))?,
            max_features: part("tokenizer", to_usize(max_features))?,
            bigrams,
            repeats,
            subwords: 0,
        },
        TokenizerConfigV3::WordsSubwords {
            min_count,
            max_features,
            bigrams,
            repeats,
            subwords,
        } => {
            if version < 4 {
                return Err(Error::decode(
                    "a format-3 payload names a sub-word tokenizer, which only format 4 holds",
                ));
            }
            TokenizerConfig::Words {
                min_count: part("tokenizer", to_usize(min_count))?,
                max_features: part("tokenizer", to_usize(max_features))?,
                bigrams,
                repeats,
                subwords: part("tokenizer", to_usize(subwords))?,
            }
        }
    };
    let vocabulary: Vec<String> = if meta.vocabulary.is_empty() {
        Vec::new()
    } else {
        meta.vocabulary
            .split(VOCAB_SEPARATOR)
            .map(str::to_owned)
            .collect()
    };
    let info = meta.info;
    let parts = Parts {
        info: info.into_model_info(),
        masker: Masker::new(meta.mask_words.iter(), &meta.mask_replacement),
        tokenizer: part("tokenizer", Tokenizer::from_parts(config, vocabulary))?,
        labels: part(
            "labels",
            LabelSet::from_parts(
                meta.label_names.into_owned(),
                meta.label_counts.into_owned(),
            ),
        )?,
        thresholds: Thresholds {
            global: meta.threshold_global,
            per_tag: meta.thresholds.into_owned(),
        },
        background: part(
            "background",
            background(&meta.background_lengths, &meta.background_gaps),
        )?,
        biases,
    };
    Ok((parts, unpackers))
}

/// Sparse rows from their lengths and gap-coded indices.
fn background(lengths: &[u32], gaps: &[u32]) -> std::result::Result<SparseRows, String> {
    let mut offsets = Vec::with_capacity(lengths.len() + 1);
    offsets.push(0usize);
    let mut indices = Vec::with_capacity(gaps.len());
    let mut gaps = gaps.iter();
    for (r, &len) in lengths.iter().enumerate() {
        let mut previous = 0u32;
        for k in 0..len {
            let gap = *gaps
                .next()
                .ok_or_else(|| format!("row {r} is longer than the indices stored"))?;
            let index = if k == 0 {
                gap
            } else {
                previous
                    .checked_add(gap)
                    .ok_or_else(|| format!("row {r}: an index overflows"))?
            };
            indices.push(index);
            previous = index;
        }
        offsets.push(indices.len());
    }
    if gaps.next().is_some() {
        return Err("more indices than the rows hold".into());
    }
    SparseRows::from_parts(offsets, indices)
}

fn to_usize(v: u64) -> std::result::Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{v} does not fit this machine's usize"))
}
