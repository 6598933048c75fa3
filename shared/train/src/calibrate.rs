//! Decision thresholds: which per-tag probabilities count as "this question has the tag".
//!
//! The origin returned tags with probability > 0.8 ([`ThresholdStrategy::Fixed`]). Tuned
//! thresholds do much better on multi-label data where most probabilities stay low: they are
//! chosen on validation rows (the training loop's held-out split, never the test rows) by
//! maximising F1 over the grid 0.05, 0.06, ..., 0.95. On a plateau of equal F1 the middle of the
//! first plateau is taken, so a cleanly separated validation set gets a threshold with margin on
//! both sides.
//!
//! A reference MLP showed one global threshold beating per-tag thresholds on micro-F1, and
//! per-tag thresholds tuned on fewer than ~20 validation positives overfitting.
//! [`ThresholdStrategy::PerTag`] therefore tunes only tags with `min_support` positives, gives
//! the rest the tuned global threshold, and never goes below `floor`: a threshold tuned on a
//! handful of positives can sit near the bottom of the grid, where a tag fires on nearly every
//! question that shares a word with its few examples; the floor caps that damage. A floor of
//! 0.1-0.2 is a sensible choice (the global optimum on the bundled data sets lies above it).

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tagger_core::sparse::SparseRows;
use tagger_core::thresholds::Thresholds;

use crate::error::{Error, Result};

/// How [`calibrate`] picks thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ThresholdStrategy {
    /// The same fixed threshold for every tag (the origin used 0.8).
    Fixed(f32),
    /// One F1-tuned threshold shared by all tags (micro-F1 over all validation cells).
    Global,
    /// Per-tag F1-tuned thresholds for tags with at least `min_support` validation positives,
    /// the tuned global threshold for the others, none below `floor`.
    PerTag { min_support: usize, floor: f32 },
}

