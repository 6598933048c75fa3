//! Training-side operations on the core network: initialisation, logit averaging, batched
//! forward and backward passes, the loss, and the reusable buffers they work in.
//!
//! The network type itself (and the per-question forward pass that serving uses) lives in
//! `tagger_core::model`; what only training needs is here, as the [`Training`] extension trait.

use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use pulp::Arch;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tagger_core::model::{sigmoid, Dense, Mlp};
use tagger_core::sparse::SparseRows;

use crate::teacher::SoftTargets;

mod buffers;
mod kernels;
mod loss;
pub(crate) use buffers::{zero_biases, zero_weights_past_first};
pub use buffers::{BatchBuffers, Gradients};
pub(crate) use kernels::simd;
use kernels::{masked_dot_rows, sparse_times_dense};

/// Training operations on [`Mlp`] (see each implementation's documentation).
pub trait Training: Sized {
    fn glorot(n_inputs: usize, hidden: &[usize], n_outputs: usize, rng: &mut impl Rng) -> Self;
    fn average_logits(models: &[Self]) -> Option<Self>;
    fn predict_proba_batch(&self, rows: &SparseRows) -> Array2<f32>;
    fn logits_batch(&self, rows: &SparseRows) -> Array2<f32>;
    fn forward_batch(
        &self,
        x: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        dropout: Option<(f32, &mut ChaCha8Rng)>,
    );
    fn backward_batch(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
    ) -> f64;
    fn backward_batch_weighted(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
        pos_weights: &[f32],
    ) -> f64;
    #[allow(clippy::too_many_arguments)]
    fn backward_batch_targets(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        soft: Option<&SoftTargets>,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
        pos_weights: &[f32],
    ) -> f64;
}

