//! Question in, high-confidence tags out: normalise (HTML, masking) -> tokenize -> forward ->
//! tags above their thresholds, most probable first.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::explain::{self, WordOptions};
use crate::pipeline;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictOptions {
    /// Replaces every tag's calibrated threshold.
    pub threshold: Option<f32>,
    /// At most this many tags (the most probable above threshold).
    pub top_k: Option<usize>,
    /// Include every tag's probability.
    pub scores: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Tags above their thresholds, most probable first.
    pub tags: Vec<String>,
    /// Probability of the returned tags, in the same order.
    pub probabilities: Vec<f32>,
    /// Every tag's probability, when asked for.
    pub scores: Option<BTreeMap<String, f32>>,
}

/// A question after the artifact's normalisation, ready for the tokenizer.
pub fn prepare<'a>(artifact: &Artifact, question: &'a str) -> Result<Cow<'a, str>> {
    // The training pipeline's own normalisation, so questions and training rows match; it
    // borrows the question when nothing changes (no allocation on the hot path).
    let prepared = pipeline::prepare_text(&artifact.masker, question);
    if prepared.trim().is_empty() {
        return Err(Error::EmptyQuestion);
    }
    Ok(prepared)
}

impl Artifact {
    /// Sparse features of a question as the model sees them.
    pub fn features(&self, question: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(&prepare(self, question)?))
    }

    pub fn predict(&self, question: &str, opts: &PredictOptions) -> Result<Prediction> {
        let features = self.features(question)?;
        Ok(self.predict_features(&features, opts))
    }

    pub fn predict_features(&self, features: &[u32], opts: &PredictOptions) -> Prediction {
        let probs = self.model.predict_proba(features);
        let mut picked: Vec<(usize, f32)> = probs
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p > opts.threshold.unwrap_or_else(|| self.thresholds.get(i)))
            .map(|(i, &p)| (i, p))
            .collect();
        picked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = opts.top_k {
            picked.truncate(k);
        }
        Prediction {
            tags: picked
                .iter()
                .map(|&(i, _)| self.labels.name(i).to_owned())
                .collect(),
            probabilities: picked.iter().map(|&(_, p)| p).collect(),
            scores: opts.scores.then(|| {
                probs
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| (self.labels.name(i).to_owned(), p))
                    .collect()
            }),
        }
    }
}

/// Words behind each tag of one question, with what is needed to draw the question coloured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionExplanation {
    pub tags: Vec<explain::TagExplanation>,
    /// Per tag (same order): each token of the question with its attribution.
    pub tokens: Vec<Vec<(String, f64)>>,
}

