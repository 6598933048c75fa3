//! Multi-label evaluation: ranking quality (P@1, R@1) and set quality at the model's
//! thresholds (micro/macro F1, exact match, per-label binary accuracy, per-tag breakdown).
//!
//! Definitions (all over the evaluated rows):
//! - P@1: fraction of rows whose top-scored tag is one of their true tags.
//! - R@1: correct top-1 tags / all true tags (fastText's `test` definition: micro recall of the
//!   top-1 prediction, at most 1/(mean tags per row)).
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
    /// One entry per tag, in label order.
    pub per_tag: Vec<TagMetrics>,
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
        let mut row_exact = true;
        for (tag, &p) in row.iter().enumerate() {
            let predicted = thresholds.passes(tag, p, None);
            let truth = is_true(tag);
            if truth {
                support[tag] += 1;
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
        per_tag,
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
