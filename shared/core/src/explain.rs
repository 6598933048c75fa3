//! DeepSHAP word attributions for the tag model: which words pushed a tag's probability up or down.
//!
//! This is the algorithm of shap's `DeepExplainer` for a dense ReLU network ending in a sigmoid,
//! explaining the sigmoid probability (Lundberg & Lee 2017, DeepLIFT's rescale rule of Shrikumar
//! et al. 2017). For every background row `r`, the question `x` and `r` are run forward; the
//! multiplier of each output is back-propagated through the transposed weights, and every
//! nonlinearity `f` (ReLU, final sigmoid) scales it by `(f(z_x) - f(z_r)) / (z_x - z_r)`, or by the
//! derivative `f'(z_x)` when `|z_x - z_r| < 1e-6` (shap's threshold). Feature `i` then gets
//! `multiplier_i * (x_i - r_i)`, averaged over the background rows. Because the rescale rule sums
//! to the difference, the attributions of one output add up to `probability - expected_value`,
//! where the expected value is the mean background probability.
//!
//! Inputs are binary bags of words given by the indices of their ones, so only the features where
//! `x` and `r` differ contribute, and the first-layer multiplier is computed for those alone.
//! Every requested output is back-propagated at once (a `hidden x outputs` multiplier matrix per
//! background row), so explaining all predicted tags costs little more than explaining one.
//! Weights are `f32`; the arithmetic here is `f64`, which keeps additivity at rounding level.
//!
//! ```
//! use ndarray::{array, Array1};
//! use tagger_core::explain::shap_values;
//! use tagger_core::model::{Dense, Mlp};
//! use tagger_core::sparse::SparseRows;
//!
//! let model = Mlp::from_layers(vec![
//!     Dense { weights: array![[0.5f32], [1.0], [-2.0]], bias: Array1::zeros(1) },
//!     Dense { weights: array![[1.5f32]], bias: array![-0.5] },
//! ])?;
//! let background: SparseRows = [&[0u32][..], &[2]].into_iter().collect();
//! let attr = &shap_values(&model, &background, &[1], &[0])?[0];
//! let total: f64 = attr.features.iter().map(|&(_, v)| v).sum();
//! assert!((total - (attr.probability - attr.expected_value)).abs() < 1e-12);
//! # Ok::<(), tagger_core::Error>(())
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::sparse::SparseRows;

/// Below this input difference a nonlinearity's rescale ratio is replaced by its derivative
/// (shap's `nonlinearity_1d` handler uses the same threshold).
const RESCALE_EPS: f64 = 1e-6;

/// The attributions of one model output for one question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Index of the explained output (tag).
    pub output: usize,
    /// The model's probability for this output on the question.
    pub probability: f64,
    /// Mean probability over the background rows: the baseline the attributions start from.
    pub expected_value: f64,
    /// `(feature, attribution)` for every feature with a nonzero attribution, by feature index.
    /// The values add up to `probability - expected_value`.
    pub features: Vec<(u32, f64)>,
}

impl Attribution {
    /// The attribution of `feature` (0 when it has none).
    pub fn value(&self, feature: u32) -> f64 {
        self.features
            .binary_search_by_key(&feature, |&(f, _)| f)
            .map_or(0.0, |i| self.features[i].1)
    }
}

/// Explains one question against a background; see [`Explainer`] to explain many questions.
///
/// Errors: [`Error::NoBackground`] when `background` has no rows, [`Error::OutputOutOfRange`]
/// when an output index is not one of the model's outputs.
pub fn shap_values(
    model: &Mlp,
    background: &SparseRows,
    x: &[u32],
    outputs: &[usize],
) -> Result<Vec<Attribution>> {
    Explainer::new(Arc::new(model.clone()), background)?.shap_values(x, outputs)
}

/// A dense layer converted to `f64`: weights row-major `(inputs, outputs)` like Keras's kernel
/// for the forward pass, and transposed `(outputs, inputs)` for back-propagation.
#[derive(Clone, Debug)]
struct Layer64 {
    weights: Vec<f64>,
    weights_t: Vec<f64>,
    bias: Vec<f64>,
    n_in: usize,
    n_out: usize,
}

/// The background's forward pass, done once, for explaining any number of questions.
///
/// Shares the model (an `Arc`, so a served model owns its prepared explainer): only the first
/// layer's rows of differing features are read from it, so a large vocabulary is never copied;
/// the small deeper layers are held in `f64`.
#[derive(Clone, Debug)]
pub struct Explainer {
    model: Arc<Mlp>,
    first_bias: Vec<f64>,
    /// Layers 1.. of the model.
    deep: Vec<Layer64>,
    /// Background rows restricted to the model's input range (other indices carry no weight).
    background: SparseRows,
    /// Sorted union of all background features.
    background_features: Vec<u32>,
    /// Per layer, the background's pre-activations, row-major `(rows, width)`.
    background_pre: Vec<Vec<f64>>,
    expected: Vec<f64>,
}

