//! Adam with lazy first-layer updates: the optimiser behind [`super::fit`].

use ndarray::{Array1, Array2};
use pulp::Arch;
use tagger_core::model::Mlp;

use super::TrainConfig;
use crate::nn::{simd, zero_biases, zero_weights_past_first, Gradients};

/// Adam (Keras 3's formulation) with a lazy first layer.
///
/// Dense layers: `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`,
/// `w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)` at step `t` (1-based).
///
/// First layer: only rows with a gradient in the batch are touched. A row idle since step `t0`
/// would, under dense Adam, have kept moving on its decaying momentum at every step in between
/// (gradient 0: `m` shrinks by `b1`, `v` by `b2` per step). When the row is next touched (or at
/// the end of each epoch), [`SparseAdam`] applies those `k` idle steps at once:
/// `m *= b1^k`, `v *= b2^k` exactly, and the weight moves by
/// `sum_j alpha(t0 + j) * b1^j * m / (sqrt(v) + eps)`. Dense Adam's denominator at idle step `j`
/// is `sqrt(v) * b2^(j/2) + eps`; using `sqrt(v) + eps` instead shortens those idle moves by
/// at most `1 - b2^(j/2)`, under 3.5 % for the steps that carry 99.9 % of the momentum
/// (`b1^j >= 1e-3`, `j <= 66`), and the sum is truncated once `b1^j < 1e-9`. So training follows
/// dense Keras Adam closely (see the `sparse_adam_tracks_dense_adam` test) at the cost of the
/// touched rows only, instead of `vocabulary x hidden` per step.
#[derive(Debug)]
pub struct SparseAdam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    /// Steps taken so far.
    t: u32,
    /// Per-epoch step-size schedule: steps `(e - 1) * steps_per_epoch + 1 ..= e * steps_per_epoch`
    /// run at `lr * lr_decay^(e - 1)`.
    steps_per_epoch: usize,
    lr_decay: f64,
    /// Update every first-layer row at every step (Keras' dense Adam) instead of lazily.
    dense_first: bool,
    /// `alpha[t] = lr * sqrt(1 - b2^t) / (1 - b1^t)`, the step size at step `t` (index 0 unused).
    alpha: Vec<f64>,
    /// `momentum[s] = sum_{j=1..window} alpha[s + j] * b1^j`: the weight an idle row still
    /// moves, per unit of `m / (sqrt(v) + eps)`, over all idle steps after step `s`.
    momentum: Vec<f64>,
    /// Terms with `b1^j < 1e-9` are left out of `momentum`.
    window: usize,
    /// Moments of layers after the first (index 0 unused).
    m: Vec<Array2<f32>>,
    v: Vec<Array2<f32>>,
    /// First-layer moments, row-major like its weights.
    m0: Vec<f32>,
    v0: Vec<f32>,
    mb: Vec<Array1<f32>>,
    vb: Vec<Array1<f32>>,
    /// Step at which each first-layer row's `m`, `v` and weights are current (0 = never touched).
    row_step: Vec<u32>,
}

impl SparseAdam {
    /// Adam for `model` with `cfg`'s rates; `steps_per_epoch` places the `lr_decay` schedule
    /// (and `planned_steps` sizes the step-size tables, which grow on demand).
    pub fn new(
        model: &Mlp,
        cfg: &TrainConfig,
        steps_per_epoch: usize,
        planned_steps: usize,
    ) -> Self {
        let b1 = f64::from(cfg.beta1);
        let window = if b1 > 0.0 {
            (1e-9f64.ln() / b1.ln()).ceil().max(1.0) as usize
        } else {
            1
        };
        let first = model.layers()[0].weights.len();
        let mut me = SparseAdam {
            lr: cfg.learning_rate,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            epsilon: cfg.epsilon,
            t: 0,
            steps_per_epoch: steps_per_epoch.max(1),
            lr_decay: f64::from(cfg.lr_decay),
            dense_first: !cfg.sparse_adam,
            alpha: vec![0.0],
            momentum: Vec::new(),
            window,
            m: zero_weights_past_first(model),
            v: Vec::new(),
            m0: vec![0.0; first],
            v0: vec![0.0; first],
            mb: zero_biases(model),
            vb: zero_biases(model),
            row_step: vec![0; model.n_inputs()],
        };
        me.v = me.m.clone();
        me.extend_tables(planned_steps);
        me
    }

