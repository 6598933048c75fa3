//! Multi-label evaluation: ranking quality (P@1, R@1) and set quality at the model's
//! thresholds (micro/macro F1, exact match, per-label binary accuracy, per-tag breakdown).
//!
//! Definitions (all over the evaluated rows):
//! - P@1: fraction of rows whose top-scored tag is one of their true tags.
//! - R@1: correct top-1 tags / all true tags (fastText's `test` definition: micro recall of the
//!   top-1 prediction, at most 1/(mean tags per row)).
//! - P@k, R@k (k = 1..5): the same for the k top-scored tags of each row: correct ones / (rows x
//!   k) and / all true tags (fastText's `test -k`); k is capped at the number of tags.
//! - threshold sweep: micro P/R/F1 with one global threshold for every tag, at 0.05 to 0.95; the
//!   precision-recall curve is the same at every 0.01 (both counted on a 0.001 grid of
//!   probabilities, so a probability counts as passing `t` when it is at least `t`).
//! - micro P/R/F1: from true/false positives and false negatives summed over all (row, tag) cells.
//! - macro-F1: mean F1 of the tags with support > 0 in `y` (tags never seen there are left out,
//!   so absent tags neither reward nor punish).
//! - exact match: fraction of rows whose predicted tag set equals the true set.
//! - binary accuracy: fraction of (row, tag) cells right, the origin's Keras `accuracy`; near 1
//!   whenever tags are rare, which is why it is not the headline.

use std::fmt::Write as _;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use tagger_core::sparse::SparseRows;
use tagger_core::thresholds::Thresholds;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagMetrics {
    pub tag: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// True occurrences in the evaluated rows.
    pub support: u64,
    /// Predicted occurrences.
    pub predicted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub examples: usize,
    pub p_at_1: f64,
    pub r_at_1: f64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub macro_f1: f64,
    pub exact_match: f64,
    pub binary_accuracy: f64,
    /// P@k for k = 1..=[`MAX_K`] (`p_at_k[0]` is P@1).
    #[serde(default)]
    pub p_at_k: Vec<f64>,
    /// R@k for k = 1..=[`MAX_K`].
    #[serde(default)]
    pub r_at_k: Vec<f64>,
    /// Micro P/R/F1 with one global threshold for every tag, at [`SWEEP_THRESHOLDS`].
    #[serde(default)]
    pub sweep: Vec<SweepPoint>,
    /// Micro precision and recall at global thresholds 0.01 to 0.99 (step 0.01).
    #[serde(default)]
    pub pr_curve: Vec<SweepPoint>,
    /// One entry per tag, in label order.
    pub per_tag: Vec<TagMetrics>,
}

/// Largest k of P@k and R@k.
pub const MAX_K: usize = 5;

/// The global thresholds of [`Report::sweep`]: 0.05, 0.10, ..., 0.95.
pub const SWEEP_THRESHOLDS: [f64; 19] = [
    0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80,
    0.85, 0.90, 0.95,
];

/// Micro figures with one global threshold for every tag.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Tags predicted per row.
    pub tags_per_row: f64,
}

/// Bins of the probability histogram behind the sweep and the curve.
const BINS: usize = 1000;

fn bin_of(p: f32) -> usize {
    if p.is_nan() {
        return 0;
    }
    ((f64::from(p) * BINS as f64).floor().max(0.0) as usize).min(BINS)
}

/// Micro figures at global threshold `t` from the per-bin counts of true and false cells
/// (`positives` all true tags, unknown ones included).
fn point_at(t: f64, tp_ge: &[u64], fp_ge: &[u64], positives: u64, rows: usize) -> SweepPoint {
    let k = ((t * BINS as f64).round() as usize).min(BINS);
    let (tp, fp) = (tp_ge[k], fp_ge[k]);
    SweepPoint {
        threshold: t,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, positives),
        f1: f1(tp, fp, positives - tp),
        tags_per_row: ratio(tp + fp, rows as u64),
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    ratio(2 * tp, 2 * tp + fp + fn_)
}

