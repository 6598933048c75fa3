//! Word level: the strongest words per tag, the one JSON schema of explanations, and per-token
//! values for drawing a question coloured by attribution.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Attribution;

/// One word and its attribution (or, in a [`Summary`], its mean absolute attribution).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordAttribution {
    pub word: String,
    pub value: f64,
}

/// The words that pushed one tag's probability up (`positive`, strongest first) and down
/// (`negative`, most negative first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagExplanation {
    pub tag: String,
    pub probability: f64,
    pub expected_value: f64,
    pub positive: Vec<WordAttribution>,
    pub negative: Vec<WordAttribution>,
}

/// How many words to name per direction, and whether to name only words in the question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WordOptions {
    /// Words per direction (default 5).
    pub k: usize,
    /// Only words present in the question (default). The origin ranked all features, so an
    /// absent word whose absence mattered could be named; `false` keeps that behaviour.
    pub present_only: bool,
}

impl Default for WordOptions {
    fn default() -> Self {
        WordOptions {
            k: 5,
            present_only: true,
        }
    }
}

/// Top-k positive and negative words of one attribution. `present` holds the question's features
/// (any order); features `feature_name` cannot name are left out. Ties go to the lower feature index.
pub fn explain_words(
    attribution: &Attribution,
    tag: impl Into<String>,
    feature_name: impl Fn(u32) -> Option<String>,
    present: &[u32],
    opts: &WordOptions,
) -> TagExplanation {
    let mut present: Cow<'_, [u32]> = Cow::Borrowed(present);
    if !present.is_sorted() {
        present.to_mut().sort_unstable();
    }
    let candidates = attribution
        .features
        .iter()
        .filter(|&&(f, _)| !opts.present_only || present.binary_search(&f).is_ok());
    let mut pos: Vec<(u32, f64)> = candidates
        .clone()
        .filter(|&&(_, v)| v > 0.0)
        .copied()
        .collect();
    let mut neg: Vec<(u32, f64)> = candidates.filter(|&&(_, v)| v < 0.0).copied().collect();
    pos.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    neg.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let name = |list: Vec<(u32, f64)>| -> Vec<WordAttribution> {
        list.into_iter()
            .filter_map(|(f, value)| feature_name(f).map(|word| WordAttribution { word, value }))
            .take(opts.k)
            .collect()
    };
    TagExplanation {
        tag: tag.into(),
        probability: attribution.probability,
        expected_value: attribution.expected_value,
        positive: name(pos),
        negative: name(neg),
    }
}

/// The one JSON schema of explanations, for the API and the CLI alike:
/// `{"tag": {"positive": [["word", 0.12], ...], "negative": [["word", -0.03], ...],
/// "expected_value": 0.02, "probability": 0.91}}` (words strongest first).
pub fn explanations_json(tags: &[TagExplanation]) -> serde_json::Value {
    let pairs = |words: &[WordAttribution]| -> Vec<serde_json::Value> {
        words
            .iter()
            .map(|w| serde_json::json!([w.word, w.value]))
            .collect()
    };
    serde_json::Value::Object(
        tags.iter()
            .map(|t| {
                (
                    t.tag.clone(),
                    serde_json::json!({
                        "positive": pairs(&t.positive),
                        "negative": pairs(&t.negative),
                        "expected_value": t.expected_value,
                        "probability": t.probability,
                    }),
                )
            })
            .collect(),
    )
}

/// [`explain_words`] for each attribution, naming tags with `tag_name(output)`.
pub fn explain_tags(
    attributions: &[Attribution],
    tag_name: impl Fn(usize) -> String,
    feature_name: impl Fn(u32) -> Option<String>,
    present: &[u32],
    opts: &WordOptions,
) -> Vec<TagExplanation> {
    attributions
        .iter()
        .map(|a| explain_words(a, tag_name(a.output), &feature_name, present, opts))
        .collect()
}

/// Each token of a question with its feature's attribution (0 for tokens that are no feature),
/// for drawing a question coloured by attribution (the CLI's HTML and terminal views).
/// `feature_of` maps a token to its feature index (the tokenizer's vocabulary lookup).
pub fn token_values<S: AsRef<str>>(
    tokens: &[S],
    attribution: &Attribution,
    feature_of: impl Fn(&str) -> Option<u32>,
) -> Vec<(String, f64)> {
    tokens
        .iter()
        .map(|t| {
            let t = t.as_ref();
            (
                t.to_string(),
                feature_of(t).map_or(0.0, |f| attribution.value(f)),
            )
        })
        .collect()
}

/// A word of a question for [`fold_subwords`]: its own feature (if the vocabulary has the word)
/// and the sub-word features it makes.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldWord {
    pub word: String,
    pub feature: Option<u32>,
    pub subwords: Vec<u32>,
}

/// An attribution whose sub-word features are moved onto the words that make them, so that an
/// explanation names words, never pieces of words: each word of `words` (the question's distinct
/// words) gets its own feature's value plus, for each of its sub-words, that sub-word's value
/// divided among the question's words that make it. A word outside the vocabulary, known only
/// by its sub-words, gets the key `first_free_key + i` (`i` its place in `words`), named in the
/// returned list. Every other feature keeps its key and value, so the values still add up to
/// `probability - expected_value`.
pub fn fold_subwords(
    attribution: &Attribution,
    words: &[FoldWord],
    first_free_key: u32,
) -> (Attribution, Vec<(u32, String)>) {
    let mut makers: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for w in words {
        for &g in &w.subwords {
            *makers.entry(g).or_default() += 1;
        }
    }
    let mut folded: std::collections::BTreeMap<u32, f64> = attribution
        .features
        .iter()
        .filter(|(f, _)| !makers.contains_key(f))
        .map(|&(f, v)| (f, v))
        .collect();
    let mut names = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let shares: f64 = w
            .subwords
            .iter()
            .map(|g| attribution.value(*g) / f64::from(makers[g]))
            .sum();
        let key = match w.feature {
            Some(f) => f,
            None if shares != 0.0 => {
                let key = first_free_key + i as u32;
                names.push((key, w.word.clone()));
                key
            }
            None => continue,
        };
        let value = folded.entry(key).or_default();
        *value += shares;
        if *value == 0.0 {
            folded.remove(&key);
        }
    }
    (
        Attribution {
            output: attribution.output,
            probability: attribution.probability,
            expected_value: attribution.expected_value,
            features: folded.into_iter().collect(),
        },
        names,
    )
}
