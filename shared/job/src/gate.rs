//! The quality gate: may a freshly trained candidate replace the live model?
//!
//! An upload chooses its own held-out rows, so scores on them alone prove little: labels that
//! are noise can be "learned" exactly as well as a constant answer, and repeated rows land on
//! both sides of the split. The gate therefore measures the candidate against things the upload
//! does not control, and every number it uses goes into the report ([`Gate`]):
//!
//! | check | rule (defaults in [`GateLimits`]) |
//! |---|---|
//! | `min_micro_f1` | candidate micro-F1 on its own test rows ≥ 0.10 |
//! | `no_skill_baseline` | candidate micro-F1 on its own test rows ≥ the no-skill baseline's + 0.05 |
//! | `distinct_texts` | distinct question texts / rows ≥ 0.5 |
//! | `live_reference` | candidate ≥ live model − 0.02, both on the live version's reference set |
//! | `live_on_upload` | candidate ≥ live model − 0.02, both on the upload's test rows: only when the live version has no reference set |
//! | `label_mass` | ≥ 50% of the live model's training tag occurrences carry a tag the candidate predicts |
//!
//! The last three apply only when a live model exists (and loads). The live model's score on
//! the upload's test rows is always reported, but it decides only when there is no reference
//! set: an upload that adds rows to the live model's data has test rows the live model was
//! trained on, where it scores above its true level (so-titles, 2 epochs: 0.666 on such rows
//! against 0.604 on its own held-out rows), so the honest "more data" upload would be refused.
//! The reference rows were held out from the live model. `"force": true` in the sidecar
//! publishes whatever the checks say; the report still lists them.
//!
//! Micro-F1 here counts every tag of every row: a tag the model cannot predict is a miss, so a
//! candidate that knows two of the reference set's hundred tags cannot look good by ignoring the
//! other ninety-eight.
//!
//! The **no-skill baseline** answers every question with the same tags: the `k` most frequent
//! tags of the candidate's training rows, `k` chosen to maximise micro-F1 on those training
//! rows (predicting the top `k` for `n` rows with `m` tag occurrences of which the top `k`
//! cover `c` gives `2c / (k·n + m)`). It is scored on the candidate's test rows like the
//! candidate. It is the best any model can do without reading the question, so a model that
//! does not clearly beat it has learned nothing from the text (labels by row parity: both
//! reach 0.667; one tag set on every row: the baseline reaches 1.0).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use tagger_core::labels::LabelSet;
use tagger_core::{PredictOptions, Predictor};
use tagger_registry::registry::ReferenceRow;

/// The thresholds of the checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateLimits {
    pub min_micro_f1: f64,
    pub max_regression: f64,
    pub min_skill_margin: f64,
    pub min_label_mass: f64,
    pub min_distinct_fraction: f64,
}

/// Micro-F1 with its counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub micro_f1: f64,
    pub true_positives: u64,
    pub predicted: u64,
    pub actual: u64,
}

impl Score {
    fn of(tp: u64, predicted: u64, actual: u64) -> Score {
        let denominator = predicted + actual;
        Score {
            micro_f1: if denominator == 0 {
                0.0
            } else {
                2.0 * tp as f64 / denominator as f64
            },
            true_positives: tp,
            predicted,
            actual,
        }
    }
}

/// The best constant answer learnt from the training rows, and its score on the test rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// How many tags it answers with.
    pub k: usize,
    /// The first (at most 20) of them, most frequent first.
    pub tags: Vec<String>,
    /// Its micro-F1 on the training rows it was chosen on.
    pub train_micro_f1: f64,
    pub test: Score,
}

/// Both models on the live version's reference set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceScores {
    pub version: String,
    pub rows: usize,
    pub candidate: Score,
    pub live: Score,
}

/// One rule of the gate as applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    /// The measured value and the limit it was held to.
    pub value: f64,
    pub limit: f64,
    pub detail: String,
}

