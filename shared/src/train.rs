//! Mini-batch training of the [`Mlp`]: binary cross-entropy on logits, Adam, optional dropout,
//! early stopping on validation loss with the best weights restored.
//!
//! Speed comes from the shape of the data: a binary bag-of-words row touches a few dozen of the
//! first layer's thousands of weight rows, so the forward pass gathers those rows, the backward
//! pass scatters into them only, and Adam updates them lazily (see [`SparseAdam`]). The hidden and
//! output layers run as dense matrix products over the whole batch.
//!
//! Determinism: the initial weights, the shuffle and the dropout masks come from three
//! `ChaCha8Rng` streams of `TrainConfig::seed`, and every sum runs in a fixed order, so the same
//! data, config and seed give bit-identical weights on any machine and thread count.

use std::time::Instant;

use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{BatchBuffers, Gradients, Mlp};
use crate::sparse::SparseRows;
use crate::thresholds::best_global;

/// Training hyperparameters. [`TrainConfig::default`] is the quality/speed-tuned preset;
/// [`TrainConfig::origin`] reproduces the talk's Keras model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Widths of the ReLU hidden layers (empty = logistic regression on the bag of words).
    pub hidden: Vec<usize>,
    /// Maximum passes over the training rows.
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f32,
    pub beta1: f32,
    pub beta2: f32,
    /// Adam's epsilon, added to `sqrt(v)` as Keras does (not to the bias-corrected `v`).
    pub epsilon: f32,
    /// Fraction of hidden units dropped in training (inverted dropout); 0 = off.
    pub dropout: f32,
    /// Stop after this many epochs without a lower validation loss and restore the best
    /// weights (0 = off; needs validation rows).
    pub early_stopping_patience: usize,
    pub seed: u64,
}

impl Default for TrainConfig {
    /// The project's default, tuned on the cooking and so-titles data sets (see
    /// `shared/examples/tune.rs`): one hidden layer of 128 units, Adam at 4e-3, batch 128,
    /// dropout 0.5, up to 12 epochs with early stopping after 2 epochs without improvement.
    fn default() -> Self {
        TrainConfig {
            hidden: vec![128],
            epochs: 12,
            batch_size: 128,
            learning_rate: 4e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            dropout: 0.5,
            early_stopping_patience: 2,
            seed: 22,
        }
    }
}

impl TrainConfig {
    /// The origin talk's model: `Dense(50, relu) -> Dense(25, relu) -> Dense(n, sigmoid)`,
    /// 3 epochs, batch 128, Keras Adam defaults, no dropout, no early stopping.
    pub fn origin() -> Self {
        TrainConfig {
            hidden: vec![50, 25],
            epochs: 3,
            batch_size: 128,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            dropout: 0.0,
            early_stopping_patience: 0,
            seed: 22,
        }
    }

    /// Rejects settings that cannot train: zero sizes, non-finite or out-of-range rates.
    pub fn validate(&self) -> Result<()> {
        if let Some(pos) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config("hidden", format!("layer {pos} has 0 units in {:?}", self.hidden)));
        }
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1, got 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1, got 0"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(
                "learning_rate",
                format!("must be a finite number > 0, got {}", self.learning_rate),
            ));
        }
        for (field, value) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&value) {
                return Err(Error::config(field, format!("must be in [0, 1), got {value}")));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config("epsilon", format!("must be a finite number > 0, got {}", self.epsilon)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", format!("must be in [0, 1), got {}", self.dropout)));
        }
        Ok(())
    }
}

/// One line of the training history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean binary cross-entropy over the epoch's batches (with dropout active), as Keras reports.
    pub train_loss: f32,
    pub val_loss: Option<f32>,
    /// Micro-F1 on the validation rows at their own F1-tuned global threshold.
    pub val_micro_f1: Option<f32>,
    /// Wall time of the epoch, validation included.
    pub seconds: f64,
}

#[derive(Clone, Debug)]
pub struct TrainResult {
    /// The weights of `best_epoch`.
    pub model: Mlp,
    pub history: Vec<EpochStats>,
    /// 1-based epoch whose weights `model` holds (the last one without early stopping).
    pub best_epoch: usize,
}