impl Artifact {
    /// DeepSHAP attributions of `tags` (names; unknown names are skipped) for `question`,
    /// against the artifact's background rows.
    pub fn explain(
        &self,
        question: &str,
        tags: &[String],
        opts: &WordOptions,
    ) -> Result<QuestionExplanation> {
        if self.background.is_empty() {
            return Err(Error::NoBackground);
        }
        let prepared = prepare(self, question)?;
        let features = self.tokenizer.encode(&prepared);
        let outputs: Vec<usize> = tags
            .iter()
            .filter_map(|t| self.labels.index(t))
            .map(|i| i as usize)
            .collect();
        let attributions =
            explain::shap_values(&self.model, &self.background, &features, &outputs)?;
        let feature_name = |f: u32| self.tokenizer.feature_name(f).map(str::to_owned);
        let explained = explain::explain_tags(
            &attributions,
            |o| self.labels.name(o).to_owned(),
            feature_name,
            &features,
            opts,
        );
        let tokens = self.tokenizer.tokens(&prepared);
        let token_values = attributions
            .iter()
            .map(|a| explain::token_values(&tokens, a, |t| self.tokenizer.feature_index(t)))
            .collect();
        Ok(QuestionExplanation {
            tags: explained,
            tokens: token_values,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sparse::SparseRows;
    use crate::test_support::tiny_artifact;

    const RUST_QUESTION: &str = "How do I fix the borrow checker error in my cargo build?";
    const UNKNOWN_WORDS: &str = "zzyzx qwertyuiop xylophonic";

    fn all_tags(a: &Artifact) -> Vec<String> {
        a.labels.names().to_vec()
    }

    fn scores_of(a: &Artifact, q: &str) -> BTreeMap<String, f32> {
        let opts = PredictOptions {
            scores: true,
            ..PredictOptions::default()
        };
        a.predict(q, &opts).unwrap().scores.unwrap()
    }

    #[test]
    fn explain_rejects_an_empty_question() {
        let a = tiny_artifact();
        for q in ["", "   \n\t", "<p></p>"] {
            let err = a
                .explain(q, &all_tags(&a), &WordOptions::default())
                .unwrap_err();
            assert!(matches!(err, Error::EmptyQuestion), "{q:?}: {err:?}");
        }
    }

    #[test]
    fn explain_of_unknown_words_names_no_words_and_stays_additive() {
        let a = tiny_artifact();
        let tags = all_tags(&a);
        let explained = a
            .explain(UNKNOWN_WORDS, &tags, &WordOptions::default())
            .unwrap();
        assert_eq!(explained.tags.len(), tags.len());
        for (t, tokens) in explained.tags.iter().zip(&explained.tokens) {
            assert!(t.positive.is_empty(), "{}: {:?}", t.tag, t.positive);
            assert!(t.negative.is_empty(), "{}: {:?}", t.tag, t.negative);
            assert!(tokens.iter().all(|(_, v)| *v == 0.0), "{tokens:?}");
        }

        let features = a.features(UNKNOWN_WORDS).unwrap();
        assert!(features.is_empty(), "{features:?}");
        let outputs: Vec<usize> = (0..a.labels.len()).collect();
        let probs = a.model.predict_proba(&features);
        let attributions =
            explain::shap_values(&a.model, &a.background, &features, &outputs).unwrap();
        for (attr, t) in attributions.iter().zip(&explained.tags) {
            let sum: f64 = attr.features.iter().map(|&(_, v)| v).sum();
            assert!(
                (sum - (attr.probability - attr.expected_value)).abs() <= 1e-6,
                "{}: sum {sum}, p {} - E {}",
                t.tag,
                attr.probability,
                attr.expected_value
            );
            assert!((attr.probability - f64::from(probs[attr.output])).abs() <= 1e-5);
            assert_eq!(t.probability, attr.probability);
            assert_eq!(t.expected_value, attr.expected_value);
        }
    }

    #[test]
    fn explain_without_background_rows_is_a_specific_error() {
        let mut a = tiny_artifact();
        a.background = SparseRows::new();
        let err = a
            .explain(RUST_QUESTION, &all_tags(&a), &WordOptions::default())
            .unwrap_err();
        assert!(matches!(err, Error::NoBackground), "{err:?}");
        // Prediction does not need the background.
        assert!(a.predict(RUST_QUESTION, &PredictOptions::default()).is_ok());
    }

    #[test]
    fn explain_skips_unknown_tag_names() {
        let a = tiny_artifact();
        let tags = vec!["no-such-tag".to_owned(), "rust".to_owned()];
        let explained = a
            .explain(RUST_QUESTION, &tags, &WordOptions::default())
            .unwrap();
        let named: Vec<&str> = explained.tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(named, ["rust"]);
        assert!(
            explained.tags[0]
                .positive
                .iter()
                .any(|w| ["borrow", "checker", "cargo"].contains(&w.word.as_str())),
            "{:?}",
            explained.tags[0].positive
        );
    }

    #[test]
    fn a_title_starting_like_a_tag_is_answered() {
        // A so-titles test title (../shared/data/so-titles/test.csv): plain text, not markup.
        let a = tiny_artifact();
        let q = "<script type=\"x-text/handlebars\" always becomes an 'ember-view' as a div - how to make it a span?";
        a.predict(q, &PredictOptions::default()).unwrap();
        assert!(prepare(&a, q).unwrap().contains("handlebars"));
    }

    #[test]
    fn predict_rejects_an_empty_question() {
        let a = tiny_artifact();
        let err = a.predict("  ", &PredictOptions::default()).unwrap_err();
        assert!(matches!(err, Error::EmptyQuestion), "{err:?}");
    }

    #[test]
    fn default_predict_returns_tags_above_their_own_thresholds_most_probable_first() {
        let a = tiny_artifact();
        let scores = scores_of(&a, RUST_QUESTION);
        let p = a
            .predict(RUST_QUESTION, &PredictOptions::default())
            .unwrap();
        assert!(p.scores.is_none());
        let expected: BTreeSet<&str> = scores
            .iter()
            .filter(|(t, &s)| {
                let i = a.labels.index(t).unwrap() as usize;
                s > a.thresholds.get(i)
            })
            .map(|(t, _)| t.as_str())
            .collect();
        let got: BTreeSet<&str> = p.tags.iter().map(String::as_str).collect();
        assert_eq!(got, expected);
        assert!(p.tags.contains(&"rust".to_owned()), "{p:?}");
        assert!(p.probabilities.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
        for (t, prob) in p.tags.iter().zip(&p.probabilities) {
            assert_eq!(scores[t], *prob);
        }
    }

    #[test]
    fn scores_option_reports_every_label() {
        let a = tiny_artifact();
        let scores = scores_of(&a, RUST_QUESTION);
        let keys: BTreeSet<&str> = scores.keys().map(String::as_str).collect();
        let labels: BTreeSet<&str> = a.labels.names().iter().map(String::as_str).collect();
        assert_eq!(keys, labels);
        assert!(scores.values().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn threshold_override_changes_the_returned_set() {
        let a = tiny_artifact();
        let scores = scores_of(&a, RUST_QUESTION);
        let with = |t: f32| {
            a.predict(
                RUST_QUESTION,
                &PredictOptions {
                    threshold: Some(t),
                    ..PredictOptions::default()
                },
            )
            .unwrap()
        };
        assert_eq!(with(-1.0).tags.len(), a.labels.len());
        assert!(with(1.0).tags.is_empty());
        // Between the two highest scores only the best tag passes.
        let mut sorted: Vec<(&String, f32)> = scores.iter().map(|(t, &s)| (t, s)).collect();
        sorted.sort_by(|x, y| y.1.total_cmp(&x.1));
        let mid = (sorted[0].1 + sorted[1].1) / 2.0;
        assert!(sorted[0].1 > mid && sorted[1].1 < mid, "{sorted:?}");
        assert_eq!(with(mid).tags, [sorted[0].0.clone()]);
    }

    #[test]
    fn top_k_keeps_only_the_most_probable_tags() {
        let a = tiny_artifact();
        let everything = PredictOptions {
            threshold: Some(-1.0),
            ..PredictOptions::default()
        };
        let all = a.predict(RUST_QUESTION, &everything).unwrap();
        for k in [0, 1, 2] {
            let p = a
                .predict(
                    RUST_QUESTION,
                    &PredictOptions {
                        top_k: Some(k),
                        ..everything.clone()
                    },
                )
                .unwrap();
            assert_eq!(p.tags, all.tags[..k]);
            assert_eq!(p.probabilities, all.probabilities[..k]);
        }
        let many = PredictOptions {
            top_k: Some(100),
            ..everything.clone()
        };
        assert_eq!(a.predict(RUST_QUESTION, &many).unwrap(), all);
    }
}
