//! Text -> sparse binary bag of words: the vocabulary learnt from training texts, and the
//! encoder that turns a question into the sorted feature indices the model reads.
//!
//! Two modes ([`TokenizerConfig`]):
//! - `Keras { num_words }` reproduces Keras 2's `Tokenizer(num_words)` with `mode='binary'`
//!   exactly (proved against `../shared/golden/keras-tokenizer/`), for comparisons with the origin.
//! - `Words { min_count, max_features, bigrams }` is the project's default, tuned for Stack
//!   Overflow text: its token pattern keeps `c#`, `c++`, `.net`, `node.js`, `python-3.x`, which
//!   the Keras filters break apart, and its vocabulary order is fully deterministic.
//!
//! In both modes feature index 0 is reserved and never produced (Keras's convention), so
//! features are `1..n_features()`. Input text is expected to be HTML-stripped and masked already
//! ([`crate::text`]); lowercasing happens here, per token.
//!
//! Speed: fitting counts tokens as `&str` borrowed from the texts in `FxHashMap`s (a `String` is
//! made only for the first sighting of a token that needed lowercasing), over one chunk of texts
//! per core; the results do not depend on the number of chunks.

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::parallel::{chunk_by_bytes, default_chunk_count, per_chunk};
use crate::sparse::SparseRows;

mod config;
mod counting;
mod fit;
mod tokens;

pub use config::{
    check_subwords, repeat_parts, subword_part, TokenizerConfig, MAX_SUBWORDS,
    REPEATS_MIN_MEAN_TOKENS, REPEAT_LEVELS, REPEAT_MARK, SUBWORD_MARK, SUBWORD_PROTECT_PER_TEXTS,
};
use tokens::*;

/// A fitted vocabulary and its encoder.
///
/// Only the config and the kept vocabulary serialise; the lookup maps are rebuilt (and the
/// vocabulary checked) on deserialise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TokenizerRepr", into = "TokenizerRepr")]
pub struct Tokenizer {
    config: TokenizerConfig,
    /// `vocab[i]` is feature `i + 1`.
    vocab: Vec<String>,
    /// Unigram -> its feature (0 if it is not one) and its id as part of a kept bigram
    /// (`NO_PART` if none).
    lookup: TokenMap<Box<str>, Entry>,
    /// `(part id of w1) << 32 | (part id of w2)` -> feature of bigram "w1 w2".
    pairs: FxHashMap<u64, u32>,
    /// Feature -> the features of its token's repeat levels (0 = not kept); empty when the
    /// vocabulary has no repeat features.
    repeat_of: Vec<[u32; 2]>,
    /// Sub-word key ([`tokens::subword_key`]) -> its feature; empty without sub-words.
    subwords: FxHashMap<u128, u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Entry {
    feature: u32,
    part: u32,
}

const NO_PART: u32 = u32::MAX;

#[derive(Clone, Serialize, Deserialize)]
struct TokenizerRepr {
    config: TokenizerConfig,
    vocab: Vec<String>,
}

impl From<Tokenizer> for TokenizerRepr {
    fn from(t: Tokenizer) -> Self {
        TokenizerRepr {
            config: t.config,
            vocab: t.vocab,
        }
    }
}

impl TryFrom<TokenizerRepr> for Tokenizer {
    type Error = String;

    fn try_from(r: TokenizerRepr) -> std::result::Result<Self, String> {
        r.config.validate().map_err(|e| e.to_string())?;
        let limit = match r.config {
            TokenizerConfig::Keras { num_words } => num_words - 1,
            TokenizerConfig::Words { max_features, .. } => max_features,
        };
        if r.vocab.len() > limit {
            return Err(format!(
                "vocabulary has {} entries, more than its config allows ({limit})",
                r.vocab.len()
            ));
        }
        let bigrams = matches!(r.config, TokenizerConfig::Words { bigrams: true, .. });
        let repeats = matches!(r.config, TokenizerConfig::Words { repeats: true, .. });
        let n_sub = r.config.subwords();
        for w in &r.vocab {
            let repeat = w.contains(REPEAT_MARK) && repeat_parts(w).is_some();
            let subword_ok = match subword_part(w) {
                Some(g) => {
                    n_sub > 0 && g.chars().count() == n_sub && g.chars().all(char::is_alphanumeric)
                }
                None => !w.contains(SUBWORD_MARK),
            };
            if w.is_empty()
                || (!bigrams && w.contains(' '))
                || w.matches(' ').count() > 1
                || (repeat && !repeats)
                || !subword_ok
            {
                return Err(format!(
                    "vocabulary entry {w:?} is not a token the config can produce"
                ));
            }
        }
        let t = Tokenizer::from_vocab(r.config, r.vocab);
        let distinct = t.lookup.values().filter(|e| e.feature != 0).count()
            + t.pairs.len()
            + t.repeat_of.iter().flatten().filter(|&&f| f != 0).count()
            + t.subwords.len();
        if distinct != t.vocab.len() {
            return Err("vocabulary has duplicate entries".to_string());
        }
        Ok(t)
    }
}

impl Tokenizer {
    /// A tokenizer from its config and vocabulary (`vocab[i]` is feature `i + 1`), checking that
    /// the config could have produced that vocabulary.
    pub fn from_parts(
        config: TokenizerConfig,
        vocab: Vec<String>,
    ) -> std::result::Result<Self, String> {
        Self::try_from(TokenizerRepr { config, vocab })
    }

