//! The predictor's options, explanations and error paths on a tiny trained model.

use std::collections::{BTreeMap, BTreeSet};

use tagger_core::artifact::Artifact;
use tagger_core::explain::WordOptions;
use tagger_core::predictor::{PredictOptions, Predictor};
use tagger_core::sparse::SparseRows;
use tagger_core::Error;

fn tiny_artifact() -> Predictor {
    tagger_testkit::tiny_predictor(1)
}

const RUST_QUESTION: &str = "How do I fix the borrow checker error in my cargo build?";
const UNKNOWN_WORDS: &str = "zzyzx qwertyuiop xylophonic";

fn all_tags(a: &Predictor) -> Vec<String> {
    a.labels().names().to_vec()
}

fn scores_of(a: &Predictor, q: &str) -> BTreeMap<String, f32> {
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
    let outputs: Vec<usize> = (0..a.labels().len()).collect();
    let probs = a.model().predict_proba(&features);
    let attributions = a
        .explainer()
        .unwrap()
        .shap_values(&features, &outputs)
        .unwrap();
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
    let mut raw: Artifact = tagger_testkit::tiny_artifact(1);
    raw.background = SparseRows::new();
    let a = Predictor::new(raw);
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
            let i = a.labels().index(t).unwrap() as usize;
            s >= a.thresholds().get(i)
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
    let labels: BTreeSet<&str> = a.labels().names().iter().map(String::as_str).collect();
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
    assert_eq!(with(-1.0).tags.len(), a.labels().len());
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

#[test]
fn a_title_starting_like_a_tag_is_answered() {
    // A so-titles test title (../shared/data/so-titles/test.csv): plain text, not markup.
    let a = tiny_artifact();
    let q = "<script type=\"x-text/handlebars\" always becomes an 'ember-view' as a div - how to make it a span?";
    a.predict(q, &PredictOptions::default()).unwrap();
    assert!(a.prepare(q).unwrap().contains("handlebars"));
}

/// Without `scores` the predictor skips the sigmoid of tags whose logit is far below their
/// threshold; the answer must be exactly the one computed from every probability, whatever the
/// threshold, including one placed exactly on a probability the model gives.
#[test]
fn skipping_far_below_threshold_tags_answers_as_computing_every_probability() {
    let csv = tagger_testkit::tiny_csv();
    let questions: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(',').map(|(_, text)| text))
        .chain([RUST_QUESTION, "cargo", "python list"])
        .collect();
    assert!(questions.len() > 10);
    let mut artifact = tagger_testkit::tiny_artifact(1);
    let first = scores_of(&Predictor::new(artifact.clone()), questions[0]);
    for (i, (_, &p)) in first.iter().enumerate() {
        if i % 2 == 0 {
            artifact.thresholds.per_tag[i] = p;
        }
    }
    let model = Predictor::new(artifact);
    let overrides = [
        None,
        Some(0.0),
        Some(1e-6),
        Some(1e-4),
        Some(0.01),
        Some(0.3),
        Some(0.5),
        Some(0.9),
        Some(0.9999),
        Some(1.0),
    ];
    let mut served = 0;
    for q in &questions {
        for threshold in overrides {
            let fast = model
                .predict(
                    q,
                    &PredictOptions {
                        threshold,
                        ..PredictOptions::default()
                    },
                )
                .unwrap();
            let all = model
                .predict(
                    q,
                    &PredictOptions {
                        threshold,
                        scores: true,
                        ..PredictOptions::default()
                    },
                )
                .unwrap();
            assert_eq!(fast.tags, all.tags, "{q:?} at {threshold:?}");
            assert_eq!(
                fast.probabilities, all.probabilities,
                "{q:?} at {threshold:?}"
            );
            served += fast.tags.len();
        }
    }
    assert!(
        served > 0,
        "some tags are served, so the comparison means something"
    );
}

/// A tiny model whose vocabulary has 3-character sub-words.
fn subword_predictor() -> Predictor {
    let mut settings = tagger_testkit::tiny_settings(1);
    settings.tokenizer = settings.tokenizer.with_subwords(3);
    // In a corpus this small, sub-words take only the places of words in one text: these rows
    // add eight, whose places go to sub-words of the corpus's most frequent words ("problem",
    // "code", "case").
    let mut csv = tagger_testkit::tiny_csv();
    for w in [
        "borrowed",
        "borrower",
        "borrows",
        "borrowable",
        "reborrow",
        "borrowck",
        "borrowers",
        "reborrowed",
    ] {
        csv.push_str(&format!("rust,Why is it {w} here?\n"));
    }
    let artifact = tagger_testkit::train(&csv, &settings, "tiny.csv");
    assert!(artifact.tokenizer.has_subwords());
    Predictor::new(artifact)
}

#[test]
fn explanations_of_a_subword_model_name_whole_words_and_stay_additive() {
    let a = subword_predictor();
    let tags = all_tags(&a);
    // "problems" and "codes" are no vocabulary words: only their sub-words reach the model.
    let question = "Problems with codes in cargo";
    let features = a.features(question).unwrap();
    assert!(a.tokenizer().feature_index("problems").is_none());
    assert!(!a.tokenizer().subword_features("problems").is_empty());
    let explained = a
        .explain(
            question,
            &tags,
            &WordOptions {
                k: 50,
                present_only: true,
            },
        )
        .unwrap();
    let outputs: Vec<usize> = tags
        .iter()
        .map(|t| a.labels().index(t).unwrap() as usize)
        .collect();
    let raw = a
        .explainer()
        .unwrap()
        .shap_values(&features, &outputs)
        .unwrap();
    let words = ["problems", "with", "codes", "in", "cargo"];
    for ((t, tokens), attr) in explained.tags.iter().zip(&explained.tokens).zip(&raw) {
        for w in t.positive.iter().chain(&t.negative) {
            assert!(
                words.contains(&w.word.as_str()),
                "{}: {:?} is not a word of the question",
                t.tag,
                w.word
            );
        }
        // Every present feature is a word's or one of its sub-words': the words' values are
        // the present features' attributions, regrouped.
        let by_word: f64 = tokens.iter().map(|(_, v)| v).sum();
        let present: f64 = features.iter().map(|&f| attr.value(f)).sum();
        assert!(
            (by_word - present).abs() <= 1e-9,
            "{}: {by_word} vs {present}",
            t.tag
        );
        let named: f64 = t.positive.iter().chain(&t.negative).map(|w| w.value).sum();
        assert!(
            (named - present).abs() <= 1e-9,
            "{}: {named} vs {present}",
            t.tag
        );
    }
    // An out-of-vocabulary word is credited through its sub-words, and named.
    let problems: Vec<f64> = explained
        .tokens
        .iter()
        .map(|tokens| tokens.iter().find(|(w, _)| w == "problems").unwrap().1)
        .collect();
    assert!(problems.iter().any(|v| *v != 0.0), "{problems:?}");
    assert!(explained
        .tags
        .iter()
        .flat_map(|t| t.positive.iter().chain(&t.negative))
        .any(|w| w.word == "problems"));
}