/// Everything the gate measured and decided; `reports/<key>.json`'s `gate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gate {
    pub min_micro_f1: f64,
    pub max_regression: f64,
    pub min_skill_margin: f64,
    pub min_label_mass: f64,
    pub min_distinct_fraction: f64,
    pub rows: Option<u64>,
    pub distinct_texts: Option<u64>,
    pub distinct_fraction: Option<f64>,
    /// The candidate on its own test rows.
    pub candidate: Option<Score>,
    pub baseline: Option<Baseline>,
    /// The live model on the candidate's test rows.
    pub live: Option<Score>,
    pub reference: Option<ReferenceScores>,
    /// Share of the live model's training tag occurrences whose tag the candidate predicts.
    pub label_mass: Option<f64>,
    pub checks: Vec<Check>,
}

impl Gate {
    pub fn new(limits: &GateLimits) -> Gate {
        Gate {
            min_micro_f1: limits.min_micro_f1,
            max_regression: limits.max_regression,
            min_skill_margin: limits.min_skill_margin,
            min_label_mass: limits.min_label_mass,
            min_distinct_fraction: limits.min_distinct_fraction,
            ..Gate::default()
        }
    }

    fn limits(&self) -> GateLimits {
        GateLimits {
            min_micro_f1: self.min_micro_f1,
            max_regression: self.max_regression,
            min_skill_margin: self.min_skill_margin,
            min_label_mass: self.min_label_mass,
            min_distinct_fraction: self.min_distinct_fraction,
        }
    }

    /// Recomputes `checks` from the numbers measured so far.
    pub fn decide(&mut self) {
        let l = self.limits();
        let mut checks = Vec::new();
        let mut check = |name: &str, value: f64, limit: f64, detail: String| {
            checks.push(Check {
                name: name.into(),
                // NaN never passes.
                passed: value >= limit,
                value,
                limit,
                detail,
            })
        };
        if let Some(c) = &self.candidate {
            check(
                "min_micro_f1",
                c.micro_f1,
                l.min_micro_f1,
                format!(
                    "test micro-F1 {:.4} must be at least {:.4}",
                    c.micro_f1, l.min_micro_f1
                ),
            );
            if let Some(b) = &self.baseline {
                let limit = b.test.micro_f1 + l.min_skill_margin;
                check(
                    "no_skill_baseline",
                    c.micro_f1,
                    limit,
                    format!(
                        "test micro-F1 {:.4} must beat {:.4}, what answering every question with the {} most frequent training tags scores, by {:.4}",
                        c.micro_f1, b.test.micro_f1, b.k, l.min_skill_margin
                    ),
                );
            }
            if let (Some(live), None) = (&self.live, &self.reference) {
                let limit = live.micro_f1 - l.max_regression;
                check(
                    "live_on_upload",
                    c.micro_f1,
                    limit,
                    format!(
                        "test micro-F1 {:.4} is worse than the live model's {:.4} on the same test rows by more than {:.4}",
                        c.micro_f1, live.micro_f1, l.max_regression
                    ),
                );
            }
        }
        if let (Some(frac), Some(distinct), Some(rows)) =
            (self.distinct_fraction, self.distinct_texts, self.rows)
        {
            check(
                "distinct_texts",
                frac,
                l.min_distinct_fraction,
                format!(
                    "only {distinct} of {rows} rows ({:.1}%) have distinct text; at least {:.0}% must (repeated rows fall on both sides of the test split)",
                    frac * 100.0,
                    l.min_distinct_fraction * 100.0
                ),
            );
        }
        if let Some(r) = &self.reference {
            let limit = r.live.micro_f1 - l.max_regression;
            check(
                "live_reference",
                r.candidate.micro_f1,
                limit,
                format!(
                    "on the live version {}'s {} reference rows the candidate scores micro-F1 {:.4} against the live model's {:.4}: a drop of more than {:.4}",
                    r.version, r.rows, r.candidate.micro_f1, r.live.micro_f1, l.max_regression
                ),
            );
        }
        if let Some(mass) = self.label_mass {
            check(
                "label_mass",
                mass,
                l.min_label_mass,
                format!(
                    "the candidate predicts the tags of only {:.1}% of the live model's training tag occurrences; at least {:.0}% needs no force",
                    mass * 100.0,
                    l.min_label_mass * 100.0
                ),
            );
        }
        self.checks = checks;
    }