impl Explainer {
    /// Runs the background forward. [`Error::NoBackground`] when it has no rows.
    pub fn new(model: Arc<Mlp>, background: &SparseRows) -> Result<Self> {
        if background.is_empty() {
            return Err(Error::NoBackground);
        }
        let first = &model.layers()[0];
        if first.weights.as_slice().is_none() {
            return Err(Error::Shape {
                what: "explainer first layer",
                expected: "a contiguous row-major kernel".into(),
                found: "a strided array".into(),
            });
        }
        let first_bias = first.bias.iter().map(|&b| f64::from(b)).collect();
        let deep = model.layers()[1..]
            .iter()
            .map(|layer| Layer64 {
                weights: layer.weights.iter().map(|&w| f64::from(w)).collect(),
                weights_t: layer.weights.t().iter().map(|&w| f64::from(w)).collect(),
                bias: layer.bias.iter().map(|&b| f64::from(b)).collect(),
                n_in: layer.weights.nrows(),
                n_out: layer.weights.ncols(),
            })
            .collect();
        let n_in = model.n_inputs();
        let mut rows = SparseRows::with_capacity(background.len(), background.nnz());
        let mut row = Vec::new();
        for r in background.iter() {
            row.clear();
            row.extend(r.iter().copied().filter(|&i| (i as usize) < n_in));
            rows.push_row(&row);
        }
        let mut features: Vec<u32> = rows.iter().flatten().copied().collect();
        features.sort_unstable();
        features.dedup();

        let n_layers = model.layers().len();
        let n_out = model.n_outputs();
        let mut explainer = Explainer {
            model,
            first_bias,
            deep,
            background: SparseRows::new(),
            background_features: features,
            background_pre: Vec::new(),
            expected: Vec::new(),
        };
        // The whole background at once: a sparse gather for the first layer, then matrix
        // products (gemm) for the deeper ones.
        let n0 = explainer.first_bias.len();
        let mut z = Array2::<f64>::zeros((rows.len(), n0));
        for (mut zr, r) in z.rows_mut().into_iter().zip(rows.iter()) {
            zr.iter_mut()
                .zip(&explainer.first_bias)
                .for_each(|(v, &b)| *v = b);
            for &i in r {
                let w = &explainer.first()[i as usize * n0..(i as usize + 1) * n0];
                zr.iter_mut().zip(w).for_each(|(v, &w)| *v += f64::from(w));
            }
        }
        let mut pre: Vec<Vec<f64>> = Vec::with_capacity(n_layers);
        for layer in &explainer.deep {
            let w =
                ArrayView2::from_shape((layer.n_in, layer.n_out), &layer.weights).map_err(|e| {
                    Error::Shape {
                        what: "explainer layer",
                        expected: format!("{} x {}", layer.n_in, layer.n_out),
                        found: e.to_string(),
                    }
                })?;
            let mut next = z.mapv(relu).dot(&w);
            next.rows_mut()
                .into_iter()
                .for_each(|mut row| row += &ArrayView1::from(&layer.bias));
            pre.push(std::mem::replace(&mut z, next).iter().copied().collect());
        }
        pre.push(z.iter().copied().collect());
        let mut expected = vec![0.0; n_out];
        for z in pre[n_layers - 1].chunks_exact(n_out) {
            for (e, &v) in expected.iter_mut().zip(z) {
                *e += sigmoid64(v);
            }
        }
        let n_bg = rows.len() as f64;
        expected.iter_mut().for_each(|e| *e /= n_bg);
        explainer.background = rows;
        explainer.background_pre = pre;
        explainer.expected = expected;
        Ok(explainer)
    }

    /// First-layer kernel, row-major `(inputs, hidden)` (contiguous: checked in `new`).
    fn first(&self) -> &[f32] {
        self.model.layers()[0]
            .weights
            .as_slice()
            .expect("checked contiguous in Explainer::new")
    }

    pub fn model(&self) -> &Mlp {
        &self.model
    }

    /// Mean background probability per output: shap's `expected_value`.
    pub fn expected_values(&self) -> &[f64] {
        &self.expected
    }

    pub fn background_len(&self) -> usize {
        self.background.len()
    }

    /// The model's probability for each output, in `f64`.
    pub fn probabilities(&self, x: &[u32]) -> Vec<f64> {
        let x = self.clean_input(x);
        let pre = self.forward(&x);
        pre[pre.len() - 1].iter().map(|&z| sigmoid64(z)).collect()
    }

