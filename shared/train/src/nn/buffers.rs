//! The reusable buffers a batched pass works in (sized once, grown on demand).

use ndarray::{Array1, Array2};
use tagger_core::model::Mlp;

use super::kernels::SparseBatch;

/// Per-layer buffers for batched passes, sized once for the largest batch and reused.
#[derive(Debug)]
pub struct BatchBuffers {
    /// Each layer's output: activations (after ReLU/dropout) for hidden layers, logits for the last.
    pub outputs: Vec<Array2<f32>>,
    /// Gradient of the mean loss with respect to each layer's pre-activation.
    pub deltas: Vec<Array2<f32>>,
    /// The factor kept hidden units were multiplied by in the last forward pass (1 without dropout).
    pub keep_scale: f32,
    /// Random draws for the dropout masks.
    pub(super) noise: Vec<u16>,
    /// The active (positive) units of each hidden layer's output in the last forward pass.
    pub(super) active: Vec<SparseBatch>,
    /// Scratch: a hidden layer's active units by unit instead of by row.
    pub(super) active_t: SparseBatch,
    /// The activity penalty the backward pass adds ([`crate::train::TrainConfig::activity_l1`]).
    pub activity_l1: f32,
}

impl BatchBuffers {
    pub fn new(model: &Mlp, rows: usize) -> Self {
        let mut me = BatchBuffers {
            outputs: Vec::new(),
            deltas: Vec::new(),
            keep_scale: 1.0,
            noise: Vec::new(),
            active: Vec::new(),
            active_t: SparseBatch::default(),
            activity_l1: 0.0,
        };
        me.ensure(model, rows);
        me
    }

    pub(super) fn ensure(&mut self, model: &Mlp, rows: usize) {
        let fits = self.outputs.len() == model.layers().len()
            && self
                .outputs
                .iter()
                .zip(model.layers())
                .all(|(o, l)| o.nrows() >= rows && o.ncols() == l.weights.ncols());
        if !fits {
            self.outputs = model
                .layers()
                .iter()
                .map(|l| Array2::zeros((rows, l.weights.ncols())))
                .collect();
            self.deltas = self.outputs.clone();
            self.active = vec![SparseBatch::default(); model.layers().len().saturating_sub(1)];
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
    pub(super) slot: Vec<u32>,
}

impl Gradients {
    pub fn new(model: &Mlp) -> Self {
        let mut g = Gradients::default();
        g.ensure(model);
        g
    }

    pub(super) fn ensure(&mut self, model: &Mlp) {
        if self.bias.len() == model.layers().len() && self.slot.len() == model.n_inputs() {
            return;
        }
        self.slot = vec![u32::MAX; model.n_inputs()];
        self.bias = zero_biases(model);
        self.weights = zero_weights_past_first(model);
        self.touched.clear();
    }

    /// The first-layer gradient row of `touched[k]`.
    pub fn first_row(&self, k: usize, width: usize) -> &[f32] {
        &self.first[k * width..(k + 1) * width]
    }
}

/// Zeros shaped like each layer's bias: per-layer state of the optimiser and the gradients.
pub(crate) fn zero_biases(model: &Mlp) -> Vec<Array1<f32>> {
    model
        .layers()
        .iter()
        .map(|l| Array1::zeros(l.bias.len()))
        .collect()
}

/// Zeros shaped like each layer's weights, except the first layer's (kept empty: its state is
/// per touched row, held elsewhere).
pub(crate) fn zero_weights_past_first(model: &Mlp) -> Vec<Array2<f32>> {
    model
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                Array2::zeros((0, 0))
            } else {
                Array2::zeros(l.weights.dim())
            }
        })
        .collect()
}
