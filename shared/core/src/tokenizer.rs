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

use crate::error::{Error, Result};
use crate::sparse::SparseRows;

/// How texts become features. See the module docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TokenizerConfig {
    /// Keras 2 `Tokenizer(num_words=num_words)` defaults, binary mode: the `num_words - 1` most
    /// frequent words (total occurrences; ties in first-seen order) get indices `1..num_words`.
    Keras { num_words: usize },
    /// Lowercase tokens that keep `#`, `+` and inner `.`/`-`; the vocabulary is every token (and
    /// with `bigrams`, every pair of adjacent tokens, named `"w1 w2"`) found in at least
    /// `min_count` training texts, at most `max_features` of them, by document count descending
    /// then token ascending.
    Words {
        min_count: usize,
        max_features: usize,
        bigrams: bool,
    },
}

impl Default for TokenizerConfig {
    /// Unigrams only (bigrams overfit on both reference datasets: a reference MLP lost 0.02-0.05 P@1 with them), seen in at
    /// least 2 texts, up to 20,000 features.
    fn default() -> Self {
        TokenizerConfig::Words {
            min_count: 2,
            max_features: 20_000,
            bigrams: false,
        }
    }
}

impl TokenizerConfig {
    /// The origin's `Tokenizer(num_words=400)`.
    pub fn origin() -> Self {
        TokenizerConfig::Keras { num_words: 400 }
    }