impl Training for Mlp {
    /// A freshly initialised network: Glorot-uniform weights (Keras' `Dense` default,
    /// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`) and zero biases.
    ///
    /// Weights are drawn layer by layer in row-major order, so the same `rng` state gives the
    /// same network on every platform.
    fn glorot(n_inputs: usize, hidden: &[usize], n_outputs: usize, rng: &mut impl Rng) -> Mlp {
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
                Dense {
                    weights,
                    bias: Array1::zeros(fan_out),
                }
            })
            .collect();
        Mlp::from_layers(layers).expect("layers chain by construction")
    }

    /// One network computing the mean of `models`' logits exactly: hidden layers side by side
    /// (the first layers' columns concatenated, later hidden layers block-diagonal), output
    /// weights scaled by `1 / models.len()` and stacked. An ensemble in one [`Mlp`], so
    /// prediction, artifacts and the explainer need nothing new. `None` unless the models have
    /// the same inputs, outputs and depth.
    fn average_logits(models: &[Mlp]) -> Option<Mlp> {
        let first = models.first()?;
        let depth = first.layers().len();
        if models.iter().any(|m| {
            m.layers().len() != depth
                || m.n_inputs() != first.n_inputs()
                || m.n_outputs() != first.n_outputs()
        }) {
            return None;
        }
        let scale = 1.0 / models.len() as f32;
        let mut layers = Vec::with_capacity(depth);
        for l in 0..depth {
            let last = l + 1 == depth;
            let rows: usize = if l == 0 {
                first.n_inputs()
            } else {
                models.iter().map(|m| m.layers()[l].weights.nrows()).sum()
            };
            let cols: usize = if last {
                first.n_outputs()
            } else {
                models.iter().map(|m| m.layers()[l].weights.ncols()).sum()
            };
            let mut weights = Array2::<f32>::zeros((rows, cols));
            let mut bias = Array1::<f32>::zeros(cols);
            let (mut r0, mut c0) = (0, 0);
            for m in models {
                let w = &m.layers()[l].weights;
                let (r, c) = w.dim();
                let (rs, cs) = (if l == 0 { 0 } else { r0 }, if last { 0 } else { c0 });
                let mut rows_view = weights.slice_axis_mut(Axis(0), Slice::from(rs..rs + r));
                let mut block = rows_view.slice_axis_mut(Axis(1), Slice::from(cs..cs + c));
                if last {
                    block.scaled_add(scale, w);
                    bias.scaled_add(scale, &m.layers()[l].bias);
                } else {
                    block.assign(w);
                    bias.slice_axis_mut(Axis(0), Slice::from(cs..cs + c))
                        .assign(&m.layers()[l].bias);
                }
                r0 += r;
                c0 += c;
            }
            layers.push(Dense { weights, bias });
        }
        Some(Mlp::from_layers(layers).expect("layers chain by construction"))
    }

    /// Per-tag probabilities for many rows at once, `(rows, tags)`.
    ///
    /// Rows go through the network in blocks so the hidden layers run as matrix products.
    fn predict_proba_batch(&self, rows: &SparseRows) -> Array2<f32> {
        let mut out = self.logits_batch(rows);
        out.mapv_inplace(sigmoid);
        out
    }

    /// Output logits for many rows at once, `(rows, tags)`.
    fn logits_batch(&self, rows: &SparseRows) -> Array2<f32> {
        const BLOCK: usize = 256;
        let n = rows.len();
        let mut out = Array2::<f32>::zeros((n, self.n_outputs()));
        let mut buffers = BatchBuffers::new(self, BLOCK.min(n.max(1)));
        let order: Vec<usize> = (0..n).collect();
        for (block, ids) in order.chunks(BLOCK).enumerate() {
            self.forward_batch(rows, ids, &mut buffers, None);
            let start = block * BLOCK;
            out.slice_axis_mut(Axis(0), Slice::from(start..start + ids.len()))
                .assign(&top(&buffers.outputs[self.layers().len() - 1], ids.len()));
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
    fn forward_batch(
        &self,
        x: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        dropout: Option<(f32, &mut ChaCha8Rng)>,
    ) {
        buffers.ensure(self, ids.len());
        let b = ids.len();
        let last = self.layers().len() - 1;
        let first = &self.layers()[0];
        let n_rows = first.weights.nrows();
        let h0 = first.weights.ncols();
        let w0 = first.weights.as_standard_layout();
        let w0 = w0
            .as_slice()
            .expect("a standard-layout array is contiguous");
        let bias0 = first.bias.as_standard_layout();
        let bias0 = bias0
            .as_slice()
            .expect("a standard-layout array is contiguous");
        let out0 = flat_mut(&mut buffers.outputs[0]);
        simd!(Arch::new(), 'a, |
            out0: &'a mut [f32] = out0;
            x: &'a SparseRows = x;
            ids: &'a [usize] = ids;
            w0: &'a [f32] = &w0;
            bias0: &'a [f32] = &bias0;
            h0: usize = h0;
            n_rows: usize = n_rows;
        | -> () {
            for (z, &id) in out0.chunks_exact_mut(h0).zip(ids) {
                z.copy_from_slice(bias0);
                for &i in x.row(id) {
                    let i = i as usize;
                    if i < n_rows {
                        add_assign(z, &w0[i * h0..(i + 1) * h0]);
                    }
                }
            }
        });
        buffers.keep_scale = 1.0;
        let mut dropout = dropout.filter(|(rate, _)| *rate > 0.0);
        for l in 0..=last {
            if l > 0 {
                // Only the active units of the layer below contribute (see `kernels`).
                let layer = &self.layers()[l];
                let n = layer.weights.ncols();
                let weights = layer.weights.as_standard_layout();
                let weights = weights
                    .as_slice()
                    .expect("a standard-layout array is contiguous");
                let out = &mut flat_mut(&mut buffers.outputs[l])[..b * n];
                for row in out.chunks_exact_mut(n) {
                    row.iter_mut().zip(&layer.bias).for_each(|(o, &c)| *o = c);
                }
                sparse_times_dense(Arch::new(), &buffers.active[l - 1], weights, n, out);
            }
            if l == last {
                break;
            }
            let width = self.layers()[l].weights.ncols();
            let out = &mut flat_mut(&mut buffers.outputs[l])[..b * width];
            match dropout.as_mut() {
                Some((rate, rng)) => {
                    // Inverted dropout: keep a unit when a uniform u16 falls below
                    // keep * 2^16 (the rate is thus quantised to 1/65536), scale it by 1/keep.
                    let keep = 1.0 - *rate;
                    let scale = 1.0 / keep;
                    buffers.keep_scale = scale;
                    let cut = (f64::from(keep) * 65536.0).round() as u32;
                    buffers.noise.resize(out.len(), 0);
                    rng.fill(&mut buffers.noise[..]);
                    simd!(Arch::new(), 'a, |
                        out: &'a mut [f32] = out;
                        noise: &'a [u16] = &buffers.noise;
                        cut: u32 = cut;
                        scale: f32 = scale;
                    | -> () {
                        for (v, &r) in out.iter_mut().zip(noise) {
                            let kept = u32::from(r) < cut;
                            *v = if kept { v.max(0.0) * scale } else { 0.0 };
                        }
                    });
                }
                None => out.iter_mut().for_each(|v| *v = v.max(0.0)),
            }
            buffers.active[l].gather_positive(out, b, width);
        }
    }

    /// Backward pass after [`Mlp::forward_batch`] on the same rows: binary cross-entropy on the
    /// logits against label rows `y.row(ids[..])`, averaged over tags and rows as Keras does,
    /// plus `buffers.activity_l1` times the mean over rows of the hidden activations' sum.
    /// Fills `grads` and returns the summed (not averaged) loss of the batch.
    ///
    /// Loss per output, stable for any logit `z` (the log-sum-exp form, as in
    /// TensorFlow's `sigmoid_cross_entropy_with_logits`): `max(z, 0) - z*y + ln(1 + exp(-|z|))`;
    /// its gradient is `sigmoid(z) - y`.
    fn backward_batch(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
    ) -> f64 {
        self.backward_batch_weighted(x, y, ids, buffers, grads, &[])
    }

    /// [`Mlp::backward_batch`] with the positive term of tag `t` weighted by `pos_weights[t]`
    /// (`-w y ln p - (1 - y) ln(1 - p)`, gradient `p (1 - y + w y) - w y`); tags beyond the
    /// slice (all of them for an empty one) weigh 1.
    fn backward_batch_weighted(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
        pos_weights: &[f32],
    ) -> f64 {
        self.backward_batch_targets(x, y, None, ids, buffers, grads, pos_weights)
    }

    /// [`Mlp::backward_batch_weighted`] where row `i` may have soft targets
    /// ([`SoftTargets`]): the target of tag `t` is `(1 - a) y_t + a q_t` (`a` the row's weight,
    /// `q` its teacher probabilities), the loss `softplus(z) - target z`, the gradient
    /// `sigmoid(z) - target`. Positive weights apply to rows without soft targets only (the
    /// settings never combine the two).
    fn backward_batch_targets(
        &self,
        x: &SparseRows,
        y: &SparseRows,
        soft: Option<&SoftTargets>,
        ids: &[usize],
        buffers: &mut BatchBuffers,
        grads: &mut Gradients,
        pos_weights: &[f32],
    ) -> f64 {
        let b = ids.len();
        let last = self.layers().len() - 1;
        let n_out = self.n_outputs();
        let scale = 1.0 / (b * n_out) as f32;
        grads.ensure(self);

        // Output layer: delta = (sigmoid(z) - y) / (b * tags).
        let loss: f64;
        {
            let (outputs, deltas) = (&buffers.outputs, &mut buffers.deltas);
            let logits = flat(&outputs[last]);
            let delta = flat_mut(&mut deltas[last]);
            loss = loss::loss_and_delta(
                loss::OutputBatch {
                    logits,
                    delta,
                    ids,
                    n_out,
                    scale,
                },
                y,
                soft,
                pos_weights,
            );
        }

        let mut penalty = 0.0f64;
        for l in (0..=last).rev() {
            // Bias gradient: column sums of this layer's delta.
            {
                let width = self.layers()[l].weights.ncols();
                let gb = grads.bias[l]
                    .as_slice_mut()
                    .expect("gradient vectors are contiguous");
                gb.fill(0.0);
                simd!(Arch::new(), 'a, |
                    gb: &'a mut [f32] = gb;
                    deltas: &'a [f32] = flat(&buffers.deltas[l]);
                    width: usize = width;
                    b: usize = b;
                | -> () {
                    for row in deltas.chunks_exact(width).take(b) {
                        add_assign(gb, row);
                    }
                });
            }
            if l == 0 {
                break;
            }
            let (before, after) = buffers.deltas.split_at_mut(l);
            let n = self.layers()[l].weights.ncols();
            let width = self.layers()[l - 1].weights.ncols();
            let delta = &flat(&after[0])[..b * n];
            // Weight gradient: input^T @ delta, one delta row per active (row, unit) pair.
            let input = &buffers.active[l - 1];
            input.transpose_into(width, &mut buffers.active_t);
            let gw = grads.weights[l]
                .as_slice_mut()
                .expect("gradient arrays are standard layout");
            gw.fill(0.0);
            sparse_times_dense(Arch::new(), &buffers.active_t, delta, n, gw);
            // Delta of the layer below: (delta @ W^T) * d(activation). The stored activation is
            // relu(z) * dropout scale, positive exactly where the unit was active and kept,
            // and its derivative there is the dropout scale (1 without dropout): only those
            // cells are computed, the rest are zero.
            let weights = self.layers()[l].weights.as_standard_layout();
            let weights = weights
                .as_slice()
                .expect("a standard-layout array is contiguous");
            masked_dot_rows(
                Arch::new(),
                input,
                delta,
                weights,
                buffers.keep_scale,
                flat_mut(&mut before[l - 1]),
                width,
            );
            if buffers.activity_l1 > 0.0 {
                // The penalty `activity_l1 * sum of activations / rows` of the mean loss: its
                // gradient is `activity_l1 / rows` per activation, times the dropout scale per
                // unit of pre-activation, at active units only. The summed loss gets it in the
                // same units as the cross-entropy (`x rows x tags`).
                let below = flat_mut(&mut before[l - 1]);
                let per_unit = buffers.activity_l1 * buffers.keep_scale / b as f32;
                let mut activity = 0.0f64;
                for r in 0..input.rows() {
                    let (index, value) = input.row(r);
                    for (&j, &h) in index.iter().zip(value) {
                        below[r * width + j as usize] += per_unit;
                        activity += f64::from(h);
                    }
                }
                penalty += f64::from(buffers.activity_l1) * (n_out as f64) * activity;
            }
        }

        // First layer: scatter-add each row's delta into the weight rows it touched.
        let n_rows = self.layers()[0].weights.nrows();
        let h0 = self.layers()[0].weights.ncols();
        grads.touched.clear();
        simd!(Arch::new(), 'a, |
            delta0: &'a [f32] = flat(&buffers.deltas[0]);
            grads: &'a mut Gradients = grads;
            x: &'a SparseRows = x;
            ids: &'a [usize] = ids;
            h0: usize = h0;
            n_rows: usize = n_rows;
        | -> () {
        for (d, &id) in delta0.chunks_exact(h0).zip(ids) {
            for &i in x.row(id) {
                let i = i as usize;
                if i >= n_rows {
                    continue;
                }
                let mut slot = grads.slot[i] as usize;
                if slot == u32::MAX as usize {
                    slot = grads.touched.len();
                    grads.slot[i] = slot as u32;
                    grads.touched.push(i as u32);
                    let need = (slot + 1) * h0;
                    if grads.first.len() < need {
                        grads.first.resize(need, 0.0);
                    }
                    grads.first[slot * h0..need].fill(0.0);
                }
                add_assign(&mut grads.first[slot * h0..(slot + 1) * h0], d);
            }
        }
        });
        for &i in &grads.touched {
            grads.slot[i as usize] = u32::MAX;
        }
        loss + penalty
    }
}

/// `a += b` elementwise over equal-length slices (written so the compiler vectorises it).
#[inline(always)]
fn add_assign(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// All values of a buffer (created by [`BatchBuffers`], so always in standard layout).
fn flat(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("batch buffers are standard layout")
}

fn flat_mut(a: &mut Array2<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("batch buffers are standard layout")
}

/// Binary cross-entropy of one logit `z` against target `y` in {0, 1}, without overflow for any `z`.
#[inline]
pub fn bce_with_logits(z: f32, y: f32) -> f32 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// The first `rows` rows of a buffer (batches may be smaller than the buffers).
fn top(a: &Array2<f32>, rows: usize) -> ArrayView2<'_, f32> {
    a.slice_axis(Axis(0), Slice::from(..rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use tagger_core::model::Mlp;

    fn rows(r: &[&[u32]]) -> SparseRows {
        r.iter().copied().collect()
    }

    /// A small network with non-zero biases so every parameter matters.
    fn tiny() -> Mlp {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut model = Mlp::glorot(6, &[5, 4], 3, &mut rng);
        for layer in model.layers_mut() {
            for b in layer.bias.iter_mut() {
                *b = rng.random::<f32>() * 0.4 - 0.1;
            }
        }
        model
    }

    /// Mean BCE over rows and tags, computed independently in f64 from dense inputs, the
    /// positive term of tag `t` weighted by `pos_weights[t]` (1 beyond the slice), plus
    /// `activity` times the mean over rows of the hidden activations' sum.
    fn reference_loss(
        layers: &[(Vec<Vec<f64>>, Vec<f64>)],
        x: &SparseRows,
        y: &SparseRows,
        pos_weights: &[f32],
        soft: Option<&SoftTargets>,
        activity: f64,
    ) -> f64 {
        let n_out = layers.last().map_or(0, |l| l.1.len());
        let mut total = 0.0;
        let mut active_sum = 0.0;
        for r in 0..x.len() {
            let n_in = layers[0].0.len();
            let mut h: Vec<f64> = (0..n_in)
                .map(|i| {
                    if x.row(r).contains(&(i as u32)) {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            for (l, (w, b)) in layers.iter().enumerate() {
                let mut z = b.clone();
                for (i, hi) in h.iter().enumerate() {
                    for (j, zj) in z.iter_mut().enumerate() {
                        *zj += hi * w[i][j];
                    }
                }
                if l + 1 < layers.len() {
                    z.iter_mut().for_each(|v| *v = v.max(0.0));
                    active_sum += z.iter().sum::<f64>();
                }
                h = z;
            }
            for (t, z) in h.iter().enumerate() {
                let target = if y.row(r).contains(&(t as u32)) {
                    1.0
                } else {
                    0.0
                };
                let p = 1.0 / (1.0 + (-z).exp());
                let a = soft.map_or(0.0, |s| f64::from(s.weight[r]));
                if a > 0.0 {
                    let q = soft.unwrap().rows[r]
                        .iter()
                        .find(|&&(u, _)| u as usize == t)
                        .map_or(0.0, |&(_, q)| f64::from(q));
                    let target = (1.0 - a) * target + a * q;
                    total -= target * p.ln() + (1.0 - target) * (1.0 - p).ln();
                    continue;
                }
                let w = pos_weights.get(t).map_or(1.0, |&w| f64::from(w));
                total -= w * target * p.ln() + (1.0 - target) * (1.0 - p).ln();
            }
        }
        total / (x.len() * n_out) as f64 + activity * active_sum / x.len() as f64
    }

    fn to_f64(model: &Mlp) -> Vec<(Vec<Vec<f64>>, Vec<f64>)> {
        model
            .layers()
            .iter()
            .map(|l| {
                let w = l
                    .weights
                    .outer_iter()
                    .map(|r| r.iter().map(|&v| f64::from(v)).collect())
                    .collect();
                (w, l.bias.iter().map(|&v| f64::from(v)).collect())
            })
            .collect()
    }

    #[test]
    fn backward_matches_finite_differences() {
        assert_backward_matches_finite_differences(&[], None, 0.0);
    }

    /// The activity penalty's term in the loss and in every gradient (both hidden layers).
    #[test]
    fn activity_penalty_backward_matches_finite_differences() {
        assert_backward_matches_finite_differences(&[], None, 0.05);
    }

    /// Row 0 half labels, half teacher; row 1 labels only; row 2 (no tags) teacher only.
    #[test]
    fn soft_target_backward_matches_finite_differences() {
        let soft = SoftTargets {
            rows: vec![
                vec![(0, 0.7), (2, 0.2)],
                vec![(0, 0.9)],
                vec![(1, 0.6), (2, 0.05)],
            ],
            weight: vec![0.5, 0.0, 1.0],
        };
        assert_backward_matches_finite_differences(&[], Some(&soft), 0.0);
    }

    #[test]
    fn weighted_backward_matches_finite_differences() {
        assert_backward_matches_finite_differences(&[4.0, 1.0, 2.5], None, 0.0);
    }

    fn assert_backward_matches_finite_differences(
        pos_weights: &[f32],
        soft: Option<&SoftTargets>,
        activity: f32,
    ) {
        let model = tiny();
        let x = rows(&[&[0, 2, 5], &[1, 2], &[3]]);
        let y = rows(&[&[0], &[1, 2], &[]]);
        let ids = [0, 1, 2];
        let mut buffers = BatchBuffers::new(&model, 3);
        buffers.activity_l1 = activity;
        let activity = f64::from(activity);
        let mut grads = Gradients::new(&model);
        model.forward_batch(&x, &ids, &mut buffers, None);
        let loss_sum =
            model.backward_batch_targets(&x, &y, soft, &ids, &mut buffers, &mut grads, pos_weights);

        let base = to_f64(&model);
        let mean = reference_loss(&base, &x, &y, pos_weights, soft, activity);
        assert!(
            (loss_sum / 9.0 - mean).abs() < 1e-5,
            "loss {} vs reference {mean}",
            loss_sum / 9.0
        );

        let h = 1e-5;
        let numeric = |l: usize, i: Option<usize>, j: usize| {
            let mut plus = base.clone();
            let mut minus = base.clone();
            match i {
                Some(i) => {
                    plus[l].0[i][j] += h;
                    minus[l].0[i][j] -= h;
                }
                None => {
                    plus[l].1[j] += h;
                    minus[l].1[j] -= h;
                }
            }
            (reference_loss(&plus, &x, &y, pos_weights, soft, activity)
                - reference_loss(&minus, &x, &y, pos_weights, soft, activity))
                / (2.0 * h)
        };
        let check = |what: &str, analytic: f32, numeric: f64| {
            let a = f64::from(analytic);
            assert!(
                (a - numeric).abs() <= 1e-4 * numeric.abs().max(1e-2),
                "{what}: analytic {a} vs numeric {numeric}"
            );
        };

        let width = model.layers()[0].weights.ncols();
        for input in 0..6 {
            let slot = grads.touched.iter().position(|&t| t == input as u32);
            for j in 0..width {
                let n = numeric(0, Some(input), j);
                match slot {
                    Some(k) => check(
                        &format!("w0[{input}][{j}]"),
                        grads.first_row(k, width)[j],
                        n,
                    ),
                    // Input 4 appears in no row: no gradient is stored, and none exists.
                    None => assert!(n.abs() < 1e-9, "untouched input {input} has gradient {n}"),
                }
            }
        }
        assert_eq!(grads.touched.len(), 5);
        for l in 0..model.layers().len() {
            for j in 0..model.layers()[l].bias.len() {
                check(&format!("b{l}[{j}]"), grads.bias[l][j], numeric(l, None, j));
            }
            if l > 0 {
                for ((i, j), &g) in grads.weights[l].indexed_iter() {
                    check(&format!("w{l}[{i}][{j}]"), g, numeric(l, Some(i), j));
                }
            }
        }
    }

    #[test]
    fn bce_is_finite_and_correct_for_large_logits() {
        // For |z| = 100: the loss is ~0 when the sign agrees with the target, ~100 otherwise.
        for (z, y, expected) in [
            (100.0, 1.0, 0.0),
            (100.0, 0.0, 100.0),
            (-100.0, 0.0, 0.0),
            (-100.0, 1.0, 100.0),
        ] {
            let l = bce_with_logits(z, y);
            assert!(
                l.is_finite() && (l - expected).abs() < 1e-3,
                "bce({z}, {y}) = {l}"
            );
        }
        // The batched pass must stay finite too: push every logit to +-100 through the bias.
        let mut model = tiny();
        let last = model.layers().len() - 1;
        model.layers_mut()[last].weights.fill(0.0);
        model.layers_mut()[last].bias = Array1::from(vec![100.0, -100.0, 100.0]);
        let (x, y) = (rows(&[&[0], &[1]]), rows(&[&[1], &[0, 2]]));
        let mut buffers = BatchBuffers::new(&model, 2);
        let mut grads = Gradients::new(&model);
        model.forward_batch(&x, &[0, 1], &mut buffers, None);
        let loss = model.backward_batch(&x, &y, &[0, 1], &mut buffers, &mut grads);
        // Logits (100, -100, 100). Row 0 (true {1}) is wrong on all three tags, 100 each;
        // row 1 (true {0, 2}) is right on all three. Summed loss: 300.
        assert!((loss - 300.0).abs() < 1e-2, "loss {loss}");
        assert!(buffers.deltas[last].iter().all(|d| d.is_finite()));
        assert!(model
            .predict_proba_batch(&x)
            .iter()
            .all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn average_logits_equals_the_mean_of_the_members_logits() {
        let a = tiny();
        let mut b = Mlp::glorot(6, &[3, 2], 3, &mut ChaCha8Rng::seed_from_u64(9));
        b.layers_mut()[2].bias.fill(0.3);
        let joint = Mlp::average_logits(&[a.clone(), b.clone()]).expect("same shapes");
        assert_eq!(joint.layers()[0].weights.dim(), (6, 8));
        for row in [&[0u32, 2, 5][..], &[1], &[]] {
            let expected = (a.logits(row) + b.logits(row)) * 0.5;
            for (x, y) in joint.logits(row).iter().zip(expected.iter()) {
                assert!((x - y).abs() < 1e-5, "{x} vs {y}");
            }
        }
        let other = Mlp::glorot(7, &[3, 2], 3, &mut ChaCha8Rng::seed_from_u64(9));
        assert!(Mlp::average_logits(&[a, other]).is_none());
    }

    #[test]
    fn glorot_draws_within_limits_with_zero_bias() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let model = Mlp::glorot(100, &[20], 4, &mut rng);
        let limit0 = (6.0f32 / 120.0).sqrt();
        assert!(model.layers()[0].weights.iter().all(|w| w.abs() <= limit0));
        assert!(
            model.layers()[0]
                .weights
                .iter()
                .any(|w| w.abs() > limit0 * 0.9),
            "uses the whole range"
        );
        assert!(model
            .layers()
            .iter()
            .all(|l| l.bias.iter().all(|&b| b == 0.0)));
        assert_eq!(
            model,
            Mlp::glorot(100, &[20], 4, &mut ChaCha8Rng::seed_from_u64(1))
        );
        assert!(Mlp::from_layers(model.layers().to_vec()).is_ok());
    }

    #[test]
    fn batch_prediction_equals_row_prediction() {
        let model = tiny();
        let x = rows(&[&[0, 2, 5], &[], &[3, 9]]);
        let batch = model.predict_proba_batch(&x);
        for (r, row) in x.iter().enumerate() {
            let single = model.predict_proba(row);
            for (a, b) in batch.row(r).iter().zip(single.iter()) {
                assert!((a - b).abs() < 1e-6, "row {r}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn dropout_zeroes_and_rescales_hidden_units() {
        let model = tiny();
        let x = rows(&[&[0u32, 1, 2, 3, 4, 5][..]; 64]);
        let ids: Vec<usize> = (0..64).collect();
        let mut plain = BatchBuffers::new(&model, 64);
        model.forward_batch(&x, &ids, &mut plain, None);
        let mut dropped = BatchBuffers::new(&model, 64);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        model.forward_batch(&x, &ids, &mut dropped, Some((0.5, &mut rng)));
        let (mut kept, mut active) = (0, 0);
        for (a, d) in plain.outputs[0].iter().zip(dropped.outputs[0].iter()) {
            if *a > 0.0 {
                active += 1;
                if *d != 0.0 {
                    kept += 1;
                    assert!(
                        (d - 2.0 * a).abs() < 1e-6,
                        "kept units are scaled by 1 / (1 - rate)"
                    );
                }
            }
        }
        // About half of the active units survive (binomial, n >= 64: well within 35%-65%).
        assert!(
            active >= 64 && kept * 100 > active * 35 && kept * 100 < active * 65,
            "{kept}/{active}"
        );
    }
}