/// Scores probabilities `probs` (rows x tags) against label rows `y` at `thresholds`.
/// `labels` names the columns (missing names print as `#index`); label indices beyond the
/// columns count as missed (false negatives) in micro recall but belong to no tag.
pub fn evaluate(
    probs: &Array2<f32>,
    y: &SparseRows,
    thresholds: &Thresholds,
    labels: &[String],
) -> Report {
    let n_tags = probs.ncols();
    let n = probs.nrows();
    let (mut tp, mut fp, mut support) =
        (vec![0u64; n_tags], vec![0u64; n_tags], vec![0u64; n_tags]);
    let (mut top_hits, mut true_total, mut exact, mut unknown) = (0u64, 0u64, 0u64, 0u64);
    let k_max = MAX_K.min(n_tags);
    // hits_at[k]: correct tags among each row's k + 1 top-scored, summed.
    let mut hits_at = [0u64; MAX_K];
    // Cells per probability bin (the last bin holds p = 1), true and false apart.
    let (mut pos_bins, mut neg_bins) = (vec![0u64; BINS + 1], vec![0u64; BINS + 1]);
    let mut ranked: Vec<(usize, f32)> = Vec::with_capacity(MAX_K + 1);
    for (i, row) in probs.outer_iter().enumerate() {
        let truth = if i < y.len() { y.row(i) } else { &[] };
        true_total += truth.len() as u64;
        let is_true = |tag: usize| truth.binary_search(&(tag as u32)).is_ok();
        // Top-1: first index of the maximum (NaN never wins).
        let mut top: Option<(usize, f32)> = None;
        for (tag, &p) in row.iter().enumerate() {
            if top.is_none_or(|(_, best)| p > best) {
                top = Some((tag, p));
            }
        }
        if top.is_some_and(|(tag, _)| is_true(tag)) {
            top_hits += 1;
        }
        top_k(row.iter().copied(), k_max, &mut ranked);
        let mut hits = 0;
        for (k, &(tag, _)) in ranked.iter().enumerate() {
            if is_true(tag) {
                hits += 1;
            }
            hits_at[k] += hits;
        }
        let mut row_exact = true;
        for (tag, &p) in row.iter().enumerate() {
            let predicted = thresholds.passes(tag, p, None);
            let truth = is_true(tag);
            if truth {
                support[tag] += 1;
                pos_bins[bin_of(p)] += 1;
            } else {
                neg_bins[bin_of(p)] += 1;
            }
            if predicted {
                if truth {
                    tp[tag] += 1;
                } else {
                    fp[tag] += 1;
                }
            }
            row_exact &= predicted == truth;
        }
        let out_of_range = truth.iter().filter(|&&t| t as usize >= n_tags).count() as u64;
        unknown += out_of_range;
        if row_exact && out_of_range == 0 {
            exact += 1;
        }
    }
    let (sum_tp, sum_fp) = (tp.iter().sum::<u64>(), fp.iter().sum::<u64>());
    let sum_fn = support.iter().sum::<u64>() - sum_tp + unknown;
    let per_tag: Vec<TagMetrics> = (0..n_tags)
        .map(|t| TagMetrics {
            tag: labels.get(t).cloned().unwrap_or_else(|| format!("#{t}")),
            precision: ratio(tp[t], tp[t] + fp[t]),
            recall: ratio(tp[t], support[t]),
            f1: f1(tp[t], fp[t], support[t] - tp[t]),
            support: support[t],
            predicted: tp[t] + fp[t],
        })
        .collect();
    let supported: Vec<f64> = per_tag
        .iter()
        .filter(|m| m.support > 0)
        .map(|m| m.f1)
        .collect();
    let cells = (n * n_tags) as u64;
    let positives = sum_tp + sum_fn;
    // Cells at or above each bin.
    let at_or_above = |bins: &[u64]| {
        let mut out = vec![0u64; BINS + 1];
        let mut acc = 0;
        for b in (0..=BINS).rev() {
            acc += bins[b];
            out[b] = acc;
        }
        out
    };
    let (tp_ge, fp_ge) = (at_or_above(&pos_bins), at_or_above(&neg_bins));
    let sweep = SWEEP_THRESHOLDS
        .iter()
        .map(|&t| point_at(t, &tp_ge, &fp_ge, positives, n))
        .collect();
    let pr_curve = (1..100)
        .map(|i| point_at(f64::from(i) / 100.0, &tp_ge, &fp_ge, positives, n))
        .collect();
    let p_at_k = (0..k_max)
        .map(|k| ratio(hits_at[k], (n * (k + 1)) as u64))
        .collect();
    let r_at_k = (0..k_max).map(|k| ratio(hits_at[k], true_total)).collect();
    Report {
        examples: n,
        p_at_1: ratio(top_hits, n as u64),
        r_at_1: ratio(top_hits, true_total),
        micro_precision: ratio(sum_tp, sum_tp + sum_fp),
        micro_recall: ratio(sum_tp, sum_tp + sum_fn),
        micro_f1: f1(sum_tp, sum_fp, sum_fn),
        macro_f1: if supported.is_empty() {
            0.0
        } else {
            supported.iter().sum::<f64>() / supported.len() as f64
        },
        exact_match: ratio(exact, n as u64),
        binary_accuracy: ratio(cells - sum_fp - (sum_fn - unknown), cells),
        p_at_k,
        r_at_k,
        sweep,
        pr_curve,
        per_tag,
    }
}

