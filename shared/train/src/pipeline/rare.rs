//! Tags on too few training rows to learn ([`crate::train::TrainConfig::min_tag_rows`]): the
//! network trains without an output unit for them, and the finished model gets one that always
//! answers the tag's training frequency. One example cannot teach a tag, yet each tag's output
//! unit costs a column of every step's forward pass, gradient and Adam update: so-html's 573
//! rows carry 883 tags, 590 of them on a single row.

use ndarray::{Array1, Array2};

use tagger_core::model::{Dense, Mlp};
use tagger_core::sparse::SparseRows;

use crate::error::{Error, Result};
use crate::teacher::SoftTargets;

/// Which tags train, and what the others answer.
#[derive(Debug)]
pub(super) struct RareTags {
    /// Old label index of each trained tag, ascending (trained index = position).
    kept: Vec<u32>,
    /// Trained index of each label, `None` for a left-out tag.
    trained: Vec<Option<u32>>,
    /// Log-odds of each label's training frequency, the left-out tags' constant logit.
    prior: Vec<f32>,
}

impl RareTags {
    /// The plan for tags on `count[t]` of `rows` training rows (every row the fit or the
    /// refit learns from: the label set's counts): tags on fewer than `min_rows` rows are left
    /// out. `None` when every tag stays, or when fewer than two would (nothing left to learn
    /// apart).
    pub(super) fn plan(count: &[u64], rows: usize, min_rows: usize) -> Option<Self> {
        let n_labels = count.len();
        let kept: Vec<u32> = (0..n_labels as u32)
            .filter(|&t| count[t as usize] >= min_rows as u64)
            .collect();
        if kept.len() == n_labels || kept.len() < 2 {
            return None;
        }
        let mut trained = vec![None; n_labels];
        for (new, &old) in kept.iter().enumerate() {
            trained[old as usize] = Some(new as u32);
        }
        let prior = count
            .iter()
            .map(|&c| {
                // Counts are at least 1 (labels come from training rows) and at most `rows`;
                // the clamp keeps a tag on every row finite.
                let p = (c as f64 / rows.max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln() as f32
            })
            .collect();
        Some(RareTags {
            kept,
            trained,
            prior,
        })
    }

    /// Tags that train.
    pub(super) fn n_trained(&self) -> usize {
        self.kept.len()
    }

    /// Tags left out.
    pub(super) fn n_left_out(&self) -> usize {
        self.trained.len() - self.kept.len()
    }

    /// `y` over the trained tags (left-out tags dropped; the order is kept, so rows stay sorted).
    pub(super) fn narrow(&self, y: &SparseRows) -> SparseRows {
        let mut out = SparseRows::with_capacity(y.len(), y.nnz());
        let mut row_buf = Vec::new();
        for row in y.iter() {
            row_buf.clear();
            row_buf.extend(row.iter().filter_map(|&t| self.trained[t as usize]));
            out.push_row(&row_buf);
        }
        out
    }

    /// A teacher's targets over the trained tags.
    pub(super) fn narrow_soft(&self, soft: &SoftTargets) -> SoftTargets {
        let mut out = SoftTargets::default();
        for (row, &w) in soft.rows.iter().zip(&soft.weight) {
            let row = row
                .iter()
                .filter_map(|&(t, p)| self.trained[t as usize].map(|n| (n, p)))
                .collect();
            out.push(row, w);
        }
        out
    }

    /// `model` (trained on the trained tags) with an output for every label: the trained ones'
    /// as they are, the left-out ones' with zero weights and their training frequency's
    /// log-odds as bias, so they rank below any trained tag with real evidence and never pass
    /// a threshold (the lowest is 0.05, a frequency of 1 in 20 training rows).
    pub(super) fn widen(&self, model: Mlp) -> Result<Mlp> {
        let mut layers = model.layers().to_vec();
        let last = layers
            .last_mut()
            .ok_or_else(|| Error::Training("a model without layers".into()))?;
        if last.weights.ncols() != self.kept.len() {
            return Err(Error::Training(format!(
                "the model has {} outputs, {} tags trained",
                last.weights.ncols(),
                self.kept.len()
            )));
        }
        let n = self.trained.len();
        let mut weights = Array2::<f32>::zeros((last.weights.nrows(), n));
        let mut bias = Array1::from(self.prior.clone());
        for (new, &old) in self.kept.iter().enumerate() {
            weights
                .column_mut(old as usize)
                .assign(&last.weights.column(new));
            bias[old as usize] = last.bias[new];
        }
        *last = Dense { weights, bias };
        Ok(Mlp::from_layers(layers)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagger_core::sparse::SparseRows;

    fn rows(r: &[&[u32]]) -> SparseRows {
        r.iter().copied().collect()
    }

    #[test]
    fn plans_only_when_some_but_not_all_tags_are_rare() {
        assert!(
            RareTags::plan(&[2, 2, 1, 1], 4, 1).is_none(),
            "nothing is rare"
        );
        let plan = RareTags::plan(&[2, 2, 1, 1], 4, 2).expect("tags 2 and 3 are rare");
        assert_eq!((plan.n_trained(), plan.n_left_out()), (2, 2));
        assert_eq!(plan.kept, vec![0, 1]);
        // One tag on two rows: nothing left to tell apart.
        assert!(RareTags::plan(&[2, 1, 1], 4, 2).is_none());
    }

    #[test]
    fn narrows_labels_and_soft_targets_to_the_trained_tags() {
        let y = rows(&[&[0, 1, 3], &[1, 3], &[0, 2]]);
        let plan = RareTags::plan(&[2, 2, 1, 2], 3, 2).expect("tag 2 is rare");
        assert_eq!(plan.narrow(&y), rows(&[&[0, 1, 2], &[1, 2], &[0]]));
        let mut soft = SoftTargets::default();
        soft.push(vec![(0, 0.5), (2, 0.25), (3, 0.75)], 0.3);
        let narrowed = plan.narrow_soft(&soft);
        assert_eq!(narrowed.rows, vec![vec![(0, 0.5), (2, 0.75)]]);
        assert_eq!(narrowed.weight, vec![0.3]);
    }

    #[test]
    fn widened_model_keeps_trained_logits_and_answers_the_prior_for_the_rest() {
        // Four training rows; tag 1 on one of them: left out at min_rows 2.
        let plan = RareTags::plan(&[3, 1, 3], 4, 2).expect("tag 1 is rare");
        let hidden = Dense {
            weights: Array2::from_shape_vec((3, 2), vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5]).unwrap(),
            bias: Array1::from(vec![0.1, -0.1]),
        };
        let out = Dense {
            weights: Array2::from_shape_vec((2, 2), vec![1.0, 2.0, 3.0, 4.0]).unwrap(),
            bias: Array1::from(vec![0.5, -0.5]),
        };
        let narrow = Mlp::from_layers(vec![hidden, out]).unwrap();
        let wide = plan.widen(narrow.clone()).unwrap();
        assert_eq!(wide.n_outputs(), 3);
        for features in [&[0u32][..], &[1, 2], &[]] {
            let (n, w) = (narrow.logits(features), wide.logits(features));
            assert_eq!((w[0], w[2]), (n[0], n[1]), "trained tags unchanged");
            // 1 of 4 rows: log(0.25 / 0.75).
            assert!((w[1] - (1.0f32 / 3.0).ln()).abs() < 1e-6, "{}", w[1]);
        }
        assert!(plan.widen(wide).is_err(), "a model of the wrong width");
    }
}
