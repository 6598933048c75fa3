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

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::calibrate::best_global;
use crate::error::{Error, Result};
use crate::nn::{BatchBuffers, Gradients, Training};
use crate::teacher::SoftTargets;
use tagger_core::model::Mlp;
use tagger_core::sparse::SparseRows;

mod adam;
mod init;
pub use adam::SparseAdam;
pub use init::{FirstLayerInit, Projection, WordVectors};

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
    /// Lazy Adam on the first layer (see [`SparseAdam`]): only the rows a batch touches are
    /// updated, idle momentum is caught up in O(1). `false` runs Keras' dense Adam there
    /// (every row moves on its momentum at every step): exact, but `vocabulary x hidden` work
    /// per step, so only for small vocabularies such as the origin's 400 words.
    #[serde(default = "yes")]
    pub sparse_adam: bool,
    /// Step size multiplier per epoch (epoch `e`, 1-based, trains at
    /// `learning_rate * lr_decay^(e - 1)`); 1 = constant.
    #[serde(default = "one")]
    pub lr_decay: f32,
    /// Class balance of the loss: the positive term of a tag with `n` training positives weighs
    /// `max(1, (mean / n)^class_balance)`, `mean` being the mean positives per tag, so rare
    /// tags are not drowned by their negatives. 0 = plain binary cross-entropy.
    #[serde(default)]
    pub class_balance: f32,
    /// Knowledge distillation: how much a labelled row's target is the teacher's probabilities
    /// rather than its tags (`(1 - distill) * tags + distill * teacher`; see [`crate::teacher`]).
    /// 0 = off; only used when training is given a teacher. Not combined with `class_balance`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub distill: f32,
    /// Tags on fewer training rows than this get no output unit while training; the finished
    /// model answers their training frequency, so they are never predicted. 1 = every tag
    /// trains. Left out of the settings when 1, so the version ids of runs without it stay.
    #[serde(default = "one_row", skip_serializing_if = "is_one_row")]
    pub min_tag_rows: usize,
    /// Activity penalty: `activity_l1` times each row's sum of hidden activations (after
    /// dropout) is added to its loss, which holds units at zero unless they help (a sparser
    /// hidden layer: less work per row, and a regulariser). 0 = off. Left out of the settings
    /// when 0, so the version ids of runs without it stay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub activity_l1: f32,
}

fn one_row() -> usize {
    1
}

