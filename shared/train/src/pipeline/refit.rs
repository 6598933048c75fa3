//! The early-stopped fit and the refit on train + validation rows, run side by side.

use std::sync::{Condvar, Mutex};

use tagger_core::model::Mlp;
use tagger_core::sparse::SparseRows;

use crate::error::{Error, Result};
use crate::teacher::SoftTargets;
use crate::train::{self, EpochStats};

/// How far the early-stopped fit has got, for the refit running beside it.
#[derive(Default)]
struct FitProgress {
    state: Mutex<FitState>,
    changed: Condvar,
}

#[derive(Clone, Copy, Default)]
struct FitState {
    /// The best epoch so far (the final one once `finished`).
    best: usize,
    finished: bool,
}

impl FitProgress {
    fn update(&self, f: impl FnOnce(&mut FitState)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state);
        self.changed.notify_all();
    }

    /// The state once the fit's best epoch is past `epoch`, or the fit has stopped.
    fn wait_past(&self, epoch: usize) -> FitState {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.finished && state.best <= epoch {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        *state
    }
}

/// Marks the fit finished however it ends (error or panic included), so the refit never waits
/// for it forever.
struct FinishOnDrop<'a>(&'a FitProgress);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        self.0.update(|s| s.finished = true);
    }
}

/// The early-stopped fit on `train` (validated on `val`) and [`Settings::refit`]'s second model,
/// trained at the same time on a second thread: train + validation rows, the next seed, no
/// early stopping, for as many epochs as the fit's best. The refit cannot know that number
/// before the fit stops, so it trains an epoch only once the fit has shown it is needed: after
/// its epoch `e` it waits until the fit's best epoch is past `e` (then it trains epoch `e + 1`)
/// or the fit has stopped with its best at `e` (then its weights are the answer). It trails the
/// fit by an epoch and never trains one the fit's patience then throws away. Epoch `e` of a run
/// does not depend on how many follow, so the result is bit for bit the model a separate refit
/// for that many epochs gives, whatever the threads' timing; the two runs just share the wall
/// time.
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_with_refit(
    (x_fit, y_fit): (&SparseRows, &SparseRows),
    (x_val, y_val): (&SparseRows, &SparseRows),
    taught: Option<&Taught>,
    init: Option<&train::FirstLayerInit>,
    n_features: usize,
    n_labels: usize,
    cfg: &train::TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochStats),
    go_on: &(dyn Fn() -> bool + Sync),
) -> Result<(train::TrainResult, Option<Mlp>)> {
    let mut x_both = x_fit.clone();
    let mut y_both = y_fit.clone();
    for i in 0..x_val.len() {
        x_both.push_row(x_val.row(i));
        y_both.push_row(y_val.row(i));
    }
    // With a teacher: the fit learns from its rows + the extra rows, the refit from its rows
    // (fit + validation) + the extra rows.
    let fit_joined = taught.map(|(soft_fit, _, extra)| join(x_fit, y_fit, soft_fit, extra));
    let both_joined = taught.map(|(soft_fit, soft_val, extra)| {
        let mut soft = soft_fit.clone();
        soft.extend(soft_val);
        join(&x_both, &y_both, &soft, extra)
    });
    let (x_fit, y_fit, soft_fit) = match &fit_joined {
        Some((x, y, s)) => (x, y, Some(s)),
        None => (x_fit, y_fit, None),
    };
    let (x_both, y_both, soft_both) = match both_joined {
        Some((x, y, s)) => (x, y, Some(s)),
        None => (x_both, y_both, None),
    };
    let refit_cfg = train::TrainConfig {
        early_stopping_patience: 0,
        // Another initialisation: the two ensemble members should not share one.
        seed: cfg.seed.wrapping_add(1),
        ..cfg.clone()
    };
    let progress = FitProgress::default();
    std::thread::scope(|s| {
        let refit = s.spawn(|| {
            let mut stopped_at = None;
            train::fit_targets(
                &x_both,
                &y_both,
                soft_both.as_ref(),
                init,
                n_features,
                n_labels,
                &refit_cfg,
                None,
                &mut |_| {},
                &mut |epoch, _| {
                    let state = progress.wait_past(epoch);
                    if !go_on() || state.best <= epoch {
                        stopped_at = Some(epoch);
                        return false;
                    }
                    true
                },
            )
            .map(|r| (stopped_at.unwrap_or(r.history.len()), r.model))
        });
        let finish = FinishOnDrop(&progress);
        // `train::fit`'s rule for the best epoch: the first, then any with a strictly lower
        // validation loss; every epoch when early stopping is off (the last one is kept).
        let mut best_loss: Option<f32> = None;
        let fitted = train::fit_targets(
            x_fit,
            y_fit,
            soft_fit,
            init,
            n_features,
            n_labels,
            cfg,
            Some((x_val, y_val)),
            &mut |stats| {
                let new_best = cfg.early_stopping_patience == 0
                    || match (best_loss, stats.val_loss) {
                        (None, loss) => {
                            best_loss = loss;
                            true
                        }
                        (Some(best), Some(loss)) if loss < best => {
                            best_loss = Some(loss);
                            true
                        }
                        _ => false,
                    };
                if new_best {
                    progress.update(|s| s.best = stats.epoch);
                }
                on_epoch(stats);
            },
            &mut |_, _| go_on(),
        );
        if let Ok(f) = &fitted {
            let best = f.best_epoch;
            progress.update(|s| s.best = best);
        }
        drop(finish);
        let refitted = refit
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let fitted = fitted?;
        if !go_on() {
            return Ok((fitted, None));
        }
        let (epochs, model) = refitted?;
        if epochs != fitted.best_epoch {
            return Err(Error::Training(format!(
                "the refit stopped after epoch {epochs}, the fit's best is epoch {}",
                fitted.best_epoch
            )));
        }
        Ok((fitted, Some(model)))
    })
}

