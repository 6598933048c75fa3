//! Decision thresholds: a tag is predicted when its probability is `>=` its threshold.
//!
//! How they are chosen (calibration on validation rows) is training's business
//! (`tagger_train::calibrate`); serving, metrics and the quality gate all apply them through
//! [`Thresholds::passes`], so the rule measured is the rule served.

use serde::{Deserialize, Serialize};

/// A tag is predicted when its probability is `>= get(tag)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The shared threshold (and the one used for tags beyond `per_tag`).
    pub global: f32,
    /// One threshold per tag.
    pub per_tag: Vec<f32>,
}

impl Thresholds {
    pub fn fixed(t: f32, n_labels: usize) -> Thresholds {
        Thresholds {
            global: t,
            per_tag: vec![t; n_labels],
        }
    }

    pub fn get(&self, tag: usize) -> f32 {
        self.per_tag.get(tag).copied().unwrap_or(self.global)
    }

    /// The one decision rule: `p >= threshold`, with `overridden` replacing every tag's threshold.
    #[inline]
    pub fn passes(&self, tag: usize, p: f32, overridden: Option<f32>) -> bool {
        p >= overridden.unwrap_or_else(|| self.get(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probability_equal_to_the_threshold_passes() {
        let t = Thresholds {
            global: 0.5,
            per_tag: vec![0.3, 0.7],
        };
        assert!(t.passes(0, 0.3, None));
        assert!(!t.passes(0, 0.29, None));
        assert!(!t.passes(1, 0.69, None));
        assert!(
            t.passes(2, 0.5, None),
            "tags beyond per_tag use the global threshold"
        );
        assert!(t.passes(1, 0.2, Some(0.2)));
    }
}
