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
    /// Epochs finished.
    epochs: usize,
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

    /// The state once the fit has finished `epoch` epochs or stopped.
    fn wait_for(&self, epoch: usize) -> FitState {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.finished && state.epochs < epoch {
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
/// before the fit stops, so after each epoch `e` it waits until the fit has finished epoch `e`
/// too, keeps a copy of its weights if `e` is the fit's best epoch so far, and stops once the
/// fit has stopped and `e` reached its best epoch. Epoch `e` of a run does not depend on how
/// many follow, so the copy is bit for bit the model a separate refit for that many epochs
/// gives, whatever the threads' timing; the two runs just share the wall time.
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
) -> Result<(train::TrainResult, Option<tagger_core::model::Mlp>)> {
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
            let mut snapshot: Option<Mlp> = None;
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
                &mut |epoch, model| {
                    let state = progress.wait_for(epoch);
                    if !go_on() {
                        return false;
                    }
                    if state.best == epoch {
                        match &mut snapshot {
                            Some(kept) => kept.clone_from(model),
                            None => snapshot = Some(model.clone()),
                        }
                    }
                    !(state.finished && epoch >= state.best)
                },
            )
            .map(|_| snapshot)
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
                progress.update(|s| {
                    s.epochs = stats.epoch;
                    if new_best {
                        s.best = stats.epoch;
                    }
                });
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
        let model = refitted?.ok_or_else(|| {
            Error::Training(format!(
                "the refit kept no weights for epoch {}",
                fitted.best_epoch
            ))
        })?;
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