    /// Attributions of `outputs` (in that order) for the question with features `x`.
    /// Feature indices outside the model's input range are ignored, as the model ignores them.
    pub fn shap_values(&self, x: &[u32], outputs: &[usize]) -> Result<Vec<Attribution>> {
        let n_out = self.model.n_outputs();
        if let Some(&output) = outputs.iter().find(|&&o| o >= n_out) {
            return Err(Error::OutputOutOfRange {
                output,
                n_outputs: n_out,
            });
        }
        let m = outputs.len();
        let x = self.clean_input(x);
        let zx = self.forward(&x);
        let last = zx.len() - 1;
        let union = sorted_union(&x, &self.background_features);
        let mut acc = vec![0.0f64; union.len() * m];

        let max_width = self
            .model
            .layers()
            .iter()
            .map(|l| l.bias.len())
            .max()
            .unwrap_or(0);
        // Scratch reused across background rows. Multipliers are output-major, `(m, width)`, so
        // every inner loop runs over a contiguous hidden-unit row and vectorises.
        let mut cur = vec![0.0f64; m * max_width];
        let mut next = vec![0.0f64; m * max_width];
        let mut scale = vec![0.0f64; max_width];
        let mut active: Vec<usize> = Vec::with_capacity(max_width);
        let mut out_mult = vec![0.0f64; m];
        let mut diff: Vec<(u32, f64)> = Vec::new();
        let n0 = self.first_bias.len();

        for (r, row) in self.background.iter().enumerate() {
            differing(&x, row, &mut diff);
            if diff.is_empty() {
                continue; // x == r: every (x_i - r_i) is zero
            }
            let zr_last = self.pre(last, r);
            for (k, &j) in outputs.iter().enumerate() {
                out_mult[k] = rescale(zx[last][j], zr_last[j], sigmoid64, sigmoid_derivative);
            }
            let mut width = if last == 0 {
                // Logistic regression: the multiplier w.r.t. the logit is the output's own.
                cur[..m * n0].fill(0.0);
                for (k, &j) in outputs.iter().enumerate() {
                    cur[k * n0 + j] = out_mult[k];
                }
                n0
            } else {
                // W.r.t. the last hidden activation: column j of the last kernel, scaled.
                let top = &self.deep[last - 1];
                for (k, &j) in outputs.iter().enumerate() {
                    let col = &top.weights_t[j * top.n_in..(j + 1) * top.n_in];
                    for (c, &w) in cur[k * top.n_in..(k + 1) * top.n_in].iter_mut().zip(col) {
                        *c = w * out_mult[k];
                    }
                }
                top.n_in
            };
            for l in (0..last).rev() {
                // ReLU rescale at layer l; inactive units get exactly zero.
                let zr = self.pre(l, r);
                active.clear();
                for (h, ((s, &a), &b)) in scale.iter_mut().zip(&zx[l]).zip(zr).enumerate() {
                    *s = rescale(a, b, relu, relu_derivative);
                    if *s != 0.0 {
                        active.push(h);
                    }
                }
                for k in 0..m {
                    let row = &mut cur[k * width..(k + 1) * width];
                    row.iter_mut()
                        .zip(&scale[..width])
                        .for_each(|(c, &s)| *c *= s);
                }
                if l == 0 {
                    break;
                }
                // Through layer l's kernel, transposed: next[k] = sum over active h of cur[k][h] * W[:, h].
                let layer = &self.deep[l - 1];
                let n_in = layer.n_in;
                next[..m * n_in].fill(0.0);
                for k in 0..m {
                    let out = &mut next[k * n_in..(k + 1) * n_in];
                    for &h in &active {
                        let c = cur[k * width + h];
                        let col = &layer.weights_t[h * n_in..(h + 1) * n_in];
                        out.iter_mut().zip(col).for_each(|(o, &w)| *o += c * w);
                    }
                }
                std::mem::swap(&mut cur, &mut next);
                width = n_in;
            }
            // First layer: only the weight rows of features where x and r differ are read.
            for &(i, sign) in &diff {
                let w = &self.first()[i as usize * n0..(i as usize + 1) * n0];
                let slot = slot_of(&union, i);
                for k in 0..m {
                    acc[slot * m + k] += sign * dot(w, &cur[k * n0..(k + 1) * n0]);
                }
            }
        }

        let n_bg = self.background.len() as f64;
        Ok(outputs
            .iter()
            .enumerate()
            .map(|(k, &j)| Attribution {
                output: j,
                probability: sigmoid64(zx[last][j]),
                expected_value: self.expected[j],
                features: union
                    .iter()
                    .enumerate()
                    .map(|(s, &f)| (f, acc[s * m + k] / n_bg))
                    .filter(|&(_, v)| v != 0.0)
                    .collect(),
            })
            .collect())
    }

    /// Background pre-activations of layer `l`, row `r`.
    fn pre(&self, l: usize, r: usize) -> &[f64] {
        let width = self.model.layers()[l].bias.len();
        &self.background_pre[l][r * width..(r + 1) * width]
    }