    /// Makes `momentum[s]` (and the `alpha` values it needs) available for `s <= up_to`.
    fn extend_tables(&mut self, up_to: usize) {
        let (b1, b2, lr) = (
            f64::from(self.beta1),
            f64::from(self.beta2),
            f64::from(self.lr),
        );
        while self.alpha.len() <= up_to + self.window {
            let t = self.alpha.len();
            let epoch = ((t - 1) / self.steps_per_epoch) as i32;
            let lr_t = lr * self.lr_decay.powi(epoch);
            let t = t as i32;
            self.alpha
                .push(lr_t * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t)));
        }
        while self.momentum.len() <= up_to {
            let s = self.momentum.len();
            let mut sum = 0.0;
            let mut b1j = 1.0;
            for j in 1..=self.window {
                b1j *= b1;
                sum += self.alpha[s + j] * b1j;
            }
            self.momentum.push(sum);
        }
    }

    /// One Adam step with the batch gradients.
    pub fn step(&mut self, model: &mut Mlp, grads: &Gradients) {
        self.t += 1;
        let t = self.t;
        self.extend_tables(t as usize);
        let alpha = self.alpha[t as usize] as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.epsilon);
        let (c1, c2) = (1.0 - b1, 1.0 - b2);
        let update = Update { alpha, c1, c2, eps };

        let arch = Arch::new();
        for (l, layer) in model.layers_mut().iter_mut().enumerate() {
            dense_update(
                arch,
                &mut layer.bias,
                &mut self.mb[l],
                &mut self.vb[l],
                &grads.bias[l],
                update,
            );
            if l > 0 {
                dense_update(
                    arch,
                    &mut layer.weights,
                    &mut self.m[l],
                    &mut self.v[l],
                    &grads.weights[l],
                    update,
                );
            }
        }

        let width = model.layers()[0].weights.ncols();
        let weights = first_layer_slice(model);
        simd!(arch, 'a, |
            adam: &'a mut SparseAdam = self;
            weights: &'a mut [f32] = weights;
            grads: &'a Gradients = grads;
            width: usize = width;
            t: u32 = t;
            update: Update = update;
        | -> () {
            for (k, &row) in grads.touched.iter().enumerate() {
                let row = row as usize;
                let span = row * width..(row + 1) * width;
                let g = grads.first_row(k, width);
                let t0 = adam.row_step[row];
                adam.row_step[row] = t;
                let idle = t - 1 - t0;
                let factors = (t0 > 0 && idle > 0).then(|| adam.idle_factors(t0, idle));
                let (w, m, v) = (
                    &mut weights[span.clone()],
                    &mut adam.m0[span.clone()],
                    &mut adam.v0[span],
                );
                if let Some((coef, m_decay, v_decay)) = factors {
                    let cells = w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g);
                    for (((w, m), v), &g) in cells {
                        *w -= coef * *m / (v.sqrt() + update.eps);
                        *m *= m_decay;
                        *v *= v_decay;
                        update.apply(w, m, v, g);
                    }
                } else {
                    let cells = w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g);
                    for (((w, m), v), &g) in cells {
                        update.apply(w, m, v, g);
                    }
                }
            }
        });
        if self.dense_first {
            // Keras' dense Adam: every row with momentum moves at every step, gradient 0 for
            // the rows this batch did not touch (rows never touched have m = 0 and stay put).
            for (row, step) in self.row_step.iter_mut().enumerate() {
                if *step == 0 || *step == t {
                    continue;
                }
                *step = t;
                let span = row * width..(row + 1) * width;
                let (w, m, v) = (
                    &mut weights[span.clone()],
                    &mut self.m0[span.clone()],
                    &mut self.v0[span],
                );
                for ((w, m), v) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    update.apply(w, m, v, 0.0);
                }
            }
        }
    }

    /// For a row current as of step `t0` that sat out the next `idle` steps: how far its
    /// momentum moved it (per unit of `m / (sqrt(v) + eps)`), and the decay of `m` and `v`.
    fn idle_factors(&self, t0: u32, idle: u32) -> (f32, f32, f32) {
        let b1k = f64::from(self.beta1).powi(idle as i32);
        // sum_{j=1..idle} alpha[t0+j] b1^j = momentum[t0] - b1^idle * momentum[t0+idle]
        // (up to the terms beyond the window, below 1e-9 of the total).
        let coef = self.momentum[t0 as usize] - b1k * self.momentum[(t0 + idle) as usize];
        (
            coef as f32,
            b1k as f32,
            f64::from(self.beta2).powi(idle as i32) as f32,
        )
    }

    /// Brings every first-layer row up to the current step (call before reading the weights).
    pub fn catch_up(&mut self, model: &mut Mlp) {
        let width = model.layers()[0].weights.ncols();
        let eps = self.epsilon;
        let weights = first_layer_slice(model);
        simd!(Arch::new(), 'a, |
            adam: &'a mut SparseAdam = self;
            weights: &'a mut [f32] = weights;
            width: usize = width;
            eps: f32 = eps;
        | -> () {
            for row in 0..adam.row_step.len() {
                let t0 = adam.row_step[row];
                // Never-touched rows have m = v = 0: idle steps do not move them.
                if t0 == 0 || t0 == adam.t {
                    continue;
                }
                let (coef, m_decay, v_decay) = adam.idle_factors(t0, adam.t - t0);
                let span = row * width..(row + 1) * width;
                let (w, m, v) = (
                    &mut weights[span.clone()],
                    &mut adam.m0[span.clone()],
                    &mut adam.v0[span],
                );
                for ((w, m), v) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                    *w -= coef * *m / (v.sqrt() + eps);
                    *m *= m_decay;
                    *v *= v_decay;
                }
                adam.row_step[row] = adam.t;
            }
        });
    }
}

