//! Question in, high-confidence tags out: normalise (HTML, masking) -> tokenize -> forward ->
//! tags at or above their thresholds, most probable first; and on request the words behind them.
//!
//! A [`Predictor`] is built once per loaded artifact and owns everything a request needs,
//! including the explainer's prepared background (built on the first explanation, then kept),
//! so the Lambda, `tagger serve` and the CLI answer through one object.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::artifact::{Artifact, ModelInfo};
use crate::error::{Error, Result};
use crate::explain::{self, Explainer, TagExplanation, WordOptions};
use crate::labels::LabelSet;
use crate::model::sigmoid;
use crate::model::Mlp;
use crate::sparse::SparseRows;
use crate::text::{self, Masker};
use crate::thresholds::Thresholds;
use crate::tokenizer::Tokenizer;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictOptions {
    /// Replaces every tag's calibrated threshold.
    pub threshold: Option<f32>,
    /// At most this many tags (the most probable at or above threshold).
    pub top_k: Option<usize>,
    /// Include every tag's probability.
    pub scores: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Tags at or above their thresholds, most probable first.
    pub tags: Vec<String>,
    /// Probability of the returned tags, in the same order.
    pub probabilities: Vec<f32>,
    /// Every tag's probability, when asked for.
    pub scores: Option<BTreeMap<String, f32>>,
}

/// Words behind each tag of one question, with what is needed to draw the question coloured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionExplanation {
    pub tags: Vec<TagExplanation>,
    /// Per tag (same order): each token of the question with its attribution.
    pub tokens: Vec<Vec<(String, f64)>>,
}

/// What a model is: the one schema of `GET /model` and `tagger info --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSummary {
    pub version: String,
    pub trained_at: String,
    pub crate_version: String,
    pub source: String,
    pub data_sha256: String,
    pub rows: crate::artifact::RowCounts,
    pub labels: Vec<String>,
    pub features: usize,
    /// Hidden layer widths of the network as served.
    pub hidden: Vec<usize>,
    pub background_rows: usize,
    pub thresholds: ThresholdSummary,
    /// Headline test metrics.
    pub metrics: Option<crate::artifact::HeadlineMetrics>,
    /// Training's record: settings as trained, the full test report, the epoch history.
    pub training: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThresholdSummary {
    pub global: f32,
    pub per_tag: BTreeMap<String, f32>,
}

/// A loaded model, ready to answer.
#[derive(Debug)]
pub struct Predictor {
    info: ModelInfo,
    masker: Masker,
    tokenizer: Tokenizer,
    labels: LabelSet,
    model: Arc<Mlp>,
    thresholds: Thresholds,
    /// Per tag, a logit below which the probability is certainly under the tag's threshold
    /// ([`logit_floor`]): most tags of a question are far below theirs and skip the sigmoid.
    floors: Vec<f32>,
    background: SparseRows,
    /// Prepared on the first explanation: a cold start that only predicts never pays for it.
    explainer: OnceLock<std::result::Result<Explainer, ExplainerUnavailable>>,
}

/// Why the explainer could not be prepared (kept so every request gets the same answer).
#[derive(Clone, Debug)]
enum ExplainerUnavailable {
    NoBackground,
    Shape(String),
}

impl From<Artifact> for Predictor {
    fn from(a: Artifact) -> Self {
        let floors = (0..a.model.n_outputs())
            .map(|i| logit_floor(a.thresholds.get(i)))
            .collect();
        Predictor {
            info: a.info,
            masker: a.masker,
            tokenizer: a.tokenizer,
            labels: a.labels,
            model: Arc::new(a.model),
            floors,
            thresholds: a.thresholds,
            background: a.background,
            explainer: OnceLock::new(),
        }
    }
}

