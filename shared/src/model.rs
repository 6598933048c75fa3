//! The multi-label MLP: a sparse binary first layer (a gather-sum of weight rows), ReLU hidden
//! layers, and one sigmoid output per tag.
//!
//! Weights are laid out as Keras lays out a `Dense` kernel, `(inputs, outputs)`, so a layer
//! computes `x @ weights + bias` and Keras-trained weights load unchanged.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, Slice};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sparse::SparseRows;

/// One fully connected layer: `y = x @ weights + bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// `(inputs, outputs)`.
    pub weights: Array2<f32>,
    /// `(outputs,)`.
    pub bias: Array1<f32>,
}

/// Layers in order; every layer but the last is followed by ReLU, the last by a sigmoid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub layers: Vec<Dense>,
}

impl Mlp {
    /// Checks that the layers chain (each layer's outputs feed the next one's inputs).
    pub fn from_layers(layers: Vec<Dense>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Shape {
                what: "model",
                expected: "at least one layer".into(),
                found: "none".into(),
            });
        }
        for (i, layer) in layers.iter().enumerate() {
            if layer.weights.ncols() != layer.bias.len() {
                return Err(Error::Shape {
                    what: "layer bias",
                    expected: format!("{} values for layer {i}", layer.weights.ncols()),
                    found: layer.bias.len().to_string(),
                });
            }
            if i > 0 && layers[i - 1].weights.ncols() != layer.weights.nrows() {
                return Err(Error::Shape {
                    what: "layer inputs",
                    expected: format!("{} inputs for layer {i}", layers[i - 1].weights.ncols()),
                    found: layer.weights.nrows().to_string(),
                });
            }
        }
        Ok(Mlp { layers })
    }

    pub fn n_inputs(&self) -> usize {
        self.layers[0].weights.nrows()
    }

    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].weights.ncols()
    }

    /// Output logits for a binary input given by the indices of its ones.
    /// Indices outside the input range are ignored: they carry no learned weight.
    pub fn logits(&self, features: &[u32]) -> Array1<f32> {
        let first = &self.layers[0];
        let mut h = first.bias.clone();
        for &i in features {
            if (i as usize) < first.weights.nrows() {
                h += &first.weights.row(i as usize);
            }
        }
        for layer in &self.layers[1..] {
            h.mapv_inplace(|v| v.max(0.0));
            h = h.dot(&layer.weights) + &layer.bias;
        }
        h
    }

    /// Per-tag probabilities.
    pub fn predict_proba(&self, features: &[u32]) -> Array1<f32> {
        self.logits(features).mapv(sigmoid)
    }
}