/// The `k` largest of `row` as (index, value), largest first, ties by lower index (NaN never
/// ranks), into `out`.
fn top_k(row: impl Iterator<Item = f32>, k: usize, out: &mut Vec<(usize, f32)>) {
    out.clear();
    if k == 0 {
        return;
    }
    for (i, p) in row.enumerate() {
        if p.is_nan() || (out.len() == k && p <= out[k - 1].1) {
            continue;
        }
        let at = out.iter().position(|&(_, q)| p > q).unwrap_or(out.len());
        out.insert(at, (i, p));
        out.truncate(k);
    }
}

impl Report {
    /// A plain-text summary: the headline numbers, then the `top` most frequent tags
    /// (by support, ties by name) with their precision, recall and F1.
    pub fn table(&self, top: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "examples         {}", self.examples);
        let _ = writeln!(out, "P@1              {:.4}", self.p_at_1);
        let _ = writeln!(out, "R@1              {:.4}", self.r_at_1);
        let _ = writeln!(
            out,
            "micro P / R / F1 {:.4} / {:.4} / {:.4}",
            self.micro_precision, self.micro_recall, self.micro_f1
        );
        let _ = writeln!(out, "macro F1         {:.4}", self.macro_f1);
        let _ = writeln!(out, "exact match      {:.4}", self.exact_match);
        let _ = writeln!(out, "binary accuracy  {:.4}", self.binary_accuracy);
        if top == 0 || self.per_tag.is_empty() {
            return out;
        }
        let mut tags: Vec<&TagMetrics> = self.per_tag.iter().collect();
        tags.sort_by(|a, b| b.support.cmp(&a.support).then_with(|| a.tag.cmp(&b.tag)));
        let width = tags
            .iter()
            .take(top)
            .map(|m| m.tag.chars().count())
            .max()
            .unwrap_or(3)
            .max(3);
        let _ = writeln!(
            out,
            "\n{:<width$}  {:>9}  {:>6}  {:>6}  {:>6}  {:>9}",
            "tag", "precision", "recall", "f1", "support", "predicted"
        );
        for m in tags.iter().take(top) {
            let _ = writeln!(
                out,
                "{:<width$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}  {:>9}",
                m.tag, m.precision, m.recall, m.f1, m.support, m.predicted
            );
        }
        if tags.len() > top {
            let _ = writeln!(out, "... {} more tags", tags.len() - top);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn rows(r: &[&[u32]]) -> SparseRows {
        r.iter().copied().collect()
    }

    fn names() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    /// Three rows, three tags, threshold 0.5:
    ///
    /// | row | probs (a, b, c)  | true   | predicted | top-1      |
    /// |-----|------------------|--------|-----------|------------|
    /// | 0   | 0.9, 0.6, 0.1    | {a}    | {a, b}    | a (hit)    |
    /// | 1   | 0.2, 0.7, 0.4    | {b, c} | {b}       | b (hit)    |
    /// | 2   | 0.3, 0.1, 0.8    | {a}    | {c}       | c (miss)   |
    ///
    /// P@1 = 2/3; R@1 = 2 hits / 4 true tags = 1/2.
    /// Per tag: a tp1 fp0 fn1 -> P 1, R 1/2, F1 2/3; b tp1 fp1 fn0 -> P 1/2, R 1, F1 2/3;
    /// c tp0 fp1 fn1 -> F1 0. Micro: tp 2, fp 2, fn 2 -> P = R = F1 = 1/2.
    /// Macro-F1 = (2/3 + 2/3 + 0) / 3 = 4/9. Exact match: no row -> 0.
    /// Binary accuracy: 9 cells - 2 fp - 2 fn = 5/9.
    #[test]
    fn evaluate_matches_hand_computed_counts() {
        let probs = array![[0.9, 0.6, 0.1], [0.2, 0.7, 0.4], [0.3, 0.1, 0.8]];
        let y = rows(&[&[0], &[1, 2], &[0]]);
        let r = evaluate(&probs, &y, &Thresholds::fixed(0.5, 3), &names());
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert_eq!(r.examples, 3);
        assert!(close(r.p_at_1, 2.0 / 3.0));
        assert!(close(r.r_at_1, 0.5));
        assert!(
            close(r.micro_precision, 0.5) && close(r.micro_recall, 0.5) && close(r.micro_f1, 0.5)
        );
        assert!(close(r.macro_f1, 4.0 / 9.0));
        assert!(close(r.exact_match, 0.0));
        assert!(close(r.binary_accuracy, 5.0 / 9.0));
        assert_eq!(r.per_tag[0].support, 2);
        assert_eq!(r.per_tag[1].predicted, 2);
        assert!(close(r.per_tag[1].precision, 0.5) && close(r.per_tag[1].recall, 1.0));
        assert!(close(r.per_tag[2].f1, 0.0));
    }

    /// The same three rows ranked (a, b, c probabilities as above):
    /// row 0 a b c, true {a}: hits within top 1/2/3 = 1, 1, 1;
    /// row 1 b c a, true {b, c}: 1, 2, 2; row 2 c a b, true {a}: 0, 1, 1. Sums 2, 4, 4.
    /// P@k = sum / (3 rows x k): 2/3, 4/6, 4/9; R@k = sum / 4 true tags: 1/2, 1, 1 (k stops at 3
    /// tags). Sweep at 0.5: cells >= 0.5 are 0.9 (a, true), 0.6 (b, false), 0.7 (b, true),
    /// 0.8 (c, false): P = R = F1 = 1/2, 4/3 tags per row; at 0.05 every cell passes: tp 4,
    /// fp 5, P 4/9, R 1, F1 8/13; at 0.95 none: zeros.
    #[test]
    fn precision_and_recall_at_k_and_the_sweep_match_hand_counts() {
        let probs = array![[0.9, 0.6, 0.1], [0.2, 0.7, 0.4], [0.3, 0.1, 0.8]];
        let y = rows(&[&[0], &[1, 2], &[0]]);
        let r = evaluate(&probs, &y, &Thresholds::fixed(0.5, 3), &names());
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let expect_p = [2.0 / 3.0, 4.0 / 6.0, 4.0 / 9.0];
        let expect_r = [0.5, 1.0, 1.0];
        assert_eq!((r.p_at_k.len(), r.r_at_k.len()), (3, 3));
        for k in 0..3 {
            assert!(
                close(r.p_at_k[k], expect_p[k]),
                "P@{}: {}",
                k + 1,
                r.p_at_k[k]
            );
            assert!(
                close(r.r_at_k[k], expect_r[k]),
                "R@{}: {}",
                k + 1,
                r.r_at_k[k]
            );
        }
        assert!(close(r.p_at_k[0], r.p_at_1) && close(r.r_at_k[0], r.r_at_1));
        assert_eq!(r.sweep.len(), SWEEP_THRESHOLDS.len());
        let at = |t: f64| *r.sweep.iter().find(|p| close(p.threshold, t)).unwrap();
        let half = at(0.5);
        assert!(close(half.precision, 0.5) && close(half.recall, 0.5) && close(half.f1, 0.5));
        assert!(close(half.tags_per_row, 4.0 / 3.0));
        // The sweep at the served global threshold is the served micro figures.
        assert!(close(half.f1, r.micro_f1));
        let low = at(0.05);
        assert!(close(low.precision, 4.0 / 9.0) && close(low.recall, 1.0));
        assert!(close(low.f1, 8.0 / 13.0));
        let high = at(0.95);
        assert_eq!((high.precision, high.recall, high.f1), (0.0, 0.0, 0.0));
        assert_eq!(r.pr_curve.len(), 99);
        assert!(r.pr_curve.windows(2).all(|w| w[0].recall >= w[1].recall));
    }

    /// A report written before P@k and the sweep existed still reads (empty).
    #[test]
    fn older_reports_read_without_the_new_figures() {
        let probs = array![[0.9, 0.6, 0.1]];
        let r = evaluate(&probs, &rows(&[&[0]]), &Thresholds::fixed(0.5, 3), &names());
        let mut v = serde_json::to_value(&r).unwrap();
        for key in ["p_at_k", "r_at_k", "sweep", "pr_curve"] {
            v.as_object_mut().unwrap().remove(key);
        }
        let old: Report = serde_json::from_value(v).unwrap();
        assert!(old.p_at_k.is_empty() && old.sweep.is_empty());
    }

    /// Tag c never occurs in `y`, so macro-F1 averages a and b only: both are predicted exactly
    /// (F1 1), giving 1 even though c's F1 is 0. Every row is an exact match, and per-tag
    /// thresholds apply: b's 0.3 probability counts because b's threshold is 0.25.
    #[test]
    fn macro_f1_skips_tags_without_support_and_uses_per_tag_thresholds() {
        let probs = array![[0.9, 0.3, 0.1], [0.2, 0.1, 0.4]];
        let y = rows(&[&[0, 1], &[]]);
        let thresholds = Thresholds {
            global: 0.5,
            per_tag: vec![0.5, 0.25, 0.5],
        };
        let r = evaluate(&probs, &y, &thresholds, &names());
        assert_eq!(r.macro_f1, 1.0);
        assert_eq!(r.exact_match, 1.0);
        assert_eq!(r.micro_f1, 1.0);
        // Row 1 has no true tags, so its top-1 (c) is a miss: P@1 = 1/2.
        assert_eq!(r.p_at_1, 0.5);
    }

    #[test]
    fn table_lists_most_frequent_tags_first() {
        let probs = array![[0.9, 0.6, 0.1], [0.2, 0.7, 0.4], [0.3, 0.1, 0.8]];
        let y = rows(&[&[0], &[1, 2], &[0]]);
        let table = evaluate(&probs, &y, &Thresholds::fixed(0.5, 3), &names()).table(2);
        assert!(table.contains("P@1              0.6667"), "{table}");
        let a = table.find("\na ").expect("tag a listed");
        let b = table.find("\nb ").expect("tag b listed");
        assert!(a < b, "a (support 2) before b (support 1):\n{table}");
        assert!(table.contains("1 more tags"));
    }

    #[test]
    fn empty_input_gives_zeros_not_nan() {
        let probs = Array2::<f32>::zeros((0, 2));
        let r = evaluate(&probs, &SparseRows::new(), &Thresholds::fixed(0.5, 2), &[]);
        assert_eq!(r.examples, 0);
        assert_eq!(r.p_at_1, 0.0);
        assert_eq!(r.macro_f1, 0.0);
        assert!(!r.binary_accuracy.is_nan());
    }
}