fn is_one_row(v: &usize) -> bool {
    *v == 1
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

fn yes() -> bool {
    true
}

fn one() -> f32 {
    1.0
}

impl Default for TrainConfig {
    /// The project's default, tuned on the cooking and so-titles data sets with
    /// `shared/examples/tune.rs`: one hidden layer of 256 units (the output layer,
    /// `hidden x tags`, dominates the cost on cooking's 735 tags, and 384-512 units gained at
    /// most ~0.005 P@1 there for 1.5-2x the time), dropout 0.5, batch 64, Adam at 8e-3 decayed
    /// by 0.85 per epoch, up to 20 epochs with early stopping after 1 epoch without a lower
    /// validation loss. The fast start with decay converges in about half the epochs of a
    /// constant 3e-3 (cooking's best epoch 6-7 instead of 11, so-titles 2 instead of 3) at
    /// +0.01 P@1 on cooking (seeds 22 and 23) and -0.006 on so-titles; a constant 8e-3
    /// overshoots on some seeds (cooking seed 23: best epoch 4, P@1 0.679).
    fn default() -> Self {
        TrainConfig {
            hidden: vec![256],
            epochs: 20,
            batch_size: 64,
            learning_rate: 8e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            dropout: 0.5,
            early_stopping_patience: 1,
            seed: 22,
            sparse_adam: true,
            lr_decay: 0.85,
            class_balance: 0.0,
            distill: 0.0,
            min_tag_rows: 1,
            activity_l1: 0.0,
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
            // The Keras reference run's seed (../shared/golden/shap/README.md). After 3 epochs the
            // origin's metrics swing by about ±0.03 between seeds (P@1 0.41-0.48 over 8 seeds).
            seed: 42,
            sparse_adam: false,
            lr_decay: 1.0,
            class_balance: 0.0,
            distill: 0.0,
            min_tag_rows: 1,
            activity_l1: 0.0,
        }
    }

    /// Rejects settings that cannot train: zero sizes, non-finite or out-of-range rates.
    pub fn validate(&self) -> Result<()> {
        if let Some(pos) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "hidden",
                format!("layer {pos} has 0 units in {:?}", self.hidden),
            ));
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
                return Err(Error::config(
                    field,
                    format!("must be in [0, 1), got {value}"),
                ));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::config(
                "epsilon",
                format!("must be a finite number > 0, got {}", self.epsilon),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config(
                "dropout",
                format!("must be in [0, 1), got {}", self.dropout),
            ));
        }
        if !(self.class_balance.is_finite() && (0.0..=2.0).contains(&self.class_balance)) {
            return Err(Error::config(
                "class_balance",
                format!("must be in [0, 2], got {}", self.class_balance),
            ));
        }
        if !(self.distill.is_finite() && (0.0..=1.0).contains(&self.distill)) {
            return Err(Error::config(
                "distill",
                format!("must be in [0, 1], got {}", self.distill),
            ));
        }
        let max = crate::config::limits::MAX_MIN_TAG_ROWS;
        if !(1..=max).contains(&self.min_tag_rows) {
            return Err(Error::config(
                "min_tag_rows",
                format!("must be in [1, {max}], got {}", self.min_tag_rows),
            ));
        }
        let max = crate::config::limits::MAX_ACTIVITY_L1;
        if !(self.activity_l1.is_finite() && (0.0..=max).contains(&self.activity_l1)) {
            return Err(Error::config(
                "activity_l1",
                format!("must be in [0, {max}], got {}", self.activity_l1),
            ));
        }
        if self.distill > 0.0 && self.class_balance > 0.0 {
            return Err(Error::config(
                "distill",
                "cannot be combined with class_balance (the teacher's targets are not reweighted)",
            ));
        }
        if !(self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return Err(Error::config(
                "lr_decay",
                format!("must be in (0, 1], got {}", self.lr_decay),
            ));
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
    fit_observed(
        x,
        y,
        n_features,
        n_labels,
        cfg,
        validation,
        on_epoch,
        &mut |_, _| true,
    )
}

/// [`fit`], also showing the weights after each epoch to `after_epoch(epoch, model)` (1-based;
/// every first-layer row caught up), which returns whether to go on. Stopping after epoch `k`
/// gives the weights a run with `epochs: k` gives, bit for bit: nothing in an epoch depends on
/// how many follow.
#[allow(clippy::too_many_arguments)]
pub fn fit_observed(
    x: &SparseRows,
    y: &SparseRows,
    n_features: usize,
    n_labels: usize,
    cfg: &TrainConfig,
    validation: Option<(&SparseRows, &SparseRows)>,
    on_epoch: &mut dyn FnMut(&EpochStats),
    after_epoch: &mut dyn FnMut(usize, &Mlp) -> bool,
) -> Result<TrainResult> {
    fit_targets(
        x,
        y,
        None,
        None,
        n_features,
        n_labels,
        cfg,
        validation,
        on_epoch,
        after_epoch,
    )
}