impl Mlp {
    /// A freshly initialised network: Glorot-uniform weights (Keras' `Dense` default,
    /// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`) and zero biases.
    ///
    /// Weights are drawn layer by layer in row-major order, so the same `rng` state gives the
    /// same network on every platform.
    pub fn glorot(n_inputs: usize, hidden: &[usize], n_outputs: usize, rng: &mut impl Rng) -> Mlp {
        let mut sizes = Vec::with_capacity(hidden.len() + 2);
        sizes.push(n_inputs);
        sizes.extend_from_slice(hidden);
        sizes.push(n_outputs);
        let layers = sizes
            .windows(2)
            .map(|pair| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
                let mut weights = Array2::<f32>::zeros((fan_in, fan_out));
                for w in weights.iter_mut() {
                    // `random::<f32>()` is uniform in [0, 1); map it onto [-limit, limit).
                    *w = (rng.random::<f32>() * 2.0 - 1.0) * limit;
                }
                Dense { weights, bias: Array1::zeros(fan_out) }
            })
            .collect();
        Mlp { layers }
    }

    /// Per-tag probabilities for many rows at once, `(rows, tags)`.
    ///
    /// Rows go through the network in blocks so the hidden layers run as matrix products.
    pub fn predict_proba_batch(&self, rows: &SparseRows) -> Array2<f32> {
        let mut out = self.logits_batch(rows);
        out.mapv_inplace(sigmoid);
        out
    }

    /// Output logits for many rows at once, `(rows, tags)`.
    pub fn logits_batch(&self, rows: &SparseRows) -> Array2<f32> {
        const BLOCK: usize = 256;
        let n = rows.len();
        let mut out = Array2::<f32>::zeros((n, self.n_outputs()));
        let mut buffers = BatchBuffers::new(self, BLOCK.min(n.max(1)));
        let order: Vec<usize> = (0..n).collect();
        for (block, ids) in order.chunks(BLOCK).enumerate() {
            self.forward_batch(rows, ids, &mut buffers, None);
            let start = block * BLOCK;
            out.slice_axis_mut(Axis(0), Slice::from(start..start + ids.len()))
                .assign(&top(&buffers.outputs[self.layers.len() - 1], ids.len()));
        }
        out
    }

    /// Batched forward pass over `x.row(ids[0]), x.row(ids[1]), ...`, leaving every layer's
    /// output in `buffers.outputs` (ReLU (+ dropout) applied for hidden layers, raw logits for
    /// the last). The first layer is a gather-sum of weight rows: a binary input row touches
    /// only the rows of its ones. Feature indices beyond the first layer are ignored.
    ///
    /// `dropout`: `Some((rate, rng))` applies inverted dropout to hidden activations (kept units
    /// scaled by `1 / (1 - rate)`), as Keras' `Dropout` after each hidden `Dense` in training.
    pub fn forward_batch(
        &self,
        x: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        mut dropout: Option<(f32, &mut ChaCha8Rng)>,
    ) {
        buffers.ensure(self, ids.len());
        let b = ids.len();
        let last = self.layers.len() - 1;
        let first = &self.layers[0];
        let n_rows = first.weights.nrows();
        {
            let out0 = &mut buffers.outputs[0];
            for (r, &id) in ids.iter().enumerate() {
                let mut z = out0.row_mut(r);
                z.assign(&first.bias);
                for &i in x.row(id) {
                    if (i as usize) < n_rows {
                        z += &first.weights.row(i as usize);
                    }
                }
            }
        }
        buffers.keep_scale = 1.0;
        for l in 0..=last {
            if l > 0 {
                let (before, after) = buffers.outputs.split_at_mut(l);
                let input = top(&before[l - 1], b);
                let mut out = top_mut(&mut after[0], b);
                let layer = &self.layers[l];
                for mut row in out.rows_mut() {
                    row.assign(&layer.bias);
                }
                general_mat_mul(1.0, &input, &layer.weights, 1.0, &mut out);
            }
            if l < last {
                let mut out = top_mut(&mut buffers.outputs[l], b);
                match dropout.as_mut() {
                    Some((rate, rng)) if *rate > 0.0 => {
                        let keep = 1.0 - *rate;
                        let scale = 1.0 / keep;
                        buffers.keep_scale = scale;
                        // Keep a unit when a uniform u32 falls below keep * 2^32.
                        let cut = (f64::from(keep) * 4_294_967_296.0) as u64;
                        for v in out.iter_mut() {
                            let kept = u64::from(rng.next_u32()) < cut;
                            *v = if kept && *v > 0.0 { *v * scale } else { 0.0 };
                        }
                    }
                    _ => out.mapv_inplace(|v| v.max(0.0)),
                }
            }
        }
    }

    /// Backward pass after [`Mlp::forward_batch`] on the same rows: binary cross-entropy on the
    /// logits against label rows `y.row(ids[..])`, averaged over tags and rows as Keras does.
    /// Fills `grads` and returns the summed (not averaged) loss of the batch.
    ///
    /// Loss per output, stable for any logit `z` (the log-sum-exp form, as in
    /// TensorFlow's `sigmoid_cross_entropy_with_logits`): `max(z, 0) - z*y + ln(1 + exp(-|z|))`;
    /// its gradient is `sigmoid(z) - y`.
    pub fn backward_batch(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
    ) -> f64 {
        let b = ids.len();
        let last = self.layers.len() - 1;
        let n_out = self.n_outputs();
        let scale = 1.0 / (b * n_out) as f32;
        grads.ensure(self);

        // Output layer: delta = (sigmoid(z) - y) / (b * tags).
        let mut loss = 0.0f64;
        {
            let logits = top(&buffers.outputs[last], b);
            let mut delta = top_mut(&mut buffers.deltas[last], b);
            for (&id, (z_row, mut d_row)) in ids.iter().zip(logits.outer_iter().zip(delta.outer_iter_mut())) {
                let mut row_loss = 0.0f32;
                for (z, d) in z_row.iter().zip(d_row.iter_mut()) {
                    let (p, l) = sigmoid_and_softplus_neg_abs(*z);
                    row_loss += z.max(0.0) + l;
                    *d = p * scale;
                }
                for &t in y.row(id) {
                    let t = t as usize;
                    if t < n_out {
                        row_loss -= z_row[t];
                        d_row[t] -= scale;
                    }
                }
                loss += f64::from(row_loss);
            }
        }

        for l in (0..=last).rev() {
            // Bias gradient: column sums of this layer's delta.
            {
                let delta = top(&buffers.deltas[l], b);
                let gb = &mut grads.bias[l];
                gb.fill(0.0);
                for row in delta.outer_iter() {
                    *gb += &row;
                }
            }
            if l == 0 {
                break;
            }
            let (before, after) = buffers.deltas.split_at_mut(l);
            let delta = top(&after[0], b);
            let input = top(&buffers.outputs[l - 1], b);
            general_mat_mul(1.0, &input.t(), &delta, 0.0, &mut grads.weights[l]);
            // Delta of the layer below: (delta @ W^T) * d(activation). The activation's stored
            // output is relu(z) * dropout scale, so it is positive exactly where the unit was
            // active and kept; its derivative there is output / relu(z) = the dropout scale.
            let mut below = top_mut(&mut before[l - 1], b);
            general_mat_mul(1.0, &delta, &self.layers[l].weights.t(), 0.0, &mut below);
            let keep_scale = buffers.keep_scale;
            ndarray::Zip::from(&mut below).and(&input).for_each(|d, &a| {
                *d = if a > 0.0 { *d * keep_scale } else { 0.0 };
            });
        }

        // First layer: scatter-add each row's delta into the weight rows it touched.
        let n_rows = self.layers[0].weights.nrows();
        let h0 = self.layers[0].weights.ncols();
        grads.touched.clear();
        let delta0 = top(&buffers.deltas[0], b);
        for (r, &id) in ids.iter().enumerate() {
            let d = delta0.row(r);
            for &i in x.row(id) {
                if (i as usize) >= n_rows {
                    continue;
                }
                let mut slot = grads.slot[i as usize];
                if slot == u32::MAX {
                    slot = grads.touched.len() as u32;
                    grads.slot[i as usize] = slot;
                    grads.touched.push(i);
                    let need = grads.touched.len() * h0;
                    if grads.first.len() < need {
                        grads.first.resize(need, 0.0);
                    }
                    grads.first[slot as usize * h0..need].fill(0.0);
                }
                let g = &mut grads.first[slot as usize * h0..(slot as usize + 1) * h0];
                for (gv, dv) in g.iter_mut().zip(d.iter()) {
                    *gv += dv;
                }
            }
        }
        for &i in &grads.touched {
            grads.slot[i as usize] = u32::MAX;
        }
        loss
    }
}