    /// Sorted, de-duplicated, in-range copy of a question's features.
    fn clean_input(&self, x: &[u32]) -> Vec<u32> {
        let n_in = self.model.n_inputs();
        let mut out: Vec<u32> = x.iter().copied().filter(|&i| (i as usize) < n_in).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Pre-activations of every layer, in f64, for in-range sorted features.
    fn forward(&self, x: &[u32]) -> Vec<Vec<f64>> {
        let n0 = self.first_bias.len();
        let mut z = self.first_bias.clone();
        for &i in x {
            for (zh, &w) in z
                .iter_mut()
                .zip(&self.first()[i as usize * n0..(i as usize + 1) * n0])
            {
                *zh += f64::from(w);
            }
        }
        let mut all = Vec::with_capacity(self.deep.len() + 1);
        for layer in &self.deep {
            let mut next = layer.bias.clone();
            for (g, &v) in z.iter().enumerate() {
                let a = relu(v);
                if a != 0.0 {
                    let w = &layer.weights[g * layer.n_out..(g + 1) * layer.n_out];
                    next.iter_mut().zip(w).for_each(|(n, &w)| *n += a * w);
                }
            }
            all.push(std::mem::replace(&mut z, next));
        }
        all.push(z);
        all
    }
}

/// DeepLIFT's rescale multiplier of a 1-D nonlinearity, with shap's derivative fallback.
#[inline]
fn rescale(zx: f64, zr: f64, f: fn(f64) -> f64, df: fn(f64) -> f64) -> f64 {
    let dz = zx - zr;
    if dz.abs() < RESCALE_EPS {
        df(zx)
    } else {
        (f(zx) - f(zr)) / dz
    }
}

#[inline]
fn relu(z: f64) -> f64 {
    z.max(0.0)
}

/// TensorFlow's ReLU gradient: 0 at and below zero.
#[inline]
fn relu_derivative(z: f64) -> f64 {
    if z > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Logistic function that never overflows (`exp` only sees a non-positive argument).
#[inline]
fn sigmoid64(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn sigmoid_derivative(z: f64) -> f64 {
    let s = sigmoid64(z);
    s * (1.0 - s)
}

/// `a . b` with four independent accumulators, so the reduction vectorises (a single running sum
/// would pin the additions to one order).
#[inline]
fn dot(a: &[f32], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f64::from(x) * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            lanes[l] += f64::from(x[l]) * y[l];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Features where two sorted binary rows differ, with `x_i - r_i` (+1 only in x, -1 only in r).
fn differing(x: &[u32], r: &[u32], out: &mut Vec<(u32, f64)>) {
    out.clear();
    let (mut a, mut b) = (0, 0);
    while a < x.len() && b < r.len() {
        match x[a].cmp(&r[b]) {
            Ordering::Less => {
                out.push((x[a], 1.0));
                a += 1;
            }
            Ordering::Greater => {
                out.push((r[b], -1.0));
                b += 1;
            }
            Ordering::Equal => {
                a += 1;
                b += 1;
            }
        }
    }
    out.extend(x[a..].iter().map(|&i| (i, 1.0)));
    out.extend(r[b..].iter().map(|&i| (i, -1.0)));
}

fn sorted_union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out.dedup();
    out
}

/// Position of a feature known to be in `union` (every differing feature is in x or a background row).
#[inline]
fn slot_of(union: &[u32], feature: u32) -> usize {
    union
        .binary_search(&feature)
        .unwrap_or_else(|insert| insert)
}

// ---------------------------------------------------------------------------------------------
// Word level

/// One word and its attribution (or, in a [`Summary`], its mean absolute attribution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordAttribution {
    pub word: String,
    pub value: f64,
}

/// The words that pushed one tag's probability up (`positive`, strongest first) and down
/// (`negative`, most negative first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagExplanation {
    pub tag: String,
    pub probability: f64,
    pub expected_value: f64,
    pub positive: Vec<WordAttribution>,
    pub negative: Vec<WordAttribution>,
}

/// How many words to name per direction, and whether to name only words in the question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordOptions {
    /// Words per direction (default 5).
    pub k: usize,
    /// Only words present in the question (default). The origin ranked all features, so an
    /// absent word whose absence mattered could be named; `false` keeps that behaviour.
    pub present_only: bool,
}

impl Default for WordOptions {
    fn default() -> Self {
        WordOptions {
            k: 5,
            present_only: true,
        }
    }
}

/// Top-k positive and negative words of one attribution. `present` holds the question's features
/// (any order); features `feature_name` cannot name are left out. Ties go to the lower feature index.
pub fn explain_words(
    attribution: &Attribution,
    tag: impl Into<String>,
    feature_name: impl Fn(u32) -> Option<String>,
    present: &[u32],
    opts: &WordOptions,
) -> TagExplanation {
    let mut present: Cow<'_, [u32]> = Cow::Borrowed(present);
    if !present.is_sorted() {
        present.to_mut().sort_unstable();
    }
    let candidates = attribution
        .features
        .iter()
        .filter(|&&(f, _)| !opts.present_only || present.binary_search(&f).is_ok());
    let mut pos: Vec<(u32, f64)> = candidates
        .clone()
        .filter(|&&(_, v)| v > 0.0)
        .copied()
        .collect();
    let mut neg: Vec<(u32, f64)> = candidates.filter(|&&(_, v)| v < 0.0).copied().collect();
    pos.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    neg.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let name = |list: Vec<(u32, f64)>| -> Vec<WordAttribution> {
        list.into_iter()
            .filter_map(|(f, value)| feature_name(f).map(|word| WordAttribution { word, value }))
            .take(opts.k)
            .collect()
    };
    TagExplanation {
        tag: tag.into(),
        probability: attribution.probability,
        expected_value: attribution.expected_value,
        positive: name(pos),
        negative: name(neg),
    }
}

/// The one JSON schema of explanations, for the API and the CLI alike:
/// `{"tag": {"positive": [["word", 0.12], ...], "negative": [["word", -0.03], ...],
/// "expected_value": 0.02, "probability": 0.91}}` (words strongest first).
pub fn explanations_json(tags: &[TagExplanation]) -> serde_json::Value {
    let pairs = |words: &[WordAttribution]| -> Vec<serde_json::Value> {
        words
            .iter()
            .map(|w| serde_json::json!([w.word, w.value]))
            .collect()
    };
    serde_json::Value::Object(
        tags.iter()
            .map(|t| {
                (
                    t.tag.clone(),
                    serde_json::json!({
                        "positive": pairs(&t.positive),
                        "negative": pairs(&t.negative),
                        "expected_value": t.expected_value,
                        "probability": t.probability,
                    }),
                )
            })
            .collect(),
    )
}