    fn from_vocab(mut config: TokenizerConfig, vocab: Vec<String>) -> Tokenizer {
        let mut lookup: TokenMap<Box<str>, Entry> = TokenMap::with_capacity(vocab.len());
        let mut pairs: FxHashMap<u64, u32> = FxHashMap::default();
        let mut next_part = 0u32;
        let none = Entry {
            feature: 0,
            part: NO_PART,
        };
        let repeats = matches!(config, TokenizerConfig::Words { repeats: true, .. });
        // Repeat features name their token, which ranks before them (it is in at least as
        // many texts, and its name is a prefix of theirs): its feature is known by then.
        let mut repeat_of: Vec<[u32; 2]> = Vec::new();
        let mut subwords: FxHashMap<u128, u32> = FxHashMap::default();
        for (i, w) in vocab.iter().enumerate() {
            let feature = i as u32 + 1;
            if let Some(key) = subword_part(w).and_then(subword_key_of) {
                subwords.insert(key, feature);
                continue;
            }
            if repeats && w.contains(REPEAT_MARK) {
                if let Some((token, level)) = repeat_parts(w) {
                    let base = lookup
                        .get(token, &mut LowerBuf::new())
                        .map_or(0, |e| e.feature);
                    if base != 0 {
                        if repeat_of.is_empty() {
                            repeat_of = vec![[0; 2]; vocab.len() + 1];
                        }
                        repeat_of[base as usize][level] = feature;
                    }
                    continue;
                }
            }
            match w.split_once(' ') {
                None => lookup.entry_or(w, none).feature = feature,
                Some((a, b)) => {
                    let mut part = |word: &str| {
                        let e = lookup.entry_or(word, none);
                        if e.part == NO_PART {
                            e.part = next_part;
                            next_part += 1;
                        }
                        e.part
                    };
                    let key = pair_key(part(a), part(b));
                    pairs.insert(key, feature);
                }
            }
        }
        // Without repeat features in the vocabulary the option changes nothing: record it off,
        // as an artifact (whose format infers it from the vocabulary) reads it back.
        if let TokenizerConfig::Words { repeats, .. } = &mut config {
            *repeats &= !repeat_of.is_empty();
        }
        // Likewise sub-words: a vocabulary without any encodes as words alone (and its artifact
        // stays in format 3, which older readers read).
        if let TokenizerConfig::Words { subwords: n, .. } = &mut config {
            if subwords.is_empty() {
                *n = 0;
            }
        }
        Tokenizer {
            config,
            vocab,
            lookup,
            pairs,
            repeat_of,
            subwords,
        }
    }

    /// Sorted, de-duplicated feature indices of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.encode_into(text, &mut out);
        out
    }