    pub fn validate(&self) -> Result<()> {
        const MAX: usize = u32::MAX as usize - 1;
        match *self {
            TokenizerConfig::Keras { num_words } => {
                if !(2..=MAX).contains(&num_words) {
                    return Err(Error::config(
                        "num_words",
                        format!("{num_words} is out of range: index 0 is reserved, so at least 2 are needed"),
                    ));
                }
            }
            TokenizerConfig::Words {
                min_count,
                max_features,
                ..
            } => {
                if min_count == 0 {
                    return Err(Error::config(
                        "min_count",
                        "0 is meaningless: use 1 to keep every token",
                    ));
                }
                if !(1..MAX).contains(&max_features) {
                    return Err(Error::config(
                        "max_features",
                        format!("{max_features} is out of range"),
                    ));
                }
            }
        }
        Ok(())
    }
}

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
        for w in &r.vocab {
            if w.is_empty() || (!bigrams && w.contains(' ')) || w.matches(' ').count() > 1 {
                return Err(format!(
                    "vocabulary entry {w:?} is not a token the config can produce"
                ));
            }
        }
        let t = Tokenizer::from_vocab(r.config, r.vocab);
        let distinct = t.lookup.values().filter(|e| e.feature != 0).count() + t.pairs.len();
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

    /// Learns the vocabulary of `texts` under `config`.
    pub fn fit<'a>(
        config: &TokenizerConfig,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<Tokenizer> {
        let texts: Vec<&'a str> = texts.into_iter().collect();
        Tokenizer::fit_in_chunks(config, &texts, default_chunk_count(&texts))
    }

    /// [`fit`](Self::fit) over `n_chunks` threads; the result does not depend on `n_chunks`.
    pub(crate) fn fit_in_chunks(
        config: &TokenizerConfig,
        texts: &[&str],
        n_chunks: usize,
    ) -> Result<Tokenizer> {
        config.validate()?;
        let chunks = chunk_by_bytes(texts, n_chunks);
        let vocab = match *config {
            TokenizerConfig::Keras { num_words } => {
                let mut ranked = keras_word_counts(&chunks);
                ranked.truncate(num_words - 1);
                ranked.into_iter().map(|(w, _)| w).collect()
            }
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
            } => words_vocabulary(&chunks, min_count as u64, max_features, bigrams),
        };
        Ok(Tokenizer::from_vocab(config.clone(), vocab))
    }

    /// [`fit`](Self::fit) and [`encode_all`](Self::encode_all) of the same texts, tokenizing
    /// them once: for the default unigram `Words` config, fitting keeps each text's token ids
    /// and maps them to features afterwards (same rows as `encode_all`, about half the work);
    /// other configs fit, then encode.
    pub fn fit_encode(config: &TokenizerConfig, texts: &[&str]) -> Result<(Tokenizer, SparseRows)> {
        Tokenizer::fit_encode_in_chunks(config, texts, default_chunk_count(texts))
    }

    /// [`fit_encode`](Self::fit_encode) over `n_chunks` threads; the result does not depend on
    /// `n_chunks`.
    pub(crate) fn fit_encode_in_chunks(
        config: &TokenizerConfig,
        texts: &[&str],
        n_chunks: usize,
    ) -> Result<(Tokenizer, SparseRows)> {
        let TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams: false,
        } = *config
        else {
            let tokenizer = Tokenizer::fit_in_chunks(config, texts, n_chunks)?;
            let rows = tokenizer.encode_all(texts.iter().copied());
            return Ok((tokenizer, rows));
        };
        config.validate()?;
        let chunks = chunk_by_bytes(texts, n_chunks);
        let mut counts = per_chunk(&chunks, |chunk| count_words(chunk, false, true));
        let ids: Vec<(Vec<u32>, Vec<u32>)> = counts
            .iter_mut()
            .map(|c| {
                (
                    std::mem::take(&mut c.row_ids),
                    std::mem::take(&mut c.row_lens),
                )
            })
            .collect();
        let (vocab, features) = words_vocabulary_of(counts, min_count as u64, max_features, false);
        let nnz = ids.iter().map(|(flat, _)| flat.len()).sum();
        let mut rows = SparseRows::with_capacity(texts.len(), nnz);
        let mut row = Vec::new();
        for ((flat, lens), feature_of) in ids.iter().zip(&features) {
            let mut at = 0;
            for &len in lens {
                let len = len as usize;
                row.clear();
                row.extend(
                    flat[at..at + len]
                        .iter()
                        .map(|&id| feature_of[id as usize])
                        .filter(|&f| f != 0),
                );
                rows.push_row(&row);
                at += len;
            }
        }
        Ok((Tokenizer::from_vocab(config.clone(), vocab), rows))
    }

    fn from_vocab(config: TokenizerConfig, vocab: Vec<String>) -> Tokenizer {
        let mut lookup: TokenMap<Box<str>, Entry> = TokenMap::default();
        let mut pairs: FxHashMap<u64, u32> = FxHashMap::default();
        let mut next_part = 0u32;
        let none = Entry {
            feature: 0,
            part: NO_PART,
        };
        for (i, w) in vocab.iter().enumerate() {
            let feature = i as u32 + 1;
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
        Tokenizer {
            config,
            vocab,
            lookup,
            pairs,
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
            TokenizerConfig::Words { .. } => {
                let mut prev = NO_PART;
                word_tokens(text, |tok| {
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
        out.dedup();
    }

    /// Encodes every text, one chunk per core.
    pub fn encode_all<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> SparseRows {
        let texts: Vec<&str> = texts.into_iter().collect();
        let chunks = chunk_by_bytes(&texts, default_chunk_count(&texts));
        let parts: Vec<(Vec<u32>, Vec<u32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .iter()
                .map(|chunk| {
                    s.spawn(move || {
                        let mut flat = Vec::new();
                        let mut lens = Vec::with_capacity(chunk.len());
                        let mut row = Vec::new();
                        for text in *chunk {
                            self.encode_into(text, &mut row);
                            flat.extend_from_slice(&row);
                            lens.push(row.len() as u32);
                        }
                        (flat, lens)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
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
}

fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

// ---------------------------------------------------------------------------------------------
// Token streams

/// Keras 2 `Tokenizer` defaults: `filters='!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'`, `split=' '`.
const KERAS_SEPARATORS: [bool; 256] = {
    let mut t = [false; 256];
    let filters = b"!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n ";
    let mut i = 0;
    while i < filters.len() {
        t[filters[i] as usize] = true;
        i += 1;
    }
    t
};

/// Keras's `text_to_word_sequence` without the lowercasing: every filter character becomes the
/// split character ' ', then the text is split on ' ' and empty pieces are dropped. Lowercasing
/// before or after splitting gives the same tokens (no character lowercases to or from a filter
/// character), apart from Greek final sigma next to a case-ignorable filter such as `.`, which
/// Python decides over the whole text and we decide per token.
fn keras_tokens<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start = None;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if KERAS_SEPARATORS[b as usize] {
            if let Some(s) = start.take() {
                f(&text[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        f(&text[s..]);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Sep,
    /// Letters, digits, `_`.
    Word,
    /// `#` and `+`: part of a token anywhere (`c#`, `c++`, `#include`).
    Mark,
    /// `.` and `-`: part of a token inside it (`node.js`, `python-3.x`), stripped at its ends
    /// except a single leading `.` (`.net`).
    Joiner,
}

const WORD_CLASSES: [Class; 128] = {
    let mut t = [Class::Sep; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() || c == b'_' {
            Class::Word
        } else if c == b'#' || c == b'+' {
            Class::Mark
        } else if c == b'.' || c == b'-' {
            Class::Joiner
        } else {
            Class::Sep
        };
        b += 1;
    }
    t
};

/// Class and byte length of the character at byte `i` (a char boundary) of `text`.
#[inline]
fn class_at(text: &str, i: usize) -> (Class, usize) {
    let bytes = text.as_bytes();
    let b = bytes[i];
    if b < 0x80 {
        // A run of dots is punctuation ("wait...what"), not a joiner.
        if b == b'.' && (bytes.get(i + 1) == Some(&b'.') || (i > 0 && bytes[i - 1] == b'.')) {
            return (Class::Sep, 1);
        }
        return (WORD_CLASSES[b as usize], 1);
    }
    match text[i..].chars().next() {
        Some(c) if c.is_alphanumeric() => (Class::Word, c.len_utf8()),
        Some(c) => (Class::Sep, c.len_utf8()),
        None => (Class::Sep, 1),
    }
}

/// The `Words` token stream (not yet lowercased): maximal runs of word characters, `#`, `+`,
/// `.` and `-`, trimmed of `.`/`-` at both ends (one leading `.` before a word character stays),
/// keeping those with a letter or digit.
fn word_tokens<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let n = text.len();
    let mut i = 0;
    while i < n {
        let (class, len) = class_at(text, i);
        if class == Class::Sep {
            i += len;
            continue;
        }
        let start = i;
        let mut end = i + len;
        while end < n {
            let (class, len) = class_at(text, end);
            if class == Class::Sep {
                break;
            }
            end += len;
        }
        i = end;
        let run = &text.as_bytes()[start..end];
        let is_joiner = |b: u8| b == b'.' || b == b'-';
        let mut e = run.len();
        while e > 0 && is_joiner(run[e - 1]) {
            e -= 1;
        }
        let mut s = 0;
        while s < e && is_joiner(run[s]) {
            s += 1;
        }
        // Non-ASCII bytes in a run belong to alphanumeric characters.
        let is_alnum = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        if s > 0 && run[s - 1] == b'.' && s < e && (is_alnum(run[s]) || run[s] == b'_') {
            s -= 1;
        }
        if run[s..e].iter().any(|&b| is_alnum(b)) {
            f(&text[start + s..start + e]);
        }
    }
}

enum Lower<'a, 's> {
    Unchanged(&'a str),
    Changed(&'s str),
}

impl Lower<'_, '_> {
    fn as_str(&self) -> &str {
        match self {
            Lower::Unchanged(s) | Lower::Changed(s) => s,
        }
    }
}

/// Lowercases tokens without allocating for the common cases (already lowercase, or short ASCII).
struct LowerBuf {
    stack: [u8; 64],
    heap: String,
}

impl LowerBuf {
    fn new() -> Self {
        LowerBuf {
            stack: [0; 64],
            heap: String::new(),
        }
    }

    #[inline]
    fn lower<'a, 's>(&'s mut self, tok: &'a str) -> Lower<'a, 's> {
        let bytes = tok.as_bytes();
        let mut upper = false;
        let mut ascii = true;
        for &b in bytes {
            upper |= b.is_ascii_uppercase();
            ascii &= b < 0x80;
        }
        if ascii {
            if !upper {
                return Lower::Unchanged(tok);
            }
            if bytes.len() <= self.stack.len() {
                let buf = &mut self.stack[..bytes.len()];
                buf.copy_from_slice(bytes);
                buf.make_ascii_lowercase();
                if let Ok(s) = std::str::from_utf8(buf) {
                    return Lower::Changed(s);
                }
            }
            self.heap.clear();
            self.heap.push_str(tok);
            self.heap.make_ascii_lowercase();
            return Lower::Changed(&self.heap);
        }
        // str::to_lowercase, like Python's str.lower, handles final sigma and other special cases.
        self.heap = tok.to_lowercase();
        if self.heap == tok {
            Lower::Unchanged(tok)
        } else {
            Lower::Changed(&self.heap)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Token maps

/// A lowercase token of up to 16 bytes, stored inline (zero-padded, with its length), so hashing
/// and comparing it touches no memory outside the map. Most tokens are this short; keys that
/// pointed into the texts made every comparison a cache miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SmallKey {
    bytes: u128,
    len: u8,
}

impl SmallKey {
    const CAPACITY: usize = 16;

    #[inline]
    fn new(lowercase: &[u8]) -> Option<SmallKey> {
        if lowercase.len() > Self::CAPACITY {
            return None;
        }
        let mut buf = [0u8; Self::CAPACITY];
        buf[..lowercase.len()].copy_from_slice(lowercase);
        Some(SmallKey {
            bytes: u128::from_le_bytes(buf),
            len: lowercase.len() as u8,
        })
    }

    /// Lowercases while copying; `None` unless `tok` is short and ASCII.
    #[inline]
    fn ascii_lowercased(tok: &str) -> Option<SmallKey> {
        let bytes = tok.as_bytes();
        if bytes.len() > Self::CAPACITY {
            return None;
        }
        let mut buf = [0u8; Self::CAPACITY];
        let mut ascii = true;
        for (d, &b) in buf.iter_mut().zip(bytes) {
            ascii &= b < 0x80;
            *d = b.to_ascii_lowercase();
        }
        ascii.then(|| SmallKey {
            bytes: u128::from_le_bytes(buf),
            len: bytes.len() as u8,
        })
    }

    fn to_str_lossy(self) -> String {
        let buf = self.bytes.to_le_bytes();
        String::from_utf8_lossy(&buf[..self.len as usize]).into_owned()
    }
}

enum Key<'a, 's> {
    Small(SmallKey),
    Long(Lower<'a, 's>),
}

/// The map key of token `tok`, lowercased.
#[inline]
fn key_of<'a, 's>(tok: &'a str, buf: &'s mut LowerBuf) -> Key<'a, 's> {
    if let Some(k) = SmallKey::ascii_lowercased(tok) {
        return Key::Small(k);
    }
    let lowered = buf.lower(tok);
    match SmallKey::new(lowered.as_str().as_bytes()) {
        Some(k) => Key::Small(k),
        None => Key::Long(lowered),
    }
}

/// Lowercase token -> `V`, short tokens inline (see [`SmallKey`]).
#[derive(Clone, Debug)]
struct TokenMap<K, V> {
    small: FxHashMap<SmallKey, V>,
    long: FxHashMap<K, V>,
}

impl<K: std::hash::Hash + Eq, V: PartialEq> PartialEq for TokenMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.small == other.small && self.long == other.long
    }
}

impl<K, V> Default for TokenMap<K, V> {
    fn default() -> Self {
        TokenMap {
            small: FxHashMap::default(),
            long: FxHashMap::default(),
        }
    }
}

impl<K: std::borrow::Borrow<str> + std::hash::Hash + Eq, V> TokenMap<K, V> {
    #[inline]
    fn get(&self, tok: &str, buf: &mut LowerBuf) -> Option<&V> {
        match key_of(tok, buf) {
            Key::Small(k) => self.small.get(&k),
            Key::Long(l) => self.long.get(l.as_str()),
        }
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.small.values().chain(self.long.values())
    }

    fn len(&self) -> usize {
        self.small.len() + self.long.len()
    }
}

impl<V> TokenMap<Box<str>, V> {
    /// The value of an already lowercase token, inserting `default` first if absent.
    fn entry_or(&mut self, lowercase: &str, default: V) -> &mut V {
        match SmallKey::new(lowercase.as_bytes()) {
            Some(k) => self.small.entry(k).or_insert(default),
            None => self.long.entry(lowercase.into()).or_insert(default),
        }
    }
}

/// Numbers the distinct tokens of a chunk of texts in first-seen order.
#[derive(Default)]
struct Interner<'a> {
    ids: TokenMap<Cow<'a, str>, u32>,
}

impl<'a> Interner<'a> {
    /// The id of `tok` (lowercased), and whether it is new.
    #[inline]
    fn intern(&mut self, tok: &'a str, buf: &mut LowerBuf) -> (u32, bool) {
        let next = self.ids.len() as u32;
        let slot = match key_of(tok, buf) {
            Key::Small(k) => self.ids.small.entry(k),
            Key::Long(l) => {
                if let Some(&id) = self.ids.long.get(l.as_str()) {
                    return (id, false);
                }
                let key = match l {
                    Lower::Unchanged(t) => Cow::Borrowed(t),
                    Lower::Changed(t) => Cow::Owned(t.to_string()),
                };
                self.ids.long.insert(key, next);
                return (next, true);
            }
        };
        match slot {
            std::collections::hash_map::Entry::Occupied(e) => (*e.get(), false),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(next);
                (next, true)
            }
        }
    }

    /// The tokens, indexed by id.
    fn into_names(self) -> Vec<Cow<'a, str>> {
        let mut names = vec![Cow::Borrowed(""); self.ids.len()];
        for (k, &id) in &self.ids.small {
            names[id as usize] = Cow::Owned(k.to_str_lossy());
        }
        for (k, id) in self.ids.long {
            names[id as usize] = k;
        }
        names
    }
}

// ---------------------------------------------------------------------------------------------
// Fitting

/// One chunk per core (at most 8), or one when the input is small enough that threads would
/// cost more than they save.
fn default_chunk_count(texts: &[&str]) -> usize {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    if total < (1 << 20) {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8)
    }
}

/// Splits `texts` into `n` (at least 1) contiguous chunks of about equal bytes.
fn chunk_by_bytes<'t, 'a>(texts: &'t [&'a str], n: usize) -> Vec<&'t [&'a str]> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let n = n.max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    let mut acc = 0;
    for (i, t) in texts.iter().enumerate() {
        acc += t.len();
        if chunks.len() + 1 < n && acc * n >= total * (chunks.len() + 1) {
            chunks.push(&texts[start..=i]);
            start = i + 1;
        }
    }
    chunks.push(&texts[start..]);
    chunks
}

/// Runs `count` on each chunk in its own thread; results in chunk order.
fn per_chunk<'t, 'a, T: Send>(
    chunks: &[&'t [&'a str]],
    count: impl Fn(&'t [&'a str]) -> T + Sync,
) -> Vec<T> {
    if chunks.len() == 1 {
        return vec![count(chunks[0])];
    }
    std::thread::scope(|s| {
        let count = &count;
        let handles: Vec<_> = chunks.iter().map(|&c| s.spawn(move || count(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Every Keras token with its total count, in the order Keras 2 ranks them: count descending,
/// ties in first-seen order (Python's stable sort over the `OrderedDict` of `word_counts`).
pub(crate) fn keras_word_counts(chunks: &[&[&str]]) -> Vec<(String, u64)> {
    // Per chunk: tokens by first-seen id, and their counts.
    let per = per_chunk(chunks, |chunk| {
        let mut interner = Interner::default();
        let mut counts: Vec<u64> = Vec::new();
        let mut buf = LowerBuf::new();
        for &text in chunk {
            keras_tokens(text, |tok| {
                let (id, new) = interner.intern(tok, &mut buf);
                if new {
                    counts.push(0);
                }
                counts[id as usize] += 1;
            });
        }
        (interner.into_names(), counts)
    });
    // First seen overall = first chunk that saw it, then its id there.
    let mut merged: FxHashMap<&str, (u64, usize, u32)> = FxHashMap::default();
    for (chunk, (names, counts)) in per.iter().enumerate() {
        for (id, (word, &count)) in names.iter().zip(counts).enumerate() {
            merged
                .entry(word.as_ref())
                .and_modify(|e| e.0 += count)
                .or_insert((count, chunk, id as u32));
        }
    }
    let mut ranked: Vec<(&str, (u64, usize, u32))> = merged.into_iter().collect();
    ranked.sort_unstable_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then((a.1 .1, a.1 .2).cmp(&(b.1 .1, b.1 .2)))
    });
    ranked
        .into_iter()
        .map(|(w, (c, _, _))| (w.to_string(), c))
        .collect()
}

/// In how many texts a token occurs: `see` it once per token occurrence, with the text's number.
#[derive(Clone, Copy)]
struct DocCount {
    docs: u32,
    last_doc: u32,
}

impl DocCount {
    #[inline]
    fn see(&mut self, doc: u32) {
        if self.last_doc != doc {
            self.last_doc = doc;
            self.docs += 1;
        }
    }
}

struct WordCounts<'a> {
    /// Tokens by id (first-seen order within the chunk).
    names: Vec<Cow<'a, str>>,
    docs: Vec<DocCount>,
    /// (id1, id2) -> document count
    pairs: FxHashMap<u64, DocCount>,
    /// With `keep_rows`: each text's distinct token ids, text after text (`row_lens` long each),
    /// so the texts need not be tokenized again to encode them.
    row_ids: Vec<u32>,
    row_lens: Vec<u32>,
}

fn count_words<'a>(chunk: &[&'a str], bigrams: bool, keep_rows: bool) -> WordCounts<'a> {
    let mut interner = Interner::default();
    let mut docs: Vec<DocCount> = Vec::new();
    let mut pairs: FxHashMap<u64, DocCount> = FxHashMap::default();
    let mut buf = LowerBuf::new();
    let mut row_ids: Vec<u32> = Vec::new();
    let mut row_lens: Vec<u32> = Vec::with_capacity(if keep_rows { chunk.len() } else { 0 });
    for (doc, &text) in chunk.iter().enumerate() {
        // Texts are numbered from 1 so the initial `last_doc` of 0 never matches.
        let doc = doc as u32 + 1;
        let mut prev = NO_PART;
        let row_start = row_ids.len();
        word_tokens(text, |tok| {
            let (id, new) = interner.intern(tok, &mut buf);
            if new {
                docs.push(DocCount {
                    docs: 0,
                    last_doc: 0,
                });
            }
            let d = &mut docs[id as usize];
            if keep_rows && d.last_doc != doc {
                row_ids.push(id);
            }
            d.see(doc);
            if bigrams {
                if prev != NO_PART {
                    pairs
                        .entry(pair_key(prev, id))
                        .or_insert(DocCount {
                            docs: 0,
                            last_doc: 0,
                        })
                        .see(doc);
                }
                prev = id;
            }
        });
        if keep_rows {
            row_lens.push((row_ids.len() - row_start) as u32);
        }
    }
    WordCounts {
        names: interner.into_names(),
        docs,
        pairs,
        row_ids,
        row_lens,
    }
}

/// A vocabulary candidate's name without building the bigram string: `"a b"` is `Bi(a, b)`.
#[derive(Clone, Copy)]
enum Name<'a> {
    Uni(&'a str),
    Bi(&'a str, &'a str),
}

impl Name<'_> {
    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (a, b) = match *self {
            Name::Uni(a) => (a, None),
            Name::Bi(a, b) => (a, Some(b)),
        };
        a.bytes().chain(
            b.into_iter()
                .flat_map(|b| std::iter::once(b' ').chain(b.bytes())),
        )
    }

    /// Byte order of the joined names, which is `str`'s order.
    fn cmp(&self, other: &Name<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (Name::Uni(a), Name::Uni(b)) => a.cmp(b),
            _ => self.bytes().cmp(other.bytes()),
        }
    }

    fn into_string(self) -> String {
        match self {
            Name::Uni(a) => a.to_string(),
            Name::Bi(a, b) => format!("{a} {b}"),
        }
    }
}

fn words_vocabulary(
    chunks: &[&[&str]],
    min_count: u64,
    max_features: usize,
    bigrams: bool,
) -> Vec<String> {
    let counts = per_chunk(chunks, |chunk| count_words(chunk, bigrams, false));
    words_vocabulary_of(counts, min_count, max_features, bigrams).0
}

/// The vocabulary of counted chunks, and per chunk its token ids' features (0 = not kept; the
/// unigram features only, enough to encode the texts when there are no bigrams).
fn words_vocabulary_of(
    counts: Vec<WordCounts<'_>>,
    min_count: u64,
    max_features: usize,
    bigrams: bool,
) -> (Vec<String>, Vec<Vec<u32>>) {
    let (word_lists, mut pair_maps): (Vec<_>, Vec<_>) = counts
        .into_iter()
        .map(|c| ((c.names, c.docs), c.pairs))
        .unzip();
    // Merge into the first chunk's numbering: global id = first chunk's id for its tokens (so
    // its bigram map is reused as is), then new ids for tokens the others add.
    let mut names: Vec<&str> = Vec::new();
    let mut merged: FxHashMap<&str, (u64, u32)> = FxHashMap::default();
    let mut local_to_global: Vec<Vec<u32>> = Vec::with_capacity(word_lists.len());
    for (words, docs) in &word_lists {
        let mut map = Vec::with_capacity(words.len());
        for (word, count) in words.iter().zip(docs) {
            let (word, docs) = (word.as_ref(), u64::from(count.docs));
            let e = merged.entry(word).or_insert_with(|| {
                names.push(word);
                (0, names.len() as u32 - 1)
            });
            e.0 += docs;
            map.push(e.1);
        }
        local_to_global.push(map);
    }
    // (documents, name, global id of a unigram or NO_PART)
    let mut candidates: Vec<(u64, Name<'_>, u32)> = merged
        .iter()
        .filter(|(_, &(d, _))| d >= min_count)
        .map(|(&w, &(d, id))| (d, Name::Uni(w), id))
        .collect();
    if bigrams {
        let (first, rest) = pair_maps.split_at_mut(1);
        let pair_docs = &mut first[0];
        for (pairs, map) in rest.iter().zip(&local_to_global[1..]) {
            for (&key, count) in pairs {
                let (a, b) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
                let e = pair_docs
                    .entry(pair_key(map[a], map[b]))
                    .or_insert(DocCount {
                        docs: 0,
                        last_doc: 0,
                    });
                e.docs = e.docs.saturating_add(count.docs);
            }
        }
        candidates.extend(
            pair_docs
                .iter()
                .filter(|(_, c)| u64::from(c.docs) >= min_count)
                .map(|(&key, c)| {
                    let (a, b) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
                    (u64::from(c.docs), Name::Bi(names[a], names[b]), NO_PART)
                }),
        );
    }
    let order = |a: &(u64, Name<'_>, u32), b: &(u64, Name<'_>, u32)| {
        b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1))
    };
    if candidates.len() > max_features {
        candidates.select_nth_unstable_by(max_features, order);
        candidates.truncate(max_features);
    }
    candidates.sort_unstable_by(order);
    let mut feature_of = vec![0u32; names.len()];
    for (rank, c) in candidates.iter().enumerate() {
        if c.2 != NO_PART {
            feature_of[c.2 as usize] = rank as u32 + 1;
        }
    }
    let local_features = local_to_global
        .iter()
        .map(|map| map.iter().map(|&g| feature_of[g as usize]).collect())
        .collect();
    let vocab = candidates
        .into_iter()
        .map(|(_, w, _)| w.into_string())
        .collect();
    (vocab, local_features)
}

#[cfg(test)]
mod tests;