/// Soft targets of the fit rows and of the validation rows, and the teacher's extra rows
/// (features, empty labels, soft targets).
pub(super) type Taught = (
    SoftTargets,
    SoftTargets,
    (SparseRows, SparseRows, SoftTargets),
);

/// `x`, `y`, `soft` with the extra rows appended.
pub(super) fn join(
    x: &SparseRows,
    y: &SparseRows,
    soft: &SoftTargets,
    (x_extra, y_extra, soft_extra): &(SparseRows, SparseRows, SoftTargets),
) -> (SparseRows, SparseRows, SoftTargets) {
    let (mut x, mut y, mut soft) = (x.clone(), y.clone(), soft.clone());
    for i in 0..x_extra.len() {
        x.push_row(x_extra.row(i));
        y.push_row(y_extra.row(i));
    }
    soft.extend(soft_extra);
    (x, y, soft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// 300 rows of 40 features; tag `t` of 6 goes with features `t * 6 .. t * 6 + 6`, mostly.
    fn data(seed: u64) -> (SparseRows, SparseRows) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..300 {
            let tag = rng.random_range(0..6u32);
            let mut row: Vec<u32> = (0..4).map(|_| tag * 6 + rng.random_range(0..6)).collect();
            row.extend((0..3).map(|_| rng.random_range(0..40)));
            row.sort_unstable();
            row.dedup();
            x.push(row);
            // Every third label is noise: the validation loss turns up within a few epochs.
            let label = if rng.random_range(0..3) == 0 {
                rng.random_range(0..6u32)
            } else {
                tag
            };
            y.push(vec![label]);
        }
        (
            x.iter().map(Vec::as_slice).collect(),
            y.iter().map(Vec::as_slice).collect(),
        )
    }

    /// The refit beside the fit is the model a separate run on train + validation rows for the
    /// fit's best epoch count gives, bit for bit, with the patience of 1 the large sets use and
    /// the longer one of small sets.
    #[test]
    fn the_refit_beside_the_fit_is_a_separate_refit_for_the_best_epochs() {
        let (x, y) = data(5);
        let fit: Vec<usize> = (0..270).collect();
        let val: Vec<usize> = (270..300).collect();
        let (x_fit, y_fit, x_val, y_val) = (
            x.select(&fit),
            y.select(&fit),
            x.select(&val),
            y.select(&val),
        );
        for patience in [1, 3] {
            let cfg = train::TrainConfig {
                // Fast and without dropout: it overfits the noisy labels within a few epochs.
                hidden: vec![32],
                epochs: 40,
                batch_size: 16,
                learning_rate: 0.03,
                lr_decay: 1.0,
                dropout: 0.0,
                early_stopping_patience: patience,
                ..Default::default()
            };
            let (fitted, refit) = fit_with_refit(
                (&x_fit, &y_fit),
                (&x_val, &y_val),
                None,
                None,
                40,
                6,
                &cfg,
                &mut |_| {},
                &|| true,
            )
            .unwrap();
            let refit = refit.expect("a refit model");
            let separate = train::fit_targets(
                &x,
                &y,
                None,
                None,
                40,
                6,
                &train::TrainConfig {
                    early_stopping_patience: 0,
                    seed: cfg.seed.wrapping_add(1),
                    epochs: fitted.best_epoch,
                    ..cfg.clone()
                },
                None,
                &mut |_| {},
                &mut |_, _| true,
            )
            .unwrap();
            assert!(
                fitted.best_epoch < fitted.history.len(),
                "early stopping stopped it: best {} of {}",
                fitted.best_epoch,
                fitted.history.len()
            );
            assert_eq!(refit, separate.model, "patience {patience}");
        }
    }
}