/// `(sigmoid(z), ln(1 + exp(-|z|)))` from one `exp`: the two pieces the loss and its gradient need.
#[inline]
pub fn sigmoid_and_softplus_neg_abs(z: f32) -> (f32, f32) {
    let e = (-z.abs()).exp();
    let inv = 1.0 / (1.0 + e);
    let p = if z >= 0.0 { inv } else { e * inv };
    (p, e.ln_1p())
}

/// Binary cross-entropy of one logit `z` against target `y` in {0, 1}, without overflow for any `z`.
#[inline]
pub fn bce_with_logits(z: f32, y: f32) -> f32 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// Per-layer buffers for batched passes, sized once for the largest batch and reused.
#[derive(Debug)]
pub struct BatchBuffers {
    /// Each layer's output: activations (after ReLU/dropout) for hidden layers, logits for the last.
    pub outputs: Vec<Array2<f32>>,
    /// Gradient of the mean loss with respect to each layer's pre-activation.
    pub deltas: Vec<Array2<f32>>,
    /// The factor kept hidden units were multiplied by in the last forward pass (1 without dropout).
    pub keep_scale: f32,
}

impl BatchBuffers {
    pub fn new(model: &Mlp, rows: usize) -> Self {
        let mut me = BatchBuffers { outputs: Vec::new(), deltas: Vec::new(), keep_scale: 1.0 };
        me.ensure(model, rows);
        me
    }