/// [`fit_observed`] where rows may also learn from a teacher's probabilities (`soft`, one
/// entry per row of `x`; see [`crate::teacher`]), and the first layer may start from given
/// vectors (`init`, see [`FirstLayerInit`]).
#[allow(clippy::too_many_arguments)]
pub fn fit_targets(
    x: &SparseRows,
    y: &SparseRows,
    soft: Option<&SoftTargets>,
    init: Option<&FirstLayerInit>,
    n_features: usize,
    n_labels: usize,
    cfg: &TrainConfig,
    validation: Option<(&SparseRows, &SparseRows)>,
    on_epoch: &mut dyn FnMut(&EpochStats),
    after_epoch: &mut dyn FnMut(usize, &Mlp) -> bool,
) -> Result<TrainResult> {
    cfg.validate()?;
    check_rows("training", x, y, n_features, n_labels)?;
    if let Some(s) = soft {
        if s.len() != x.len() || s.weight.len() != x.len() {
            return Err(Error::Training(format!(
                "{} soft target rows for {} training rows",
                s.len(),
                x.len()
            )));
        }
        let bad = s
            .rows
            .iter()
            .flatten()
            .find(|&&(t, q)| t as usize >= n_labels || !(0.0..=1.0).contains(&q));
        if let Some((t, q)) = bad {
            return Err(Error::Training(format!(
                "soft target {q} for tag {t} of {n_labels}"
            )));
        }
    }
    if let Some((vx, vy)) = validation {
        check_rows("validation", vx, vy, n_features, n_labels)?;
    }

    let mut init_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut shuffle_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    shuffle_rng.set_stream(1);
    let mut dropout_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    dropout_rng.set_stream(2);

    let mut model = Mlp::glorot(n_features, &cfg.hidden, n_labels, &mut init_rng);
    if let Some(init) = init {
        // Its own stream: the Glorot start and everything after it stay as without `init`.
        let mut projection_rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        projection_rng.set_stream(3);
        init.apply(&mut model.layers_mut()[0].weights, &mut projection_rng)?;
    }
    let batch = cfg.batch_size.min(x.len());
    let steps_per_epoch = x.len().div_ceil(batch);
    let mut adam = SparseAdam::new(&model, cfg, steps_per_epoch, steps_per_epoch * cfg.epochs);
    let mut buffers = BatchBuffers::new(&model, batch);
    buffers.activity_l1 = cfg.activity_l1;
    let mut grads = Gradients::new(&model);
    let mut order: Vec<usize> = (0..x.len()).collect();
    let pos_weights = positive_weights(y, n_labels, cfg.class_balance);

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
            loss_sum += model.backward_batch_targets(
                x,
                y,
                soft,
                ids,
                &mut buffers,
                &mut grads,
                &pos_weights,
            );
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
        let stats = EpochStats {
            epoch,
            train_loss,
            val_loss,
            val_micro_f1,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&stats);
        history.push(stats);
        if !after_epoch(epoch, &model) {
            break;
        }

        if let (true, Some(loss)) = (early_stopping, val_loss) {
            if best
                .as_ref()
                .is_none_or(|(best_loss, _, _)| loss < *best_loss)
            {
                // Into the previous best's arrays: no fresh allocation per improvement.
                match &mut best {
                    Some((best_loss, best_epoch, best_model)) => {
                        (*best_loss, *best_epoch) = (loss, epoch);
                        best_model.clone_from(&model);
                    }
                    None => best = Some((loss, epoch, model.clone())),
                }
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
    Ok(TrainResult {
        model,
        history,
        best_epoch,
    })
}

/// Per-tag weights of the positive loss term ([`TrainConfig::class_balance`]); empty when off.
fn positive_weights(y: &SparseRows, n_labels: usize, power: f32) -> Vec<f32> {
    if power <= 0.0 {
        return Vec::new();
    }
    let mut counts = vec![0u64; n_labels];
    for i in 0..y.len() {
        for &t in y.row(i) {
            if let Some(c) = counts.get_mut(t as usize) {
                *c += 1;
            }
        }
    }
    let mean = counts.iter().sum::<u64>() as f64 / n_labels.max(1) as f64;
    counts
        .iter()
        .map(|&n| (mean / n.max(1) as f64).powf(f64::from(power)).max(1.0) as f32)
        .collect()
}

fn check_rows(
    what: &'static str,
    x: &SparseRows,
    y: &SparseRows,
    n_features: usize,
    n_labels: usize,
) -> Result<()> {
    if x.is_empty() {
        return Err(Error::Training(format!("no {what} rows")));
    }
    if x.len() != y.len() {
        return Err(tagger_core::Error::Shape {
            what: if what == "training" {
                "training labels"
            } else {
                "validation labels"
            },
            expected: format!("{} label rows (one per feature row)", x.len()),
            found: y.len().to_string(),
        }
        .into());
    }
    if n_features == 0 || n_labels == 0 {
        return Err(Error::Training(format!(
            "need at least one feature and one label, got {n_features} features and {n_labels} labels"
        )));
    }
    if x.min_dim() > n_features {
        return Err(tagger_core::Error::Shape {
            what: "feature indices",
            expected: format!("indices below n_features = {n_features} in the {what} rows"),
            found: format!("index {}", x.min_dim() - 1),
        }
        .into());
    }
    if y.min_dim() > n_labels {
        return Err(tagger_core::Error::Shape {
            what: "label indices",
            expected: format!("indices below n_labels = {n_labels} in the {what} rows"),
            found: format!("index {}", y.min_dim() - 1),
        }
        .into());
    }
    Ok(())
}

/// Mean validation BCE and micro-F1 at the validation rows' own F1-tuned global threshold.
fn validation_scores(model: &Mlp, x: &SparseRows, y: &SparseRows) -> (f32, f32) {
    let logits = model.logits_batch(x);
    let mut loss = 0.0f64;
    for (i, row) in logits.outer_iter().enumerate() {
        let mut row_loss: f32 = row
            .iter()
            .map(|&z| crate::nn::bce_with_logits(z, 0.0))
            .sum();
        for &t in y.row(i) {
            row_loss -= row[t as usize];
        }
        loss += f64::from(row_loss);
    }
    let loss = (loss / logits.len() as f64) as f32;
    let probs = logits.mapv(tagger_core::model::sigmoid);
    let (_, f1) = best_global(&probs, y);
    (loss, f1 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::evaluate;
    use ndarray::Array2;
    use rand::Rng;
    use tagger_core::thresholds::Thresholds;

    fn rows(r: &[Vec<u32>]) -> SparseRows {
        r.iter().map(Vec::as_slice).collect()
    }

    /// Rows of 3-6 random features out of 40; label k (k < 4) is present iff feature k is.
    fn learnable(n: usize, seed: u64) -> (SparseRows, SparseRows) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let k = rng.random_range(3..=6);
            let mut x: Vec<u32> = (0..k).map(|_| rng.random_range(0..40)).collect();
            x.sort_unstable();
            x.dedup();
            ys.push(x.iter().copied().filter(|&f| f < 4).collect());
            xs.push(x);
        }
        (rows(&xs), rows(&ys))
    }

    fn small_config() -> TrainConfig {
        TrainConfig {
            hidden: vec![16],
            epochs: 30,
            batch_size: 32,
            learning_rate: 0.01,
            lr_decay: 1.0,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn class_balance_weighs_rare_tags_positives_up_and_never_down() {
        // Tag counts 6, 2, 1, 0 over 4 tags: mean 2.25.
        let y = rows(&[
            vec![0, 1],
            vec![0, 1],
            vec![0, 2],
            vec![0],
            vec![0],
            vec![0],
        ]);
        assert!(positive_weights(&y, 4, 0.0).is_empty());
        let w = positive_weights(&y, 4, 1.0);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 1.125).abs() < 1e-6);
        assert!((w[2] - 2.25).abs() < 1e-6);
        assert!((w[3] - 2.25).abs() < 1e-6);
        let half = positive_weights(&y, 4, 0.5);
        assert!((half[2] - 1.5).abs() < 1e-6);
    }

    #[test]
    fn default_and_origin_configs_are_valid() {
        assert!(TrainConfig::default().validate().is_ok());
        let origin = TrainConfig::origin();
        assert!(origin.validate().is_ok());
        assert_eq!(
            (origin.hidden.as_slice(), origin.epochs, origin.batch_size),
            (&[50, 25][..], 3, 128)
        );
    }

    #[test]
    fn validate_rejects_unusable_settings() {
        let bad = |f: fn(&mut TrainConfig)| {
            let mut c = TrainConfig::default();
            f(&mut c);
            c.validate()
        };
        assert!(matches!(
            bad(|c| c.learning_rate = f32::NAN),
            Err(Error::InvalidConfig {
                field: "learning_rate",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.learning_rate = -0.1),
            Err(Error::InvalidConfig {
                field: "learning_rate",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.epochs = 0),
            Err(Error::InvalidConfig {
                field: "epochs",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.batch_size = 0),
            Err(Error::InvalidConfig {
                field: "batch_size",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.hidden = vec![64, 0]),
            Err(Error::InvalidConfig {
                field: "hidden",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.dropout = 1.0),
            Err(Error::InvalidConfig {
                field: "dropout",
                ..
            })
        ));
        assert!(matches!(
            bad(|c| c.beta2 = 1.0),
            Err(Error::InvalidConfig { field: "beta2", .. })
        ));
        assert!(matches!(
            bad(|c| c.epsilon = 0.0),
            Err(Error::InvalidConfig {
                field: "epsilon",
                ..
            })
        ));
    }

    #[test]
    fn fit_rejects_mismatched_or_out_of_range_rows() {
        let (x, y) = learnable(10, 1);
        let cfg = small_config();
        let short = rows(&[vec![0]]);
        assert!(matches!(
            fit(&x, &short, 40, 4, &cfg, None, &mut |_| {}),
            Err(Error::Core(tagger_core::Error::Shape { .. }))
        ));
        assert!(matches!(
            fit(&x, &y, 40, 2, &cfg, None, &mut |_| {}),
            Err(Error::Core(tagger_core::Error::Shape {
                what: "label indices",
                ..
            }))
        ));
        assert!(matches!(
            fit(&x, &y, 5, 4, &cfg, None, &mut |_| {}),
            Err(Error::Core(tagger_core::Error::Shape {
                what: "feature indices",
                ..
            }))
        ));
        assert!(matches!(
            fit(
                &SparseRows::new(),
                &SparseRows::new(),
                40,
                4,
                &cfg,
                None,
                &mut |_| {}
            ),
            Err(Error::Training(_))
        ));
    }

    #[test]
    fn adam_first_step_matches_keras_formula() {
        // Keras 3 Adam at step 1 (lr 1e-3, b1 0.9, b2 0.999, eps 1e-7), from weights 0:
        // alpha = lr * sqrt(1 - 0.999) / (1 - 0.9) = 3.16227766e-4, m = 0.1 g, v = 0.001 g^2,
        // w = -alpha * m / (sqrt(v) + eps).
        // g = 0.5:  m = 0.05, sqrt(v) = 0.0158113883 -> w = -9.99993675e-4.
        // g = 1e-6: m = 1e-7, sqrt(v) = 3.16227766e-8 -> w = -3.16227766e-11 / 1.316227766e-7
        //           = -2.40253073e-4 (eps dominates: Keras adds it to the uncorrected sqrt(v)).
        let (big, tiny) = (-9.99993675e-4f64 as f32, -2.40253073e-4f64 as f32);
        let cfg = TrainConfig {
            hidden: vec![2],
            learning_rate: 1e-3,
            ..TrainConfig::default()
        };
        let mut model = Mlp::glorot(3, &[2], 2, &mut ChaCha8Rng::seed_from_u64(0));
        for layer in model.layers_mut() {
            layer.weights.fill(0.0);
        }
        let mut grads = Gradients::new(&model);
        grads.weights[1].fill(0.5);
        grads.bias[1].fill(1e-6);
        grads.touched = vec![1];
        grads.first = vec![0.5, 1e-6];
        let mut adam = SparseAdam::new(&model, &cfg, 1, 1);
        adam.step(&mut model, &grads);
        // f32 arithmetic (1 - 0.9 is 0.100000024 in f32, as in Keras' float32) allows ~1e-5 relative.
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * b.abs();
        assert!(
            model.layers()[1].weights.iter().all(|&w| close(w, big)),
            "{:?}",
            model.layers()[1].weights
        );
        assert!(
            model.layers()[1].bias.iter().all(|&b| close(b, tiny)),
            "{:?}",
            model.layers()[1].bias
        );
        // The touched first-layer row takes the same steps; untouched rows and zero-gradient
        // biases stay put.
        assert!(
            close(model.layers()[0].weights[[1, 0]], big)
                && close(model.layers()[0].weights[[1, 1]], tiny)
        );
        assert_eq!(model.layers()[0].weights.row(0).to_vec(), vec![0.0, 0.0]);
        assert_eq!(model.layers()[0].bias.to_vec(), vec![0.0, 0.0]);
    }

    /// Dense Keras Adam in f64 on the first layer, as the reference for the lazy version.
    #[test]
    fn sparse_adam_tracks_dense_adam() {
        let cfg = TrainConfig {
            hidden: vec![3],
            learning_rate: 1e-2,
            lr_decay: 1.0,
            ..TrainConfig::default()
        };
        let mut model = Mlp::glorot(6, &[3], 2, &mut ChaCha8Rng::seed_from_u64(0));
        let start = model.layers()[0].weights.mapv(f64::from);
        let mut dense_w = start.clone();
        let mut dense_m = Array2::<f64>::zeros(dense_w.dim());
        let mut dense_v = Array2::<f64>::zeros(dense_w.dim());
        let mut adam = SparseAdam::new(&model, &cfg, 1, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-7f64, 1e-2f64);
        for t in 1..=300 {
            // Row r is touched with probability 1 / (r + 1): row 0 always, row 5 rarely.
            let mut grads = Gradients::new(&model);
            let mut g = Array2::<f64>::zeros(dense_w.dim());
            for r in 0..6u32 {
                if rng.random_range(0..=r) == 0 {
                    grads.touched.push(r);
                    for j in 0..3 {
                        let value: f32 = rng.random_range(-1.0..1.0) * 1e-3;
                        grads.first.push(value);
                        g[[r as usize, j]] = f64::from(value);
                    }
                }
            }
            adam.step(&mut model, &grads);
            let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            ndarray::Zip::from(&mut dense_w)
                .and(&mut dense_m)
                .and(&mut dense_v)
                .and(&g)
                .for_each(|w, m, v, &g| {
                    *m += (g - *m) * (1.0 - b1);
                    *v += (g * g - *v) * (1.0 - b2);
                    *w -= alpha * *m / (v.sqrt() + eps);
                });
        }
        adam.catch_up(&mut model);
        let sparse_w = model.layers()[0].weights.mapv(f64::from);
        // The lazy catch-up shortens idle momentum steps by under 3.5 % (see `SparseAdam`);
        // net moves mix signs, so compare against the largest move.
        let scale = (&dense_w - &start)
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        for r in 0..6 {
            for j in 0..3 {
                let dense_move = dense_w[[r, j]] - start[[r, j]];
                let sparse_move = sparse_w[[r, j]] - start[[r, j]];
                assert!(
                    (dense_move - sparse_move).abs() <= 0.035 * scale,
                    "row {r} col {j}: dense moved {dense_move}, sparse {sparse_move}"
                );
            }
        }
    }

    #[test]
    fn same_seed_gives_identical_weights_and_another_seed_does_not() {
        let (x, y) = learnable(200, 2);
        let cfg = TrainConfig {
            epochs: 3,
            ..small_config()
        };
        let a = fit(&x, &y, 40, 4, &cfg, None, &mut |_| {}).expect("fit");
        let b = fit(&x, &y, 40, 4, &cfg, None, &mut |_| {}).expect("fit");
        assert_eq!(a.model, b.model);
        assert_eq!(
            a.history.iter().map(|s| s.train_loss).collect::<Vec<_>>(),
            b.history.iter().map(|s| s.train_loss).collect::<Vec<_>>()
        );
        let c = fit(
            &x,
            &y,
            40,
            4,
            &TrainConfig {
                seed: cfg.seed + 1,
                ..cfg
            },
            None,
            &mut |_| {},
        )
        .expect("fit");
        assert_ne!(a.model, c.model);
    }

    #[test]
    fn a_first_layer_init_changes_only_what_it_mixes_in() {
        let (x, y) = learnable(200, 3);
        let cfg = TrainConfig {
            epochs: 2,
            ..small_config()
        };
        let fit_with = |init: Option<&FirstLayerInit>| {
            fit_targets(
                &x,
                &y,
                None,
                init,
                40,
                4,
                &cfg,
                None,
                &mut |_| {},
                &mut |_, _| true,
            )
            .expect("fit")
            .model
        };
        let plain = fit(&x, &y, 40, 4, &cfg, None, &mut |_| {}).expect("fit");
        let vectors = FirstLayerInit {
            rows: (1..40)
                .map(|f| (f, vec![f as f32, 1.0, -(f as f32)]))
                .collect(),
            alpha: 0.0,
            scale: 1.0,
            projection: Projection::Random,
        };
        // Nothing mixed in: the Glorot start, shuffle and dropout streams are untouched.
        assert_eq!(fit_with(Some(&vectors)), plain.model);
        let mixed = FirstLayerInit {
            alpha: 0.5,
            ..vectors
        };
        assert_ne!(fit_with(Some(&mixed)), plain.model);
        assert_eq!(fit_with(Some(&mixed)), fit_with(Some(&mixed)));
    }

    #[test]
    fn stopping_after_k_epochs_gives_the_k_epoch_model() {
        // The refit beside the early-stopped fit (pipeline.rs) relies on this, with decay on.
        let (x, y) = learnable(200, 8);
        let cfg = TrainConfig {
            epochs: 3,
            lr_decay: 0.8,
            ..small_config()
        };
        let three = fit(&x, &y, 40, 4, &cfg, None, &mut |_| {}).expect("fit");
        let mut seen = Vec::new();
        let stopped = fit_observed(
            &x,
            &y,
            40,
            4,
            &TrainConfig { epochs: 6, ..cfg },
            None,
            &mut |_| {},
            &mut |epoch, model| {
                seen.push(model.clone());
                epoch < 3
            },
        )
        .expect("fit");
        assert_eq!(stopped.history.len(), 3);
        assert_eq!(stopped.model, three.model);
        assert_eq!(seen[2], three.model);
        assert_ne!(seen[1], three.model);
    }

    #[test]
    fn learns_a_learnable_synthetic_task() {
        let (x, y) = learnable(1000, 3);
        let (vx, vy) = learnable(200, 4);
        let (tx, ty) = learnable(300, 5);
        let mut epochs_seen = 0;
        let result = fit(
            &x,
            &y,
            40,
            4,
            &small_config(),
            Some((&vx, &vy)),
            &mut |_| epochs_seen += 1,
        )
        .expect("fit");
        assert_eq!(epochs_seen, result.history.len());
        assert!(result.best_epoch >= 1 && result.best_epoch <= result.history.len());
        let losses: Vec<f32> = result.history.iter().map(|s| s.train_loss).collect();
        assert!(
            losses[losses.len() - 1] < losses[0],
            "training loss falls: {losses:?}"
        );
        let probs = result.model.predict_proba_batch(&tx);
        let names: Vec<String> = (0..4).map(|i| format!("f{i}")).collect();
        let report = evaluate(&probs, &ty, &Thresholds::fixed(0.5, 4), &names);
        assert!(report.micro_f1 > 0.95, "micro-F1 {}", report.micro_f1);
        assert!(
            report.binary_accuracy > 0.97,
            "binary accuracy {}",
            report.binary_accuracy
        );
    }

    #[test]
    fn early_stopping_restores_the_best_epoch() {
        // Validation labels unrelated to the features: validation loss soon stops improving.
        let (x, y) = learnable(300, 6);
        let (vx, _) = learnable(100, 7);
        let vy: SparseRows = (0..100u32)
            .map(|i| vec![i % 4])
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect();
        let cfg = TrainConfig {
            epochs: 40,
            early_stopping_patience: 2,
            ..small_config()
        };
        let result = fit(&x, &y, 40, 4, &cfg, Some((&vx, &vy)), &mut |_| {}).expect("fit");
        assert!(
            result.history.len() < 40,
            "stopped early after {} epochs",
            result.history.len()
        );
        assert_eq!(result.history.len(), result.best_epoch + 2);
        let best = result.history[result.best_epoch - 1]
            .val_loss
            .expect("val loss");
        assert!(result
            .history
            .iter()
            .all(|s| s.val_loss.expect("val loss") >= best));
    }
}
