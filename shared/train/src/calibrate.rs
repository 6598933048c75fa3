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
    /// Per-tag F1-tuned thresholds shrunk toward the tuned global one by the evidence behind
    /// them: a tag with `n` validation positives gets `g + n / (n + strength) * (t_tag - g)`,
    /// so a tag tuned on two positives moves little and a well-supported one keeps its own.
    /// Tags without validation positives keep `g`.
    Shrunk { strength: f32 },
    /// One threshold per frequency group: tags are grouped by training positives in powers of
    /// two (1, 2-3, 4-7, ...) and each group's threshold is F1-tuned on the group's pooled
    /// validation cells, so it rests on many positives even where each tag has one or none.
    /// Rare tags' probabilities run lower than frequent ones' even when right, so one global
    /// cut silences them (so-nlp: 82 of 530 test tags ever predicted). Groups with fewer than
    /// [`MIN_GROUP_POSITIVES`] validation positives are pooled with their less frequent
    /// neighbours until the pool has enough.
    Frequency,
}

/// [`ThresholdStrategy::Frequency`]: fewest validation positives a frequency group is tuned on.
pub const MIN_GROUP_POSITIVES: u64 = 20;

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
            ThresholdStrategy::Global | ThresholdStrategy::Frequency => {}
            ThresholdStrategy::Shrunk { strength } => {
                if !(strength.is_finite() && strength >= 0.0) {
                    return Err(Error::config(
                        "thresholds",
                        format!("shrinkage strength must be a finite number >= 0, got {strength}"),
                    ));
                }
            }
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
    calibrate_with_counts(probs, y, strategy, &[])
}

