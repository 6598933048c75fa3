//! Global summary: mean absolute attribution per word and tag over many questions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Explainer, WordAttribution};
use crate::error::Result;
use crate::sparse::SparseRows;

/// Mean absolute attribution of the most important words over a sample of questions, like the
/// data behind shap's summary bar plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of questions averaged over.
    pub questions: usize,
    /// Tag names, one per summarised output.
    pub tags: Vec<String>,
    /// The most important words over all tags (by the sum of their per-tag means), strongest first.
    pub features: Vec<FeatureImportance>,
    /// Per tag, its most important words, strongest first.
    pub per_tag: Vec<TagImportance>,
}

/// One word's mean absolute attribution to each summarised tag (aligned with [`Summary::tags`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: u32,
    pub word: String,
    pub mean_abs: Vec<f64>,
}

impl FeatureImportance {
    pub fn total(&self) -> f64 {
        self.mean_abs.iter().sum()
    }
}

/// A tag's most important words; `value` is the mean absolute attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagImportance {
    pub tag: String,
    pub words: Vec<WordAttribution>,
}

/// Mean |attribution| per word and tag over the questions in `rows`, keeping the `top_n` words
/// overall and per tag. Words `feature_name` cannot name are left out; ties go to the lower index.
pub fn summary(
    explainer: &Explainer,
    rows: &SparseRows,
    outputs: &[usize],
    tag_name: impl Fn(usize) -> String,
    feature_name: impl Fn(u32) -> Option<String>,
    top_n: usize,
) -> Result<Summary> {
    let m = outputs.len();
    // BTreeMap: deterministic order, and only features that ever contribute are held.
    let mut totals: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for x in rows.iter() {
        for (k, attr) in explainer.shap_values(x, outputs)?.iter().enumerate() {
            for &(f, v) in &attr.features {
                totals.entry(f).or_insert_with(|| vec![0.0; m])[k] += v.abs();
            }
        }
    }
    let n = rows.len().max(1) as f64;
    let named: Vec<FeatureImportance> = totals
        .into_iter()
        .filter_map(|(feature, sums)| {
            feature_name(feature).map(|word| FeatureImportance {
                feature,
                word,
                mean_abs: sums.into_iter().map(|s| s / n).collect(),
            })
        })
        .collect();

    let mut overall: Vec<&FeatureImportance> = named.iter().collect();
    overall.sort_by(|a, b| {
        b.total()
            .total_cmp(&a.total())
            .then(a.feature.cmp(&b.feature))
    });
    let features = overall.into_iter().take(top_n).cloned().collect();

    let tags: Vec<String> = outputs.iter().map(|&o| tag_name(o)).collect();
    let per_tag = tags
        .iter()
        .enumerate()
        .map(|(k, tag)| {
            let mut ranked: Vec<&FeatureImportance> =
                named.iter().filter(|f| f.mean_abs[k] > 0.0).collect();
            ranked.sort_by(|a, b| {
                b.mean_abs[k]
                    .total_cmp(&a.mean_abs[k])
                    .then(a.feature.cmp(&b.feature))
            });
            TagImportance {
                tag: tag.clone(),
                words: ranked
                    .into_iter()
                    .take(top_n)
                    .map(|f| WordAttribution {
                        word: f.word.clone(),
                        value: f.mean_abs[k],
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Summary {
        questions: rows.len(),
        tags,
        features,
        per_tag,
    })
}