impl Predictor {
    pub fn new(artifact: Artifact) -> Self {
        artifact.into()
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn version(&self) -> &str {
        &self.info.version
    }

    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    pub fn model(&self) -> &Mlp {
        &self.model
    }

    pub fn background(&self) -> &SparseRows {
        &self.background
    }

    pub fn summary(&self) -> ModelSummary {
        let layers = self.model.layers();
        ModelSummary {
            version: self.info.version.clone(),
            trained_at: self.info.created_at.clone(),
            crate_version: self.info.crate_version.clone(),
            source: self.info.source.clone(),
            data_sha256: self.info.data_sha256.clone(),
            rows: self.info.rows.clone(),
            labels: self.labels.names().to_vec(),
            features: self.tokenizer.n_features(),
            hidden: layers[..layers.len() - 1]
                .iter()
                .map(|l| l.bias.len())
                .collect(),
            background_rows: self.background.len(),
            thresholds: ThresholdSummary {
                global: self.thresholds.global,
                per_tag: self
                    .labels
                    .names()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.clone(), self.thresholds.get(i)))
                    .collect(),
            },
            metrics: self.info.metrics.clone(),
            training: self.info.training(),
        }
    }

    /// A question after the model's normalisation, ready for the tokenizer.
    pub fn prepare<'a>(&self, question: &'a str) -> Result<Cow<'a, str>> {
        let prepared = text::prepare(&self.masker, question);
        if prepared.trim().is_empty() {
            return Err(Error::EmptyQuestion);
        }
        Ok(prepared)
    }

    /// Sparse features of a question as the model sees them.
    pub fn features(&self, question: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(&self.prepare(question)?))
    }

    pub fn predict(&self, question: &str, opts: &PredictOptions) -> Result<Prediction> {
        let features = self.features(question)?;
        Ok(self.predict_features(&features, opts))
    }

    pub fn predict_features(&self, features: &[u32], opts: &PredictOptions) -> Prediction {
        let logits = self.model.logits(features);
        let override_floor = opts.threshold.map(logit_floor);
        // Every tag's probability when scores are asked for; otherwise only those of tags whose
        // logit is not certainly below their threshold. Either way the decision is
        // `Thresholds::passes` on the same `sigmoid` value: the same tags and probabilities.
        let probs = opts.scores.then(|| logits.mapv(sigmoid));
        let mut picked: Vec<(usize, f32)> = logits
            .iter()
            .enumerate()
            .filter_map(|(i, &z)| {
                let p = match &probs {
                    Some(probs) => probs[i],
                    None if z < override_floor.unwrap_or(self.floors[i]) => return None,
                    None => sigmoid(z),
                };
                self.thresholds
                    .passes(i, p, opts.threshold)
                    .then_some((i, p))
            })
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
            scores: probs.map(|probs| {
                probs
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| (self.labels.name(i).to_owned(), p))
                    .collect()
            }),
        }
    }

    /// The prepared explainer (built on first use).
    pub fn explainer(&self) -> Result<&Explainer> {
        let prepared = self.explainer.get_or_init(|| {
            Explainer::new(Arc::clone(&self.model), &self.background).map_err(|e| match e {
                Error::NoBackground => ExplainerUnavailable::NoBackground,
                other => ExplainerUnavailable::Shape(other.to_string()),
            })
        });
        match prepared {
            Ok(explainer) => Ok(explainer),
            Err(ExplainerUnavailable::NoBackground) => Err(Error::NoBackground),
            Err(ExplainerUnavailable::Shape(found)) => Err(Error::Shape {
                what: "explainer",
                expected: "a network the explainer can prepare".into(),
                found: found.clone(),
            }),
        }
    }

    /// DeepSHAP attributions of `tags` (names; unknown names are skipped) for `question`,
    /// against the model's background rows.
    pub fn explain(
        &self,
        question: &str,
        tags: &[String],
        opts: &WordOptions,
    ) -> Result<QuestionExplanation> {
        let explainer = self.explainer()?;
        let prepared = self.prepare(question)?;
        let features = self.tokenizer.encode(&prepared);
        let outputs: Vec<usize> = tags
            .iter()
            .filter_map(|t| self.labels.index(t))
            .map(|i| i as usize)
            .collect();
        let attributions = explainer.shap_values(&features, &outputs)?;
        if self.tokenizer.has_subwords() {
            return Ok(self.explain_folded(&prepared, &features, &attributions, opts));
        }
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

impl Predictor {
    /// [`explain`](Self::explain)'s answer for a vocabulary with sub-words: their attributions
    /// folded into the question's words ([`explain::fold_subwords`]), so that explanations and
    /// token values name whole words, including words known only by their sub-words.
    fn explain_folded(
        &self,
        prepared: &str,
        features: &[u32],
        attributions: &[explain::Attribution],
        opts: &WordOptions,
    ) -> QuestionExplanation {
        let tokens = self.tokenizer.tokens(prepared);
        let mut words: Vec<explain::FoldWord> = Vec::new();
        let mut place: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for t in &tokens {
            place.entry(t.as_ref()).or_insert_with(|| {
                words.push(explain::FoldWord {
                    word: t.to_string(),
                    feature: self.tokenizer.feature_index(t),
                    subwords: self.tokenizer.subword_features(t),
                });
                words.len() - 1
            });
        }
        let first_free = self.tokenizer.n_features() as u32;
        let mut tags = Vec::with_capacity(attributions.len());
        let mut token_values = Vec::with_capacity(attributions.len());
        for a in attributions {
            let (folded, extra) = explain::fold_subwords(a, &words, first_free);
            let mut present = features.to_vec();
            present.extend(extra.iter().map(|(k, _)| *k));
            let name = |f: u32| match f.checked_sub(first_free) {
                Some(_) => extra.iter().find(|(k, _)| *k == f).map(|(_, w)| w.clone()),
                None => self.tokenizer.feature_name(f).map(str::to_owned),
            };
            tags.push(explain::explain_words(
                &folded,
                self.labels.name(a.output).to_owned(),
                name,
                &present,
                opts,
            ));
            token_values.push(
                tokens
                    .iter()
                    .map(|t| {
                        let i = place[t.as_ref()];
                        let key = words[i].feature.unwrap_or(first_free + i as u32);
                        (t.to_string(), folded.value(key))
                    })
                    .collect(),
            );
        }
        QuestionExplanation {
            tags,
            tokens: token_values,
        }
    }
}

/// A logit below which `sigmoid` is certainly under `threshold`: the threshold's logit less 0.5,
/// far beyond any rounding of the f32 `sigmoid` (it moves the probability by more than
/// 0.1 · t · (1 - t), which is at least 1e-5 for the thresholds this applies to). Thresholds
/// outside [1e-4, 1 - 1e-4] (or not finite) get no floor, since f32 `sigmoid` saturates there.
fn logit_floor(threshold: f32) -> f32 {
    let t = f64::from(threshold);
    if (1e-4..=1.0 - 1e-4).contains(&t) {
        ((t / (1.0 - t)).ln() - 0.5) as f32
    } else {
        f32::NEG_INFINITY
    }
}