/// Trains a fresh network on binary bag-of-words rows `x` (feature indices `< n_features`)
/// against label rows `y` (label indices `< n_labels`).
///
/// `validation` rows drive early stopping and the validation columns of the history;
/// `on_epoch` sees each epoch's stats as soon as they exist (progress bars, logs).
pub fn fit(
    x: &SparseRows,
    y: &SparseRows,
    n_features: usize,
    n_labels: usize,
    cfg: &TrainConfig,
    validation: Option<(&SparseRows, &SparseRows)>,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<TrainResult> {
    cfg.validate()?;
    check_rows("training", x, y, n_features, n_labels)?;
    if let Some((vx, vy)) = validation {
        check_rows("validation", vx, vy, n_features, n_labels)?;
    }

    let mut init_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    shuffle_rng.set_stream(1);
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    dropout_rng.set_stream(2);

    let mut model = Mlp::glorot(n_features, &cfg.hidden, n_labels, &mut init_rng);
    let batch = cfg.batch_size.min(x.len());
    let steps_per_epoch = x.len().div_ceil(batch);
    let mut adam = SparseAdam::new(&model, cfg, steps_per_epoch * cfg.epochs);
    let mut buffers = BatchBuffers::new(&model, batch);
    let mut grads = Gradients::new(&model);
    let mut order: Vec<usize> = (0..x.len()).collect();

    let mut history = Vec::with_capacity(cfg.epochs);
    let mut best: Option<(f32, usize, Mlp)> = None;
    let mut since_best = 0;
    let early_stopping = cfg.early_stopping_patience > 0 && validation.is_some();
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        order.shuffle(&mut shuffle_rng);
        let mut loss_sum = 0.0f64;
        for ids in order.chunks(batch) {
            let dropout = (cfg.dropout > 0.0).then_some((cfg.dropout, &mut dropout_rng));
            model.forward_batch(x, ids, &mut buffers, dropout);
            loss_sum += model.backward_batch(x, y, ids, &mut buffers, &mut grads);
            adam.step(&mut model, &grads);
        }
        adam.catch_up(&mut model);
        let train_loss = (loss_sum / (x.len() * n_labels) as f64) as f32;
        if !train_loss.is_finite() {
            return Err(Error::Training(format!(
                "loss became {train_loss} in epoch {epoch}: lower learning_rate ({})",
                cfg.learning_rate
            )));
        }
        let (val_loss, val_micro_f1) = match validation {
            Some((vx, vy)) => {
                let (loss, f1) = validation_scores(&model, vx, vy);
                (Some(loss), Some(f1))
            }
            None => (None, None),
        };
        let stats = EpochStats { epoch, train_loss, val_loss, val_micro_f1, seconds: started.elapsed().as_secs_f64() };
        on_epoch(&stats);
        history.push(stats);

        if let (true, Some(loss)) = (early_stopping, val_loss) {
            if best.as_ref().is_none_or(|(best_loss, _, _)| loss < *best_loss) {
                best = Some((loss, epoch, model.clone()));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= cfg.early_stopping_patience {
                    break;
                }
            }
        }
    }
    let (model, best_epoch) = match best {
        Some((_, epoch, best_model)) => (best_model, epoch),
        None => (model, history.len()),
    };
    Ok(TrainResult { model, history, best_epoch })
}

fn check_rows(what: &'static str, x: &SparseRows, y: &SparseRows, n_features: usize, n_labels: usize) -> Result<()> {
    if x.is_empty() {
        return Err(Error::Training(format!("no {what} rows")));
    }
    if x.len() != y.len() {
        return Err(Error::Shape {
            what: if what == "training" { "training labels" } else { "validation labels" },
            expected: format!("{} label rows (one per feature row)", x.len()),
            found: y.len().to_string(),
        });
    }
    if n_features == 0 || n_labels == 0 {
        return Err(Error::Training(format!(
            "need at least one feature and one label, got {n_features} features and {n_labels} labels"
        )));
    }
    if x.min_dim() > n_features {
        return Err(Error::Shape {
            what: "feature indices",
            expected: format!("indices below n_features = {n_features} in the {what} rows"),
            found: format!("index {}", x.min_dim() - 1),
        });
    }
    if y.min_dim() > n_labels {
        return Err(Error::Shape {
            what: "label indices",
            expected: format!("indices below n_labels = {n_labels} in the {what} rows"),
            found: format!("index {}", y.min_dim() - 1),
        });
    }
    Ok(())
}

/// Mean validation BCE and micro-F1 at the validation rows' own F1-tuned global threshold.
fn validation_scores(model: &Mlp, x: &SparseRows, y: &SparseRows) -> (f32, f32) {
    let logits = model.logits_batch(x);
    let mut loss = 0.0f64;
    for (i, row) in logits.outer_iter().enumerate() {
        let mut row_loss: f32 = row.iter().map(|&z| crate::model::bce_with_logits(z, 0.0)).sum();
        for &t in y.row(i) {
            row_loss -= row[t as usize];
        }
        loss += f64::from(row_loss);
    }
    let loss = (loss / logits.len() as f64) as f32;
    let probs = logits.mapv(crate::model::sigmoid);
    let (_, f1) = best_global(&probs, y);
    (loss, f1 as f32)
}

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
    /// `alpha(t) = lr * sqrt(1 - b2^t) / (1 - b1^t)` for `t` = 0..=planned steps (+ growth).
    alpha: Vec<f32>,
    m: Vec<Array2<f32>>,
    v: Vec<Array2<f32>>,
    mb: Vec<Array1<f32>>,
    vb: Vec<Array1<f32>>,
    /// Step at which each first-layer row's `m`, `v` and weights are current (0 = never touched).
    row_step: Vec<u32>,
}

