//! Question in, high-confidence tags out: normalise (HTML, masking) -> tokenize -> forward ->
//! tags above their thresholds, most probable first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::error::{Error, Result};
use crate::text;

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
pub fn prepare(artifact: &Artifact, question: &str) -> Result<String> {
    let plain = text::normalise(question);
    let masked = artifact.masker.mask(&plain);
    if masked.trim().is_empty() {
        return Err(Error::EmptyQuestion);
    }
    Ok(masked.into_owned())
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
            tags: picked.iter().map(|&(i, _)| self.labels.name(i).to_owned()).collect(),
            probabilities: picked.iter().map(|&(_, p)| p).collect(),
            scores: opts
                .scores
                .then(|| probs.iter().enumerate().map(|(i, &p)| (self.labels.name(i).to_owned(), p)).collect()),
        }
    }
}