    /// [`encode`](Self::encode) into `out` (cleared first); allocates nothing else for tokens of
    /// up to 64 bytes that are ASCII or already lowercase.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        out.clear();
        let mut buf = LowerBuf::new();
        match self.config {
            TokenizerConfig::Keras { .. } => keras_tokens(text, |tok| {
                if let Some(e) = self.lookup.get(tok, &mut buf) {
                    out.push(e.feature);
                }
            }),
            TokenizerConfig::Words { subwords: n, .. } => {
                let mut prev = NO_PART;
                let mut chars = Vec::new();
                let mut lower = LowerBuf::new();
                word_tokens(text, |tok| {
                    if !self.subwords.is_empty() {
                        subwords_of(lower.lower(tok).as_str(), n, &mut chars, |key| {
                            if let Some(&f) = self.subwords.get(&key) {
                                out.push(f);
                            }
                        });
                    }
                    let (feature, part) = self
                        .lookup
                        .get(tok, &mut buf)
                        .map_or((0, NO_PART), |e| (e.feature, e.part));
                    if feature != 0 {
                        out.push(feature);
                    }
                    if prev != NO_PART && part != NO_PART {
                        if let Some(&f) = self.pairs.get(&pair_key(prev, part)) {
                            out.push(f);
                        }
                    }
                    prev = part;
                });
            }
        }
        out.sort_unstable();
        if !self.repeat_of.is_empty() {
            // `out` holds a token's feature once per occurrence: runs are term frequencies.
            let n = out.len();
            let mut i = 0;
            while i < n {
                let f = out[i];
                let run = out[i..n].iter().take_while(|&&g| g == f).count();
                if let Some(levels) = self.repeat_of.get(f as usize) {
                    for (&feature, &at_least) in levels.iter().zip(&REPEAT_LEVELS) {
                        if feature != 0 && run >= at_least as usize {
                            out.push(feature);
                        }
                    }
                }
                i += run;
            }
            if out.len() > n {
                out.sort_unstable();
            }
        }
        out.dedup();
    }

    /// Encodes every text, one chunk per core.
    pub fn encode_all<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> SparseRows {
        let texts: Vec<&str> = texts.into_iter().collect();
        let chunks = chunk_by_bytes(&texts, default_chunk_count(&texts));
        let parts: Vec<(Vec<u32>, Vec<u32>)> = per_chunk(&chunks, |chunk| {
            let mut flat = Vec::new();
            let mut lens = Vec::with_capacity(chunk.len());
            let mut row = Vec::new();
            for text in chunk {
                self.encode_into(text, &mut row);
                flat.extend_from_slice(&row);
                lens.push(row.len() as u32);
            }
            (flat, lens)
        });
        let nnz = parts.iter().map(|p| p.0.len()).sum();
        let mut rows = SparseRows::with_capacity(texts.len(), nnz);
        for (flat, lens) in &parts {
            let mut at = 0;
            for &len in lens {
                let len = len as usize;
                rows.push_row(&flat[at..at + len]);
                at += len;
            }
        }
        rows
    }

    /// Width of a feature vector: Keras's `num_words`, or the vocabulary size + 1 for `Words`.
    /// Index 0 is reserved in both modes and never produced.
    pub fn n_features(&self) -> usize {
        match self.config {
            TokenizerConfig::Keras { num_words } => num_words,
            TokenizerConfig::Words { .. } => self.vocab.len() + 1,
        }
    }

    /// The token (or `"w1 w2"` bigram) of a feature; `None` for 0 and out-of-range indices.
    pub fn feature_name(&self, index: u32) -> Option<&str> {
        let i = (index as usize).checked_sub(1)?;
        self.vocab.get(i).map(String::as_str)
    }

    /// The feature of a token or `"w1 w2"` bigram as [`feature_name`](Self::feature_name)
    /// spells it (lowercase).
    pub fn feature_index(&self, name: &str) -> Option<u32> {
        if let Some(gram) = subword_part(name) {
            return self.subwords.get(&subword_key_of(gram)?).copied();
        }
        if let (false, Some((token, level))) = (self.repeat_of.is_empty(), repeat_parts(name)) {
            let base = self.feature_index(token)?;
            return self
                .repeat_of
                .get(base as usize)
                .map(|l| l[level])
                .filter(|&f| f != 0);
        }
        match name.split_once(' ') {
            None => self
                .lookup
                .get(name, &mut LowerBuf::new())
                .map(|e| e.feature)
                .filter(|&f| f != 0),
            Some((a, b)) => {
                let part = |w: &str| {
                    self.lookup
                        .get(w, &mut LowerBuf::new())
                        .map(|e| e.part)
                        .filter(|&p| p != NO_PART)
                };
                self.pairs.get(&pair_key(part(a)?, part(b)?)).copied()
            }
        }
    }

    /// The kept vocabulary: entry `i` is feature `i + 1`.
    pub fn vocabulary(&self) -> &[String] {
        &self.vocab
    }

    /// The lowercase unigram tokens the encoder sees in `text`, in order (bigram features are
    /// adjacent pairs of these, joined with a space).
    pub fn tokens<'a>(&self, text: &'a str) -> Vec<Cow<'a, str>> {
        let mut out = Vec::new();
        let mut buf = LowerBuf::new();
        let mut push = |tok: &'a str| {
            out.push(match buf.lower(tok) {
                Lower::Unchanged(t) => Cow::Borrowed(t),
                Lower::Changed(t) => Cow::Owned(t.to_string()),
            })
        };
        match self.config {
            TokenizerConfig::Keras { .. } => keras_tokens(text, &mut push),
            TokenizerConfig::Words { .. } => word_tokens(text, &mut push),
        }
        out
    }

    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// Whether the vocabulary has sub-word features.
    pub fn has_subwords(&self) -> bool {
        !self.subwords.is_empty()
    }

    /// The sub-word features of one token as [`tokens`](Self::tokens) gives it (lowercase),
    /// ascending, without repeats.
    pub fn subword_features(&self, token: &str) -> Vec<u32> {
        let mut out = Vec::new();
        if self.subwords.is_empty() {
            return out;
        }
        let mut chars = Vec::new();
        subwords_of(token, self.config.subwords(), &mut chars, |key| {
            if let Some(&f) = self.subwords.get(&key) {
                out.push(f);
            }
        });
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The mean number of `Words` tokens in `texts` (0 for none): what tells titles from posts.
pub fn mean_word_tokens(texts: &[&str]) -> f64 {
    if texts.is_empty() {
        return 0.0;
    }
    let chunks = chunk_by_bytes(texts, default_chunk_count(texts));
    let tokens: u64 = per_chunk(&chunks, |chunk| {
        let mut n = 0u64;
        for text in chunk.iter() {
            word_tokens(text, |_| n += 1);
        }
        n
    })
    .into_iter()
    .sum();
    tokens as f64 / texts.len() as f64
}

fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

#[cfg(test)]
mod tests;