/// [`calibrate`], knowing each tag's number of training positives (`train_positives[tag]`;
/// missing tags count as 0), which [`ThresholdStrategy::Frequency`] groups tags by.
pub fn calibrate_with_counts(
    probs: &Array2<f32>,
    y: &SparseRows,
    strategy: &ThresholdStrategy,
    train_positives: &[u64],
) -> Thresholds {
    let n_tags = probs.ncols();
    match *strategy {
        ThresholdStrategy::Frequency => {
            let sweep = Sweep::new(probs, y);
            let (global, _) = sweep.best(&sweep.total());
            let group_of = |tag: usize| {
                let n = train_positives.get(tag).copied().unwrap_or(0).max(1);
                (u64::BITS - 1 - n.leading_zeros()) as usize
            };
            let n_groups = (0..n_tags).map(group_of).max().map_or(0, |g| g + 1);
            let mut pooled: Vec<TagCounts> = (0..n_groups).map(|_| TagCounts::zero()).collect();
            for tag in 0..n_tags {
                pooled[group_of(tag)].add(&sweep.tag(tag));
            }
            // From the most frequent group down, groups are pooled until the pool holds enough
            // validation positives, then all of them take the pool's threshold; the rarest
            // groups left over take the last pool's (the global one if there was none).
            let mut group_threshold = vec![global; n_groups];
            let mut pool = TagCounts::zero();
            let mut pending = Vec::new();
            let mut last = global;
            for g in (0..n_groups).rev() {
                pool.add(&pooled[g]);
                pending.push(g);
                if pool.positives >= MIN_GROUP_POSITIVES {
                    last = sweep.best(&pool).0;
                    for p in pending.drain(..) {
                        group_threshold[p] = last;
                    }
                    pool = TagCounts::zero();
                }
            }
            for p in pending {
                group_threshold[p] = last;
            }
            let per_tag = (0..n_tags)
                .map(|tag| group_threshold[group_of(tag)])
                .collect();
            Thresholds { global, per_tag }
        }
        ThresholdStrategy::Fixed(t) => Thresholds::fixed(t, n_tags),
        ThresholdStrategy::Global => {
            let sweep = Sweep::new(probs, y);
            let (t, _) = sweep.best(&sweep.total());
            Thresholds::fixed(t, n_tags)
        }
        ThresholdStrategy::Shrunk { strength } => {
            let sweep = Sweep::new(probs, y);
            let (global, _) = sweep.best(&sweep.total());
            let per_tag = (0..n_tags)
                .map(|tag| {
                    let counts = sweep.tag(tag);
                    if counts.positives == 0 {
                        return global;
                    }
                    let n = counts.positives as f32;
                    let own = sweep.best(&counts).0;
                    global + n / (n + strength) * (own - global)
                })
                .collect();
            Thresholds { global, per_tag }
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

impl TagCounts {
    fn zero() -> TagCounts {
        TagCounts {
            positives: 0,
            pos: [0; GRID_LEN + 1],
            neg: [0; GRID_LEN + 1],
        }
    }

    fn add(&mut self, other: &TagCounts) {
        for b in 0..=GRID_LEN {
            self.pos[b] += other.pos[b];
            self.neg[b] += other.neg[b];
        }
        self.positives += other.positives;
    }
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
    fn shrunk_moves_each_tag_toward_its_own_optimum_by_its_support() {
        // Tag 0: 4 positives at 0.3, negatives at 0.1; tag 1: 1 positive at 0.85, negatives at
        // 0.6; tag 2: no positive. The global optimum lies between the two tags' optima.
        let probs = array![
            [0.3, 0.6, 0.1],
            [0.3, 0.6, 0.1],
            [0.3, 0.6, 0.1],
            [0.3, 0.85, 0.1],
            [0.1, 0.1, 0.1],
        ];
        let y = rows(&[&[0], &[0], &[0], &[0, 1], &[]]);
        let own = calibrate(&probs, &y, &ThresholdStrategy::Shrunk { strength: 0.0 });
        let global = calibrate(&probs, &y, &ThresholdStrategy::Global).global;
        assert!(own.get(0) > 0.1 && own.get(0) <= 0.3, "{}", own.get(0));
        assert!(own.get(1) > 0.6 && own.get(1) <= 0.85, "{}", own.get(1));
        assert_eq!(own.get(2), global);
        let k = 2.0;
        let shrunk = calibrate(&probs, &y, &ThresholdStrategy::Shrunk { strength: k });
        for (tag, n) in [(0, 4.0), (1, 1.0)] {
            let expected = global + n / (n + k) * (own.get(tag) - global);
            assert!((shrunk.get(tag) - expected).abs() < 1e-6, "tag {tag}");
        }
        assert_eq!(shrunk.global, global);
        assert!(ThresholdStrategy::Shrunk { strength: -1.0 }
            .validate()
            .is_err());
    }

    #[test]
    fn frequency_tunes_one_threshold_per_pooled_frequency_group() {
        // Tag 0 (100 training positives): positives at 0.8, negatives at 0.3. Tag 1 (1 training
        // positive): positives at 0.2, negatives at 0.02. Tag 2 (8 training positives, 2
        // validation positives, too few alone) is pooled with tag 1: positives at 0.2 too.
        let n = 40;
        let mut probs = Array2::<f32>::zeros((n, 3));
        let mut labels: Vec<Vec<u32>> = vec![Vec::new(); n];
        for i in 0..n {
            let (p0, p1) = (i < 20, (10..30).contains(&i));
            let p2 = i == 30 || i == 31;
            probs[[i, 0]] = if p0 { 0.8 } else { 0.3 };
            probs[[i, 1]] = if p1 { 0.2 } else { 0.02 };
            probs[[i, 2]] = if p2 { 0.2 } else { 0.02 };
            for (tag, on) in [(0, p0), (1, p1), (2, p2)] {
                if on {
                    labels[i].push(tag);
                }
            }
        }
        let y: SparseRows = labels.iter().map(Vec::as_slice).collect();
        let t = calibrate_with_counts(&probs, &y, &ThresholdStrategy::Frequency, &[100, 1, 8]);
        assert!(t.get(0) > 0.3 && t.get(0) <= 0.8, "tag 0: {}", t.get(0));
        assert!(t.get(1) > 0.02 && t.get(1) <= 0.2, "tag 1: {}", t.get(1));
        assert_eq!(t.get(2), t.get(1));
        // No single cut separates both tags (tag 0's negatives score above tag 1's positives).
        assert!(t.get(0) > t.get(1));
        let global = calibrate(&probs, &y, &ThresholdStrategy::Global).global;
        // Without training counts every tag is in one group: the global threshold.
        let flat = calibrate(&probs, &y, &ThresholdStrategy::Frequency);
        assert!(flat.per_tag.iter().all(|&v| v == global));
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
