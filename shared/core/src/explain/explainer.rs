//! The DeepSHAP algorithm over a prepared background (see the module docs of `explain`).

use std::sync::Arc;

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::math::{
    differing, dot, relu, relu_derivative, rescale, sigmoid64, sigmoid_derivative, slot_of,
    sorted_union,
};
use super::Attribution;
use crate::error::{Error, Result};
use crate::model::Mlp;
use crate::sparse::SparseRows;

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
        let mut scratch = Vec::new();
        for (mut zr, r) in z.rows_mut().into_iter().zip(rows.iter()) {
            zr.iter_mut()
                .zip(&explainer.first_bias)
                .for_each(|(v, &b)| *v = b);
            for &i in r {
                let w = explainer.model.first_row(i as usize, &mut scratch);
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
        let mut row_scratch = Vec::new();
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
                let w = self.model.first_row(i as usize, &mut row_scratch);
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
        let mut z = self.first_bias.clone();
        let mut scratch = Vec::new();
        for &i in x {
            let w = self.model.first_row(i as usize, &mut scratch);
            for (zh, &w) in z.iter_mut().zip(w) {
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