    fn ensure(&mut self, model: &Mlp, rows: usize) {
        let fits = self.outputs.len() == model.layers.len()
            && self
                .outputs
                .iter()
                .zip(&model.layers)
                .all(|(o, l)| o.nrows() >= rows && o.ncols() == l.weights.ncols());
        if !fits {
            self.outputs = model.layers.iter().map(|l| Array2::zeros((rows, l.weights.ncols()))).collect();
            self.deltas = self.outputs.clone();
        }
    }
}

/// Gradients of one batch: dense for layers after the first, and for the first layer only the
/// weight rows the batch touched (`touched[k]` owns `first[k * width..(k + 1) * width]`).
#[derive(Debug, Default)]
pub struct Gradients {
    /// First-layer weight rows with a gradient, in first-seen order.
    pub touched: Vec<u32>,
    /// Their gradients, row after row (may be longer than needed; only `touched.len()` rows count).
    pub first: Vec<f32>,
    /// Weight gradients per layer; entry 0 is unused (empty), the first layer's are sparse above.
    pub weights: Vec<Array2<f32>>,
    /// Bias gradients per layer.
    pub bias: Vec<Array1<f32>>,
    /// Input index -> position in `touched`, `u32::MAX` when absent; reset after every batch.
    slot: Vec<u32>,
}

impl Gradients {
    pub fn new(model: &Mlp) -> Self {
        let mut g = Gradients::default();
        g.ensure(model);
        g
    }

    fn ensure(&mut self, model: &Mlp) {
        if self.bias.len() == model.layers.len() && self.slot.len() == model.n_inputs() {
            return;
        }
        self.slot = vec![u32::MAX; model.n_inputs()];
        self.bias = model.layers.iter().map(|l| Array1::zeros(l.bias.len())).collect();
        self.weights = model
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { Array2::zeros((0, 0)) } else { Array2::zeros(l.weights.dim()) })
            .collect();
        self.touched.clear();
    }

    /// The first-layer gradient row of `touched[k]`.
    pub fn first_row(&self, k: usize, width: usize) -> &[f32] {
        &self.first[k * width..(k + 1) * width]
    }
}

/// The first `rows` rows of a buffer (batches may be smaller than the buffers).
fn top(a: &Array2<f32>, rows: usize) -> ArrayView2<'_, f32> {
    a.slice_axis(Axis(0), Slice::from(..rows))
}

fn top_mut(a: &mut Array2<f32>, rows: usize) -> ArrayViewMut2<'_, f32> {
    a.slice_axis_mut(Axis(0), Slice::from(..rows))
}

/// Logistic function that never overflows: `exp` only ever sees a non-positive argument.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
