//! Masking of words that name the answer (see [`Masker`]).

use std::borrow::Cow;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Whole-word, case-insensitive replacement of a fixed list of words.
///
/// A word matches only where it is not flanked by letters, digits or `_`: with `tf` masked,
/// `tf.nn` becomes `avocado.nn` but `tfidf` stays; `update` never becomes `uavocadoate`. Words may
/// span several tokens (`scikit-learn`, `scikit learn`) or start with punctuation (`.net`); where
/// two words match at the same place the longer wins. Words with no letter or digit are ignored.
///
/// Only the words and the replacement serialise; the lookup index is rebuilt on deserialise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "MaskerRepr", into = "MaskerRepr")]
pub struct Masker {
    /// Lowercase, sorted, de-duplicated.
    words: Vec<String>,
    replacement: String,
    /// First word-character run of each word (lowercase) -> (index into `words`, bytes of
    /// punctuation before that run), longest word first.
    index: FxHashMap<String, Vec<(usize, usize)>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct MaskerRepr {
    words: Vec<String>,
    replacement: String,
}

impl From<MaskerRepr> for Masker {
    fn from(r: MaskerRepr) -> Self {
        Masker::new(r.words, &r.replacement)
    }
}

impl From<Masker> for MaskerRepr {
    fn from(m: Masker) -> Self {
        MaskerRepr {
            words: m.words,
            replacement: m.replacement,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Masker {
    pub fn new(words: impl IntoIterator<Item = impl AsRef<str>>, replacement: &str) -> Masker {
        let mut words: Vec<String> = words
            .into_iter()
            .map(|w| w.as_ref().trim().to_lowercase())
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .collect();
        words.sort();
        words.dedup();
        let mut index: FxHashMap<String, Vec<(usize, usize)>> = FxHashMap::default();
        for (i, w) in words.iter().enumerate() {
            let Some(start) = w.find(is_word_char) else {
                continue;
            };
            let run_end = w[start..]
                .find(|c| !is_word_char(c))
                .map_or(w.len(), |e| start + e);
            index
                .entry(w[start..run_end].to_string())
                .or_default()
                .push((i, start));
        }
        for candidates in index.values_mut() {
            candidates.sort_by(|a, b| words[b.0].len().cmp(&words[a.0].len()).then(a.0.cmp(&b.0)));
        }
        Masker {
            words,
            replacement: replacement.to_string(),
            index,
        }
    }

    /// A masker that changes nothing.
    pub fn none() -> Masker {
        Masker::new(std::iter::empty::<&str>(), "")
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The masked words, lowercase and sorted.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    pub fn replacement(&self) -> &str {
        &self.replacement
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::new();
        let mut copied = 0; // text[..copied] is already in `out`
        let mut run_lower = String::new();
        let mut pos = 0;
        while pos < text.len() {
            let Some(rel) = text[pos..].find(is_word_char) else {
                break;
            };
            let start = pos + rel;
            let end = text[start..]
                .find(|c| !is_word_char(c))
                .map_or(text.len(), |e| start + e);
            pos = end;
            if start < copied {
                continue;
            }
            let run = &text[start..end];
            let key: &str = if run.chars().any(char::is_uppercase) {
                run_lower.clear();
                run_lower.extend(run.chars().flat_map(char::to_lowercase));
                &run_lower
            } else {
                run
            };
            let Some(candidates) = self.index.get(key) else {
                continue;
            };
            for &(word_index, prefix_len) in candidates {
                let word = &self.words[word_index];
                let Some(match_start) = start.checked_sub(prefix_len) else {
                    continue;
                };
                if match_start < copied || !text.is_char_boundary(match_start) {
                    continue;
                }
                let Some(len) = match_ignore_case(&text[match_start..], word) else {
                    continue;
                };
                let match_end = match_start + len;
                let before_ok = !text[..match_start]
                    .chars()
                    .next_back()
                    .is_some_and(is_word_char);
                let after_ok = !text[match_end..].chars().next().is_some_and(is_word_char);
                if before_ok && after_ok {
                    out.push_str(&text[copied..match_start]);
                    out.push_str(&self.replacement);
                    copied = match_end;
                    pos = pos.max(match_end);
                    break;
                }
            }
        }
        if copied == 0 && out.is_empty() {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// Byte length of the prefix of `hay` equal to `word_lower` ignoring case, if there is one.
fn match_ignore_case(hay: &str, word_lower: &str) -> Option<usize> {
    let mut want = word_lower.chars().peekable();
    for (i, c) in hay.char_indices() {
        if want.peek().is_none() {
            return Some(i);
        }
        for lc in c.to_lowercase() {
            if want.next() != Some(lc) {
                return None;
            }
        }
    }
    want.peek().is_none().then_some(hay.len())
}