/// [`explain_words`] for each attribution, naming tags with `tag_name(output)`.
pub fn explain_tags(
    attributions: &[Attribution],
    tag_name: impl Fn(usize) -> String,
    feature_name: impl Fn(u32) -> Option<String>,
    present: &[u32],
    opts: &WordOptions,
) -> Vec<TagExplanation> {
    attributions
        .iter()
        .map(|a| explain_words(a, tag_name(a.output), &feature_name, present, opts))
        .collect()
}

/// Each token of a question with its feature's attribution (0 for tokens that are no feature),
/// for drawing a question coloured by attribution (the CLI's HTML and terminal views).
/// `feature_of` maps a token to its feature index (the tokenizer's vocabulary lookup).
pub fn token_values<S: AsRef<str>>(
    tokens: &[S],
    attribution: &Attribution,
    feature_of: impl Fn(&str) -> Option<u32>,
) -> Vec<(String, f64)> {
    tokens
        .iter()
        .map(|t| {
            let t = t.as_ref();
            (
                t.to_string(),
                feature_of(t).map_or(0.0, |f| attribution.value(f)),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Global summary

/// Mean absolute attribution of the most important words over a sample of questions, like the
/// data behind shap's summary bar plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of questions averaged over.
    pub questions: usize,
    /// Tag names, one per summarised output.
    pub tags: Vec<String>,
    /// The most important words over all tags (by the sum of their per-tag means), strongest first.
    pub features: Vec<FeatureImportance>,
    /// Per tag, its most important words, strongest first.
    pub per_tag: Vec<TagImportance>,
}

/// One word's mean absolute attribution to each summarised tag (aligned with [`Summary::tags`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: u32,
    pub word: String,
    pub mean_abs: Vec<f64>,
}

impl FeatureImportance {
    pub fn total(&self) -> f64 {
        self.mean_abs.iter().sum()
    }
}

/// A tag's most important words; `value` is the mean absolute attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagImportance {
    pub tag: String,
    pub words: Vec<WordAttribution>,
}

/// Mean |attribution| per word and tag over the questions in `rows`, keeping the `top_n` words
/// overall and per tag. Words `feature_name` cannot name are left out; ties go to the lower index.
pub fn summary(
    explainer: &Explainer,
    rows: &SparseRows,
    outputs: &[usize],
    tag_name: impl Fn(usize) -> String,
    feature_name: impl Fn(u32) -> Option<String>,
    top_n: usize,
) -> Result<Summary> {
    let m = outputs.len();
    // BTreeMap: deterministic order, and only features that ever contribute are held.
    let mut totals: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for x in rows.iter() {
        for (k, attr) in explainer.shap_values(x, outputs)?.iter().enumerate() {
            for &(f, v) in &attr.features {
                totals.entry(f).or_insert_with(|| vec![0.0; m])[k] += v.abs();
            }
        }
    }
    let n = rows.len().max(1) as f64;
    let named: Vec<FeatureImportance> = totals
        .into_iter()
        .filter_map(|(feature, sums)| {
            feature_name(feature).map(|word| FeatureImportance {
                feature,
                word,
                mean_abs: sums.into_iter().map(|s| s / n).collect(),
            })
        })
        .collect();

    let mut overall: Vec<&FeatureImportance> = named.iter().collect();
    overall.sort_by(|a, b| {
        b.total()
            .total_cmp(&a.total())
            .then(a.feature.cmp(&b.feature))
    });
    let features = overall.into_iter().take(top_n).cloned().collect();

    let tags: Vec<String> = outputs.iter().map(|&o| tag_name(o)).collect();
    let per_tag = tags
        .iter()
        .enumerate()
        .map(|(k, tag)| {
            let mut ranked: Vec<&FeatureImportance> =
                named.iter().filter(|f| f.mean_abs[k] > 0.0).collect();
            ranked.sort_by(|a, b| {
                b.mean_abs[k]
                    .total_cmp(&a.mean_abs[k])
                    .then(a.feature.cmp(&b.feature))
            });
            TagImportance {
                tag: tag.clone(),
                words: ranked
                    .into_iter()
                    .take(top_n)
                    .map(|f| WordAttribution {
                        word: f.word.clone(),
                        value: f.mean_abs[k],
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Summary {
        questions: rows.len(),
        tags,
        features,
        per_tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{sigmoid, Dense};
    use ndarray::{array, Array1, Array2};
    use proptest::prelude::*;

    fn rows(list: &[&[u32]]) -> SparseRows {
        list.iter().copied().collect()
    }

    /// 3 inputs -> 1 ReLU unit -> 1 sigmoid output (the module example).
    fn tiny() -> Mlp {
        Mlp::from_layers(vec![
            Dense {
                weights: array![[0.5f32], [1.0], [-2.0]],
                bias: Array1::zeros(1),
            },
            Dense {
                weights: array![[1.5f32]],
                bias: array![-0.5],
            },
        ])
        .unwrap()
    }

    fn s(z: f64) -> f64 {
        1.0 / (1.0 + (-z).exp())
    }

    fn total(a: &Attribution) -> f64 {
        a.features.iter().map(|&(_, v)| v).sum()
    }

    fn assert_additive(a: &Attribution, tol: f64) {
        let gap = total(a) - (a.probability - a.expected_value);
        assert!(
            gap.abs() <= tol,
            "output {}: sum {} vs delta {}",
            a.output,
            total(a),
            a.probability - a.expected_value
        );
    }

    /// Straightforward dense DeepLIFT-rescale, one output and one background row at a time:
    /// the reference the sparse, batched implementation must agree with.
    fn reference(model: &Mlp, background: &SparseRows, x: &[u32], j: usize) -> Vec<f64> {
        let n_in = model.n_inputs();
        let dense = |r: &[u32]| {
            let mut v = vec![0.0f64; n_in];
            r.iter()
                .filter(|&&i| (i as usize) < n_in)
                .for_each(|&i| v[i as usize] = 1.0);
            v
        };
        let forward = |v: &[f64]| {
            let mut zs = Vec::new();
            let mut a = v.to_vec();
            for (l, layer) in model.layers().iter().enumerate() {
                let z: Vec<f64> = (0..layer.weights.ncols())
                    .map(|o| {
                        f64::from(layer.bias[o])
                            + (0..a.len())
                                .map(|i| a[i] * f64::from(layer.weights[[i, o]]))
                                .sum::<f64>()
                    })
                    .collect();
                a = if l + 1 < model.layers().len() {
                    z.iter().map(|&v| v.max(0.0)).collect()
                } else {
                    z.clone()
                };
                zs.push(z);
            }
            zs
        };
        let xv = dense(x);
        let zx = forward(&xv);
        let mut phi = vec![0.0; n_in];
        for r in background.iter() {
            let rv = dense(r);
            let zr = forward(&rv);
            let last = model.layers().len() - 1;
            // multiplier w.r.t. the last pre-activation
            let mut m: Vec<f64> = (0..model.n_outputs())
                .map(|o| if o == j { 1.0 } else { 0.0 })
                .collect();
            for l in (0..=last).rev() {
                for (h, mh) in m.iter_mut().enumerate() {
                    let (a, b) = (zx[l][h], zr[l][h]);
                    *mh *= match (l == last, (a - b).abs() < 1e-6) {
                        (true, false) => (s(a) - s(b)) / (a - b),
                        (true, true) => s(a) * (1.0 - s(a)),
                        (false, false) => (a.max(0.0) - b.max(0.0)) / (a - b),
                        (false, true) => f64::from(u8::from(a > 0.0)),
                    };
                }
                let w = &model.layers()[l].weights;
                m = (0..w.nrows())
                    .map(|i| (0..w.ncols()).map(|o| f64::from(w[[i, o]]) * m[o]).sum())
                    .collect();
            }
            for i in 0..n_in {
                phi[i] += m[i] * (xv[i] - rv[i]);
            }
        }
        phi.iter().map(|p| p / background.len() as f64).collect()
    }

    #[test]
    fn matches_hand_derived_rescale_values() {
        let model = tiny();
        let attr = &shap_values(&model, &rows(&[&[0], &[2]]), &[1], &[0]).unwrap()[0];
        // r = {0}: hidden z 1.0 vs 0.5 (ReLU ratio 1); output z 1.0 vs 0.25.
        let s1 = (s(1.0) - s(0.25)) / 0.75;
        // r = {2}: hidden z 1.0 vs -2.0 (ReLU ratio 1/3); output z 1.0 vs -0.5.
        let s2 = (s(1.0) - s(-0.5)) / 1.5;
        let expected = [
            (0u32, -0.75 * s1 / 2.0),
            (1, (1.5 * s1 + 0.5 * s2) / 2.0),
            (2, s2 / 2.0),
        ];
        assert_eq!(attr.features.len(), 3);
        for ((f, v), (ef, ev)) in attr.features.iter().zip(expected) {
            assert_eq!(*f, ef);
            assert!((v - ev).abs() < 1e-12, "feature {f}: {v} vs {ev}");
        }
        assert!((attr.probability - s(1.0)).abs() < 1e-12);
        assert!((attr.expected_value - (s(0.25) + s(-0.5)) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn empty_question_is_still_additive() {
        let model = tiny();
        let attr = &shap_values(&model, &rows(&[&[0], &[2], &[0, 1]]), &[], &[0]).unwrap()[0];
        assert!(!attr.features.is_empty());
        assert_additive(attr, 1e-12);
        assert!((attr.probability - f64::from(sigmoid(model.logits(&[])[0]))).abs() < 1e-6);
    }

    #[test]
    fn rejects_empty_background() {
        let err = shap_values(&tiny(), &SparseRows::new(), &[1], &[0]).unwrap_err();
        assert!(matches!(err, Error::NoBackground), "{err}");
    }

    #[test]
    fn rejects_output_out_of_range() {
        let err = shap_values(&tiny(), &rows(&[&[0]]), &[1], &[0, 1]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutputOutOfRange {
                    output: 1,
                    n_outputs: 1
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("output 1"));
    }

    #[test]
    fn question_equal_to_every_background_row_gets_no_attribution() {
        let attr = &shap_values(&tiny(), &rows(&[&[0, 2], &[0, 2]]), &[2, 0], &[0]).unwrap()[0];
        assert!(attr.features.is_empty());
        assert!((attr.probability - attr.expected_value).abs() < 1e-15);
    }

    #[test]
    fn zero_weight_feature_uses_derivative_fallback_without_nan() {
        // Feature 1 has zero weights: x and r differ only there, so every z_x == z_r.
        let model = Mlp::from_layers(vec![
            Dense {
                weights: array![[0.7f32, -0.3], [0.0, 0.0]],
                bias: array![0.1, 0.2],
            },
            Dense {
                weights: array![[1.0f32], [2.0]],
                bias: array![0.0],
            },
        ])
        .unwrap();
        let attr = &shap_values(&model, &rows(&[&[0]]), &[0, 1], &[0]).unwrap()[0];
        assert!(attr.features.iter().all(|&(_, v)| v.is_finite()));
        assert_eq!(attr.value(1), 0.0);
        assert_additive(attr, 1e-12);
    }

    #[test]
    fn ignores_out_of_range_unsorted_and_duplicate_features() {
        let model = tiny();
        let bg = rows(&[&[0], &[2, 99]]);
        let clean = shap_values(&model, &bg, &[1, 2], &[0]).unwrap();
        let messy = shap_values(&model, &bg, &[2, 1, 1, 1000], &[0]).unwrap();
        assert_eq!(clean, messy);
        assert!(clean[0].features.iter().all(|&(f, _)| f < 3));
    }

    #[test]
    fn batched_outputs_equal_one_at_a_time() {
        let model = Mlp::from_layers(vec![
            Dense {
                weights: Array2::from_shape_fn((6, 4), |(i, j)| {
                    ((i * 7 + j * 3) % 5) as f32 * 0.4 - 0.8
                }),
                bias: Array1::from_elem(4, 0.1),
            },
            Dense {
                weights: Array2::from_shape_fn((4, 3), |(i, j)| {
                    ((i + 2 * j) % 3) as f32 * 0.7 - 0.6
                }),
                bias: array![0.2, -0.1, 0.0],
            },
        ])
        .unwrap();
        let bg = rows(&[&[0, 1], &[2], &[3, 4, 5], &[]]);
        let x = [1u32, 4];
        let all = shap_values(&model, &bg, &x, &[2, 0, 1, 0]).unwrap();
        for a in &all {
            let single = &shap_values(&model, &bg, &x, &[a.output]).unwrap()[0];
            assert_eq!(single.features.len(), a.features.len());
            for (p, q) in a.features.iter().zip(&single.features) {
                assert_eq!(p.0, q.0);
                assert!((p.1 - q.1).abs() < 1e-14);
            }
        }
        assert_eq!(
            all.iter().map(|a| a.output).collect::<Vec<_>>(),
            vec![2, 0, 1, 0]
        );
    }

    fn arb_case() -> impl Strategy<Value = (Mlp, SparseRows, Vec<u32>)> {
        (
            1usize..12,
            prop::collection::vec(1usize..7, 0..4),
            1usize..5,
        )
            .prop_flat_map(|(n_in, hidden, n_out)| {
                let mut sizes = vec![n_in];
                sizes.extend(hidden);
                sizes.push(n_out);
                let layers: Vec<_> = sizes
                    .windows(2)
                    .map(|w| {
                        (
                            Just((w[0], w[1])),
                            prop::collection::vec(-2.0f32..2.0, w[0] * w[1]),
                            prop::collection::vec(-1.0f32..1.0, w[1]),
                        )
                    })
                    .collect();
                // Indices up to n_in + 2: out-of-range ones must be ignored.
                let index = 0..(n_in as u32 + 2);
                (
                    layers,
                    prop::collection::vec(prop::collection::vec(index.clone(), 0..8), 1..6),
                    prop::collection::vec(index, 0..8),
                )
                    .prop_map(|(layers, bg, x)| {
                        let layers = layers
                            .into_iter()
                            .map(|((i, o), w, b)| Dense {
                                weights: Array2::from_shape_vec((i, o), w).unwrap(),
                                bias: Array1::from(b),
                            })
                            .collect();
                        let bg: SparseRows = bg.iter().map(|r| r.as_slice()).collect();
                        (Mlp::from_layers(layers).unwrap(), bg, x)
                    })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn attributions_sum_to_probability_minus_expected_value((model, bg, x) in arb_case()) {
            let outputs: Vec<usize> = (0..model.n_outputs()).collect();
            let attrs = shap_values(&model, &bg, &x, &outputs).unwrap();
            prop_assert_eq!(attrs.len(), outputs.len());
            // `Mlp::logits` expects de-duplicated indices (it would count a repeat twice).
            let mut x = x;
            x.sort_unstable();
            x.dedup();
            for a in &attrs {
                let gap = total(a) - (a.probability - a.expected_value);
                prop_assert!(gap.abs() <= 1e-6, "output {} gap {}", a.output, gap);
                prop_assert!((a.probability - f64::from(model.predict_proba(&x)[a.output])).abs() < 1e-5);
            }
        }

        #[test]
        fn agrees_with_dense_reference((model, bg, x) in arb_case()) {
            for j in 0..model.n_outputs() {
                let ours = &shap_values(&model, &bg, &x, &[j]).unwrap()[0];
                for (i, want) in reference(&model, &bg, &x, j).into_iter().enumerate() {
                    prop_assert!((ours.value(i as u32) - want).abs() < 1e-9, "output {} feature {}: {} vs {}", j, i, ours.value(i as u32), want);
                }
            }
        }
    }

    fn attribution(features: Vec<(u32, f64)>) -> Attribution {
        Attribution {
            output: 0,
            probability: 0.9,
            expected_value: 0.1,
            features,
        }
    }

    fn name(f: u32) -> Option<String> {
        (f < 100).then(|| format!("w{f}"))
    }

    fn words(list: &[WordAttribution]) -> Vec<&str> {
        list.iter().map(|w| w.word.as_str()).collect()
    }

    #[test]
    fn top_words_rank_present_words_with_ties_by_index() {
        let attr = attribution(vec![
            (1, 0.3),
            (2, -0.5),
            (3, 0.3),
            (4, 0.9),
            (5, -0.5),
            (6, -0.1),
            (7, 2.0),
            (150, 1.0),
        ]);
        let present = [7, 6, 5, 4, 3, 2, 1, 150];
        let e = explain_words(&attr, "python", name, &present, &WordOptions::default());
        assert_eq!(e.tag, "python");
        // 150 has no name and is skipped; ties (1, 3) and (2, 5) go to the lower index.
        assert_eq!(words(&e.positive), ["w7", "w4", "w1", "w3"]);
        assert_eq!(words(&e.negative), ["w2", "w5", "w6"]);
        assert_eq!(e.positive[0].value, 2.0);

        let e = explain_words(
            &attr,
            "python",
            name,
            &present,
            &WordOptions {
                k: 2,
                present_only: true,
            },
        );
        assert_eq!(words(&e.positive), ["w7", "w4"]);
        assert_eq!(words(&e.negative), ["w2", "w5"]);
    }

    #[test]
    fn absent_words_are_named_only_when_asked() {
        let attr = attribution(vec![(1, 0.3), (2, -0.5), (9, 0.8)]);
        let e = explain_words(&attr, "t", name, &[1, 2], &WordOptions::default());
        assert_eq!(words(&e.positive), ["w1"]);
        let e = explain_words(
            &attr,
            "t",
            name,
            &[1, 2],
            &WordOptions {
                k: 5,
                present_only: false,
            },
        );
        assert_eq!(words(&e.positive), ["w9", "w1"]);
        assert_eq!(words(&e.negative), ["w2"]);
    }

    #[test]
    fn token_values_look_up_each_token() {
        let attr = attribution(vec![(1, 0.3), (2, -0.5)]);
        let lookup = |t: &str| match t {
            "a" => Some(1),
            "b" => Some(2),
            "c" => Some(3),
            _ => None,
        };
        let tv = token_values(&["a", "zz", "b", "c", "a"], &attr, lookup);
        let values: Vec<f64> = tv.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [0.3, 0.0, -0.5, 0.0, 0.3]);
    }

    #[test]
    fn summary_ranks_words_by_mean_absolute_attribution() {
        let model = tiny();
        let bg = rows(&[&[0], &[2]]);
        let questions = rows(&[&[1], &[0, 1], &[2]]);
        let names = ["zero", "one", "two"];
        let feature_name = |f: u32| names.get(f as usize).map(|s| s.to_string());
        let explainer = Explainer::new(Arc::new(model.clone()), &bg).unwrap();
        let sm = summary(
            &explainer,
            &questions,
            &[0],
            |_| "tag".into(),
            feature_name,
            2,
        )
        .unwrap();
        assert_eq!(sm.questions, 3);
        assert_eq!(sm.tags, ["tag"]);
        assert_eq!(sm.features.len(), 2);
        // Recompute the means from per-question attributions.
        let mut mean = [0.0f64; 3];
        for q in questions.iter() {
            let a = &shap_values(&model, &bg, q, &[0]).unwrap()[0];
            for (f, m) in mean.iter_mut().enumerate() {
                *m += a.value(f as u32).abs() / 3.0;
            }
        }
        let mut order = [0usize, 1, 2];
        order.sort_by(|&a, &b| mean[b].total_cmp(&mean[a]));
        assert_eq!(sm.features[0].word, names[order[0]]);
        assert!((sm.features[0].mean_abs[0] - mean[order[0]]).abs() < 1e-12);
        assert_eq!(sm.per_tag[0].words[1].word, names[order[1]]);
        let back: Summary = serde_json::from_str(&serde_json::to_string(&sm).unwrap()).unwrap();
        assert_eq!(back.tags, sm.tags);
        assert_eq!(back.per_tag[0].words.len(), sm.per_tag[0].words.len());
        for (a, b) in back.features.iter().zip(&sm.features) {
            assert_eq!((a.feature, &a.word), (b.feature, &b.word));
            assert!((a.mean_abs[0] - b.mean_abs[0]).abs() < 1e-15);
        }
    }

    #[test]
    fn summary_of_no_questions_is_empty() {
        let explainer = Explainer::new(Arc::new(tiny()), &rows(&[&[0]])).unwrap();
        let sm = summary(
            &explainer,
            &SparseRows::new(),
            &[0],
            |_| "t".into(),
            name,
            20,
        )
        .unwrap();
        assert_eq!(sm.questions, 0);
        assert!(sm.features.is_empty() && sm.per_tag[0].words.is_empty());
    }
}