    /// The failed checks' explanations, or `None` when all passed.
    pub fn failures(&self) -> Option<String> {
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} ({})", c.detail, c.name))
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

/// Distinct texts among `texts`, compared after trimming, lowercasing and collapsing
/// whitespace (so a row repeated with different spacing or case counts once).
pub fn distinct_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> (u64, u64) {
    let mut seen = HashSet::new();
    let mut rows = 0u64;
    for t in texts {
        rows += 1;
        let norm: String = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        seen.insert(norm);
    }
    (seen.len() as u64, rows)
}

/// Micro-F1 of `model` on `rows`, every gold tag counted (see the module docs).
pub fn score(model: &Predictor, rows: &[ReferenceRow]) -> Score {
    let opts = PredictOptions::default();
    let (mut tp, mut predicted, mut actual) = (0u64, 0u64, 0u64);
    for row in rows {
        let gold: HashSet<&str> = row.tags.iter().map(String::as_str).collect();
        actual += gold.len() as u64;
        // A row whose text normalises to nothing gets no tags, as predict would answer.
        let Ok(features) = model.features(&row.text) else {
            continue;
        };
        let tags = model.predict_features(&features, &opts).tags;
        predicted += tags.len() as u64;
        tp += tags.iter().filter(|t| gold.contains(t.as_str())).count() as u64;
    }
    Score::of(tp, predicted, actual)
}

/// The no-skill baseline of the module docs: chosen on the training label counts (`labels`,
/// over `train_rows` rows), scored on `test`.
pub fn baseline(labels: &LabelSet, train_rows: u64, test: &[ReferenceRow]) -> Option<Baseline> {
    if labels.is_empty() || train_rows == 0 {
        return None;
    }
    let mut by_freq: Vec<(u64, &str)> = labels
        .counts()
        .iter()
        .zip(labels.names())
        .map(|(&c, n)| (c, n.as_str()))
        .collect();
    by_freq.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let occurrences: u64 = by_freq.iter().map(|(c, _)| c).sum();
    let (mut best_k, mut best_f1, mut covered) = (1, f64::MIN, 0u64);
    for (i, (c, _)) in by_freq.iter().enumerate() {
        covered += c;
        let k = i as u64 + 1;
        let f1 = 2.0 * covered as f64 / (k * train_rows + occurrences) as f64;
        if f1 > best_f1 {
            (best_k, best_f1) = (i + 1, f1);
        }
    }
    let answer: HashSet<&str> = by_freq[..best_k].iter().map(|(_, n)| *n).collect();
    let (mut tp, mut actual) = (0u64, 0u64);
    for row in test {
        let gold: HashSet<&str> = row.tags.iter().map(String::as_str).collect();
        actual += gold.len() as u64;
        tp += gold.iter().filter(|t| answer.contains(*t)).count() as u64;
    }
    Some(Baseline {
        k: best_k,
        tags: by_freq[..best_k.min(20)]
            .iter()
            .map(|(_, n)| (*n).to_owned())
            .collect(),
        train_micro_f1: best_f1,
        test: Score::of(tp, (best_k * test.len()) as u64, actual),
    })
}

/// Share of `live`'s training tag occurrences whose tag is in `candidate` and `predictable` there
/// (by index in `candidate`; a tag trained without an output unit is named but never predicted).
pub fn label_mass(live: &LabelSet, candidate: &LabelSet, predictable: impl Fn(u32) -> bool) -> f64 {
    let total: u64 = live.counts().iter().sum();
    if total == 0 {
        return 1.0;
    }
    let kept: u64 = live
        .names()
        .iter()
        .zip(live.counts())
        .filter(|(n, _)| candidate.index(n).is_some_and(&predictable))
        .map(|(_, c)| c)
        .sum();
    kept as f64 / total as f64
}

/// Tag name -> occurrences, for tests and reports.
pub fn tag_counts(rows: &[ReferenceRow]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in rows {
        for t in &r.tags {
            *out.entry(t.clone()).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tags: &[&str], text: &str) -> ReferenceRow {
        ReferenceRow {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            text: text.into(),
        }
    }

    fn labels(pairs: &[(&str, u64)]) -> LabelSet {
        let mut pairs = pairs.to_vec();
        pairs.sort();
        LabelSet::from_parts(
            pairs.iter().map(|p| p.0.to_string()).collect(),
            pairs.iter().map(|p| p.1).collect(),
        )
        .unwrap()
    }

    #[test]
    fn baseline_of_parity_labels_answers_both_and_scores_two_thirds() {
        // Half the rows java, half python: answering both gives 2n/(2n+n).
        let l = labels(&[("java", 50), ("python", 50)]);
        let test: Vec<_> = (0..10)
            .map(|i| row(&[if i % 2 == 0 { "java" } else { "python" }], "x"))
            .collect();
        let b = baseline(&l, 100, &test).unwrap();
        assert_eq!(b.k, 2);
        assert!((b.test.micro_f1 - 2.0 / 3.0).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn baseline_of_one_tag_set_everywhere_is_perfect() {
        let tags: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        let l = labels(&tags.iter().map(|t| (t.as_str(), 10)).collect::<Vec<_>>());
        let refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        let b = baseline(&l, 10, &[row(&refs, "x"), row(&refs, "y")]).unwrap();
        assert_eq!((b.k, b.test.micro_f1), (50, 1.0));
    }

    #[test]
    fn baseline_keeps_the_frequent_tags_only() {
        // 100 rows: a on 90, b on 10, c on 5. k=1: 180/(100+105)=0.878; k=2: 200/(200+105).
        let l = labels(&[("a", 90), ("b", 10), ("c", 5)]);
        let b = baseline(&l, 100, &[row(&["a"], "x"), row(&["b"], "y")]).unwrap();
        assert_eq!((b.k, b.tags.as_slice()), (1, &["a".to_string()][..]));
        assert!((b.train_micro_f1 - 180.0 / 205.0).abs() < 1e-12);
        // test: predicted a twice, gold a and b: tp 1 -> 2/(2+2).
        assert_eq!(b.test.micro_f1, 0.5);
    }

    #[test]
    fn label_mass_weighs_tags_by_training_occurrences() {
        let live = labels(&[("java", 30), ("python", 10), ("rust", 60)]);
        let all = |_| true;
        assert_eq!(
            label_mass(&live, &labels(&[("java", 1), ("python", 1)]), all),
            0.4
        );
        assert_eq!(
            label_mass(&live, &labels(&[("rust", 1), ("go", 1)]), all),
            0.6
        );
        // A tag the candidate knows but never predicts (trained without an output unit) is not
        // kept: "rust" is index 1 of ["go", "rust"].
        assert_eq!(
            label_mass(&live, &labels(&[("rust", 1), ("go", 1)]), |i| i != 1),
            0.0
        );
    }

    #[test]
    fn distinct_texts_ignore_case_and_spacing() {
        let (d, n) = distinct_texts(["How do I x", "how  do i X ", "other"]);
        assert_eq!((d, n), (2, 3));
    }

    #[test]
    fn every_failed_check_is_reported_with_its_numbers() {
        let mut g = Gate::new(&GateLimits {
            min_micro_f1: 0.1,
            max_regression: 0.02,
            min_skill_margin: 0.05,
            min_label_mass: 0.5,
            min_distinct_fraction: 0.5,
        });
        g.candidate = Some(Score::of(2, 3, 3));
        g.baseline = Some(Baseline {
            k: 2,
            test: Score::of(2, 3, 3),
            ..Baseline::default()
        });
        g.label_mass = Some(0.04);
        g.rows = Some(100);
        g.distinct_texts = Some(90);
        g.distinct_fraction = Some(0.9);
        g.decide();
        let failed: Vec<&str> = g
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["no_skill_baseline", "label_mass"]);
        let why = g.failures().unwrap();
        assert!(why.contains("0.6667") && why.contains("4.0%"), "{why}");
        g.candidate = Some(Score {
            micro_f1: f64::NAN,
            ..Score::default()
        });
        g.decide();
        assert!(!g.checks[0].passed, "NaN never passes");
    }
}