impl ThresholdStrategy {
    pub fn validate(&self) -> Result<()> {
        match *self {
            ThresholdStrategy::Fixed(t) => {
                if !(t > 0.0 && t < 1.0) {
                    return Err(Error::config(
                        "thresholds",
                        format!("fixed threshold must be in (0, 1), got {t}"),
                    ));
                }
            }
            ThresholdStrategy::Global => {}
            ThresholdStrategy::PerTag { min_support, floor } => {
                if min_support == 0 {
                    return Err(Error::config(
                        "thresholds",
                        "per-tag min_support must be at least 1, got 0",
                    ));
                }
                if !(0.0..1.0).contains(&floor) {
                    return Err(Error::config(
                        "thresholds",
                        format!("per-tag floor must be in [0, 1), got {floor}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Candidate thresholds: 0.05, 0.06, ..., 0.95.
fn grid() -> [f32; GRID_LEN] {
    std::array::from_fn(|k| (5 + k) as f32 / 100.0)
}
const GRID_LEN: usize = 91;

/// Chooses thresholds on validation probabilities `probs` (rows x tags) and label rows `y`.
/// Label indices beyond the columns of `probs` are ignored.
pub fn calibrate(probs: &Array2<f32>, y: &SparseRows, strategy: &ThresholdStrategy) -> Thresholds {
    let n_tags = probs.ncols();
    match *strategy {
        ThresholdStrategy::Fixed(t) => Thresholds::fixed(t, n_tags),
        ThresholdStrategy::Global => {
            let sweep = Sweep::new(probs, y);
            let (t, _) = sweep.best(&sweep.total());
            Thresholds::fixed(t, n_tags)
        }
        ThresholdStrategy::PerTag { min_support, floor } => {
            let sweep = Sweep::new(probs, y);
            let (global, _) = sweep.best(&sweep.total());
            let per_tag = (0..n_tags)
                .map(|tag| {
                    let counts = sweep.tag(tag);
                    let t = if counts.positives >= min_support as u64 && min_support > 0 {
                        sweep.best(&counts).0
                    } else {
                        global
                    };
                    t.max(floor)
                })
                .collect();
            Thresholds {
                global: global.max(floor),
                per_tag,
            }
        }
    }
}

/// The F1-tuned global threshold of `probs` against `y` and the micro-F1 it reaches.
pub fn best_global(probs: &Array2<f32>, y: &SparseRows) -> (f32, f64) {
    let sweep = Sweep::new(probs, y);
    sweep.best(&sweep.total())
}

/// Per-tag histograms of validation probabilities over the grid: `pos[tag][b]` counts
/// positives whose probability reaches exactly `b` grid thresholds (so it is predicted at grid
/// index `g` iff `b > g`); likewise `neg` for negatives. One pass over the cells, then every
/// candidate threshold costs O(grid).
struct Sweep {
    pos: Vec<u64>,
    neg: Vec<u64>,
    n_tags: usize,
}

struct TagCounts {
    positives: u64,
    pos: [u64; GRID_LEN + 1],
    neg: [u64; GRID_LEN + 1],
}

impl Sweep {
    fn new(probs: &Array2<f32>, y: &SparseRows) -> Sweep {
        let n_tags = probs.ncols();
        let bins = GRID_LEN + 1;
        let grid = grid();
        let mut pos = vec![0u64; n_tags * bins];
        let mut neg = vec![0u64; n_tags * bins];
        for (i, row) in probs.outer_iter().enumerate() {
            let labels = if i < y.len() { y.row(i) } else { &[] };
            let mut next = 0;
            for (tag, &p) in row.iter().enumerate() {
                let bin = grid.partition_point(|&t| t <= p);
                while next < labels.len() && (labels[next] as usize) < tag {
                    next += 1;
                }
                if next < labels.len() && labels[next] as usize == tag {
                    pos[tag * bins + bin] += 1;
                } else {
                    neg[tag * bins + bin] += 1;
                }
            }
        }
        Sweep { pos, neg, n_tags }
    }

    fn tag(&self, tag: usize) -> TagCounts {
        let bins = GRID_LEN + 1;
        let mut counts = TagCounts {
            positives: 0,
            pos: [0; GRID_LEN + 1],
            neg: [0; GRID_LEN + 1],
        };
        counts
            .pos
            .copy_from_slice(&self.pos[tag * bins..(tag + 1) * bins]);
        counts
            .neg
            .copy_from_slice(&self.neg[tag * bins..(tag + 1) * bins]);
        counts.positives = counts.pos.iter().sum();
        counts
    }

    fn total(&self) -> TagCounts {
        let mut counts = TagCounts {
            positives: 0,
            pos: [0; GRID_LEN + 1],
            neg: [0; GRID_LEN + 1],
        };
        for tag in 0..self.n_tags {
            let t = self.tag(tag);
            for b in 0..=GRID_LEN {
                counts.pos[b] += t.pos[b];
                counts.neg[b] += t.neg[b];
            }
            counts.positives += t.positives;
        }
        counts
    }

    /// The grid threshold with the highest F1 (middle of the first best plateau) and that F1.
    fn best(&self, counts: &TagCounts) -> (f32, f64) {
        let grid = grid();
        if counts.positives == 0 {
            return (0.5, 0.0);
        }
        // tp[g] / fp[g]: cells with bin > g, i.e. suffix sums.
        let mut tp = [0u64; GRID_LEN];
        let mut fp = [0u64; GRID_LEN];
        let (mut acc_tp, mut acc_fp) = (0, 0);
        for g in (0..GRID_LEN).rev() {
            acc_tp += counts.pos[g + 1];
            acc_fp += counts.neg[g + 1];
            tp[g] = acc_tp;
            fp[g] = acc_fp;
        }
        // F1 = 2tp / (2tp + fp + fn) with fn = positives - tp; compared exactly as fractions.
        let f1 = |g: usize| (2 * tp[g], tp[g] + fp[g] + counts.positives);
        let better = |a: (u64, u64), b: (u64, u64)| {
            u128::from(a.0) * u128::from(b.1) > u128::from(b.0) * u128::from(a.1)
        };
        let same = |a: (u64, u64), b: (u64, u64)| {
            u128::from(a.0) * u128::from(b.1) == u128::from(b.0) * u128::from(a.1)
        };
        let mut best = 0;
        for g in 1..GRID_LEN {
            if better(f1(g), f1(best)) {
                best = g;
            }
        }
        let mut end = best;
        while end + 1 < GRID_LEN && same(f1(end + 1), f1(best)) {
            end += 1;
        }
        let pick = (best + end) / 2;
        let (num, den) = f1(pick);
        (
            grid[pick],
            if den == 0 {
                0.0
            } else {
                num as f64 / den as f64
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn rows(r: &[&[u32]]) -> SparseRows {
        r.iter().copied().collect()
    }

    #[test]
    fn global_threshold_separates_a_separable_set() {
        // Tag 0 positives score 0.7-0.8, negatives 0.2-0.3: every threshold in (0.3, 0.7] is
        // perfect; the chosen one must be one of them.
        let probs = array![[0.8, 0.1], [0.7, 0.2], [0.3, 0.9], [0.2, 0.25]];
        let y = rows(&[&[0], &[0], &[1], &[]]);
        let t = calibrate(&probs, &y, &ThresholdStrategy::Global);
        assert!(t.global > 0.3 && t.global <= 0.7, "threshold {}", t.global);
        assert!(t.global > 0.25 && t.global <= 0.9);
        let (_, f1) = best_global(&probs, &y);
        assert_eq!(f1, 1.0);
    }

    #[test]
    fn per_tag_tunes_supported_tags_and_floors_the_rest() {
        // Tag 0 has 2 positives (>= min_support) separable between 0.3 and 0.6; tag 1 has one
        // positive, so it gets the global threshold; nothing goes below the 0.4 floor.
        let probs = array![[0.6, 0.1], [0.65, 0.35], [0.3, 0.9], [0.2, 0.3]];
        let y = rows(&[&[0], &[0], &[1], &[]]);
        let strategy = ThresholdStrategy::PerTag {
            min_support: 2,
            floor: 0.4,
        };
        let t = calibrate(&probs, &y, &strategy);
        assert!(
            t.get(0) > 0.3 && t.get(0) <= 0.6,
            "tag 0 threshold {}",
            t.get(0)
        );
        assert_eq!(t.get(1), t.global);
        assert!(t.per_tag.iter().all(|&v| v >= 0.4));
    }

    #[test]
    fn fixed_strategy_keeps_its_value() {
        let probs = array![[0.6f32, 0.1]];
        let t = calibrate(&probs, &rows(&[&[0]]), &ThresholdStrategy::Fixed(0.8));
        assert_eq!(t, Thresholds::fixed(0.8, 2));
        assert_eq!(t.get(7), 0.8);
    }

    #[test]
    fn rejects_out_of_range_strategies() {
        assert!(matches!(
            ThresholdStrategy::Fixed(f32::NAN).validate(),
            Err(Error::InvalidConfig {
                field: "thresholds",
                ..
            })
        ));
        assert!(matches!(
            ThresholdStrategy::PerTag {
                min_support: 0,
                floor: 0.1
            }
            .validate(),
            Err(Error::InvalidConfig {
                field: "thresholds",
                ..
            })
        ));
        assert!(ThresholdStrategy::PerTag {
            min_support: 20,
            floor: 0.1
        }
        .validate()
        .is_ok());
    }
}