/// Idle momentum terms below `b1^j < 1e-9` are dropped from the catch-up sum.
const CATCH_UP_EPS: f64 = 1e-9;

impl SparseAdam {
    pub fn new(model: &Mlp, cfg: &TrainConfig, planned_steps: usize) -> Self {
        let mut me = SparseAdam {
            lr: cfg.learning_rate,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            epsilon: cfg.epsilon,
            t: 0,
            alpha: vec![0.0],
            m: model.layers.iter().map(|l| Array2::zeros(l.weights.dim())).collect(),
            v: model.layers.iter().map(|l| Array2::zeros(l.weights.dim())).collect(),
            mb: model.layers.iter().map(|l| Array1::zeros(l.bias.len())).collect(),
            vb: model.layers.iter().map(|l| Array1::zeros(l.bias.len())).collect(),
            row_step: vec![0; model.n_inputs()],
        };
        me.extend_alpha(planned_steps);
        me
    }

    fn extend_alpha(&mut self, up_to: usize) {
        while self.alpha.len() <= up_to {
            let t = self.alpha.len() as i32;
            let (b1, b2) = (f64::from(self.beta1), f64::from(self.beta2));
            let a = f64::from(self.lr) * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            self.alpha.push(a as f32);
        }
    }

    /// One Adam step with the batch gradients.
    pub fn step(&mut self, model: &mut Mlp, grads: &Gradients) {
        self.t += 1;
        let t = self.t;
        self.extend_alpha(t as usize);
        let alpha = self.alpha[t as usize];
        let (b1, b2, eps) = (self.beta1, self.beta2, self.epsilon);
        let (c1, c2) = (1.0 - b1, 1.0 - b2);
        let update = |w: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            *m += (g - *m) * c1;
            *v += (g * g - *v) * c2;
            *w -= alpha * *m / (v.sqrt() + eps);
        };

        for (l, layer) in model.layers.iter_mut().enumerate() {
            ndarray::Zip::from(&mut layer.bias)
                .and(&mut self.mb[l])
                .and(&mut self.vb[l])
                .and(&grads.bias[l])
                .for_each(|w, m, v, &g| update(w, m, v, g));
            if l > 0 {
                ndarray::Zip::from(&mut layer.weights)
                    .and(&mut self.m[l])
                    .and(&mut self.v[l])
                    .and(&grads.weights[l])
                    .for_each(|w, m, v, &g| update(w, m, v, g));
            }
        }

        let width = model.layers[0].weights.ncols();
        for (k, &row) in grads.touched.iter().enumerate() {
            let row = row as usize;
            let idle = t - 1 - self.row_step[row];
            self.catch_up_row(model, row, idle);
            self.row_step[row] = t;
            let g = grads.first_row(k, width);
            let mut w = model.layers[0].weights.row_mut(row);
            let mut m = self.m[0].row_mut(row);
            let mut v = self.v[0].row_mut(row);
            ndarray::Zip::from(&mut w)
                .and(&mut m)
                .and(&mut v)
                .and(&ndarray::ArrayView1::from(g))
                .for_each(|w, m, v, &g| update(w, m, v, g));
        }
    }

    /// Brings every first-layer row up to the current step (call before reading the weights).
    pub fn catch_up(&mut self, model: &mut Mlp) {
        for row in 0..self.row_step.len() {
            if self.row_step[row] > 0 {
                let idle = self.t - self.row_step[row];
                self.catch_up_row(model, row, idle);
                self.row_step[row] = self.t;
            }
        }
    }

    /// Applies `idle` gradient-free Adam steps to first-layer `row`, current as of `row_step[row]`.
    fn catch_up_row(&mut self, model: &mut Mlp, row: usize, idle: u32) {
        let t0 = self.row_step[row];
        if idle == 0 || t0 == 0 {
            // Never touched: m = v = 0, so idle steps do not move it.
            return;
        }
        let (b1, b2) = (f64::from(self.beta1), f64::from(self.beta2));
        let mut coef = 0.0f64;
        let mut b1j = 1.0f64;
        for j in 1..=idle {
            b1j *= b1;
            if b1j < CATCH_UP_EPS {
                break;
            }
            coef += f64::from(self.alpha[(t0 + j) as usize]) * b1j;
        }
        let coef = coef as f32;
        let m_decay = b1.powi(idle as i32) as f32;
        let v_decay = b2.powi(idle as i32) as f32;
        let eps = self.epsilon;
        let mut w = model.layers[0].weights.row_mut(row);
        let mut m = self.m[0].row_mut(row);
        let mut v = self.v[0].row_mut(row);
        ndarray::Zip::from(&mut w).and(&mut m).and(&mut v).for_each(|w, m, v| {
            *w -= coef * *m / (v.sqrt() + eps);
            *m *= m_decay;
            *v *= v_decay;
        });
    }
}