/// One Adam update of a weight `w` with moments `m`, `v` and gradient `g`:
/// `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`, `w -= alpha m / (sqrt(v) + eps)`.
#[derive(Clone, Copy)]
struct Update {
    alpha: f32,
    c1: f32,
    c2: f32,
    eps: f32,
}

impl Update {
    #[inline(always)]
    fn apply(self, w: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        *m += (g - *m) * self.c1;
        *v += (g * g - *v) * self.c2;
        *w -= self.alpha * *m / (v.sqrt() + self.eps);
    }
}

/// `update` over equal-shaped arrays, at the CPU's widest SIMD when all four are contiguous.
fn dense_update<D: ndarray::Dimension>(
    arch: Arch,
    w: &mut ndarray::Array<f32, D>,
    m: &mut ndarray::Array<f32, D>,
    v: &mut ndarray::Array<f32, D>,
    g: &ndarray::Array<f32, D>,
    update: Update,
) {
    if let (Some(w), Some(m), Some(v), Some(g)) = (
        w.as_slice_mut(),
        m.as_slice_mut(),
        v.as_slice_mut(),
        g.as_slice(),
    ) {
        simd!(arch, 'a, |
            w: &'a mut [f32] = w;
            m: &'a mut [f32] = m;
            v: &'a mut [f32] = v;
            g: &'a [f32] = g;
            update: Update = update;
        | -> () {
            for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                update.apply(w, m, v, g);
            }
        });
        return;
    }
    ndarray::Zip::from(w)
        .and(m)
        .and(v)
        .and(g)
        .for_each(|w, m, v, &g| update.apply(w, m, v, g));
}

/// The first layer's weights as one row-major slice (converting a non-standard layout once).
fn first_layer_slice(model: &mut Mlp) -> &mut [f32] {
    let w = &mut model.layers_mut()[0].weights;
    if !w.is_standard_layout() {
        *w = w.as_standard_layout().into_owned();
    }
    w.as_slice_mut()
        .expect("a standard-layout array is contiguous")
}
