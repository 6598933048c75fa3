//! The tokenizer's settings ([`TokenizerConfig`]) and the naming rule of repeat features.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    ///
    /// With `repeats`, a token found at least twice in a text also gives the feature
    /// `"token×2"`, and at least four times `"token×4"` (each a vocabulary candidate like any
    /// token, counted in the texts where the token repeats that often): a binary stand-in for
    /// log-scaled term frequency, which long questions carry and a bag of words alone loses.
    /// Only for long training texts ([`REPEATS_MIN_MEAN_TOKENS`]); otherwise fitting keeps none
    /// and records the option off.
    ///
    /// With `subwords` = n (2 to [`MAX_SUBWORDS`]; 0 = off), every run of n characters inside a
    /// token's letters and digits (tokens of more than n of them) is a candidate too, named
    /// [`SUBWORD_MARK`] + the characters (`"·ing"`), counted by texts and ranked with the words
    /// for the same `max_features`: evidence from rare, inflected and misspelled words that a
    /// whole-word vocabulary drops.
    Words {
        min_count: usize,
        max_features: usize,
        bigrams: bool,
        #[serde(default)]
        repeats: bool,
        #[serde(default, skip_serializing_if = "is_zero")]
        subwords: usize,
    },
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Starts a sub-word feature's name (`"·ing"`). The word pattern splits on it (it is neither a
/// letter nor a digit), so no token contains it.
pub const SUBWORD_MARK: char = '·';

/// The longest sub-words: 4 characters of at most 4 UTF-8 bytes each fit the 16-byte key the
/// encoder looks them up by.
pub const MAX_SUBWORDS: usize = 4;

/// With sub-words, the vocabulary keeps the size the words alone give it: sub-words take the
/// places of rarer words in rank order (cooking: 2,334 of its 4,277 entries become sub-words,
/// the rest are the words in 6+ texts), which keeps a model's size and first-layer cost. Words
/// in more than `min_count` texts and at least one in this many texts are never displaced, so a
/// small vocabulary keeps its words: with a teacher, the same scores as 10% more entries on
/// cooking and so-titles (benchmarks/quality.md).
pub const SUBWORD_PROTECT_PER_TEXTS: u64 = 1000;

/// Checks a sub-word length: 0 (off) or 2 to [`MAX_SUBWORDS`].
pub fn check_subwords(n: usize) -> Result<()> {
    if n == 1 || n > MAX_SUBWORDS {
        return Err(Error::config(
            "subwords",
            format!("{n} is out of range: 0 (off) or 2 to {MAX_SUBWORDS} characters"),
        ));
    }
    Ok(())
}

/// The characters of a sub-word feature's name (`"·ing"` -> `"ing"`), if it is one.
pub fn subword_part(name: &str) -> Option<&str> {
    name.strip_prefix(SUBWORD_MARK).filter(|g| !g.is_empty())
}

/// Joins a token and its repetition level in a repeat feature's name (`"lambda×2"`). The word
/// pattern never puts `×` in a token, so such names never clash with a token's.
pub const REPEAT_MARK: char = '×';

/// Occurrences in one text that give a token's repeat features: `token×2`, `token×4`.
pub const REPEAT_LEVELS: [u32; 2] = [2, 4];

/// Repeat features are only made for training texts of at least this many tokens on average.
/// Titles (about 9 tokens on cooking and so-titles) seldom repeat a word: there they added a
/// few hundred features (artifact size) and moved P@1 by no more than seed noise, while
/// title + body posts (about 60 tokens on so-nlp) gain from them.
pub const REPEATS_MIN_MEAN_TOKENS: u64 = 20;

/// The token and level of a repeat feature's name (`"lambda×2"` -> `("lambda", 0)`).
pub fn repeat_parts(name: &str) -> Option<(&str, usize)> {
    let (token, level) = name.rsplit_once(REPEAT_MARK)?;
    let level = REPEAT_LEVELS
        .iter()
        .position(|l| level.parse::<u32>().ok() == Some(*l))?;
    (!token.is_empty() && !token.contains(' ')).then_some((token, level))
}

impl Default for TokenizerConfig {
    /// Unigrams only (bigrams overfit on both reference datasets: a reference MLP lost 0.02-0.05 P@1 with them), seen in at
    /// least 2 texts, up to 20,000 features.
    fn default() -> Self {
        TokenizerConfig::Words {
            min_count: 2,
            max_features: 20_000,
            bigrams: false,
            repeats: false,
            subwords: 0,
        }
    }
}

impl TokenizerConfig {
    /// The same config with sub-words of `n` characters (0 = none); the Keras tokenizer has
    /// none and is returned as is.
    pub fn with_subwords(self, n: usize) -> Self {
        match self {
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                ..
            } => TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                subwords: n,
            },
            keras => keras,
        }
    }

    /// The sub-word length (0 = none).
    pub fn subwords(&self) -> usize {
        match *self {
            TokenizerConfig::Words { subwords, .. } => subwords,
            TokenizerConfig::Keras { .. } => 0,
        }
    }

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
                subwords,
                ..
            } => {
                check_subwords(subwords)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(min_count: usize, max_features: usize) -> TokenizerConfig {
        TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams: false,
            repeats: false,
            subwords: 0,
        }
    }

    #[test]
    fn validate_rejects_degenerate_configs() {
        let bad = |c: TokenizerConfig| matches!(c.validate(), Err(Error::InvalidConfig { .. }));
        assert!(bad(TokenizerConfig::Keras { num_words: 0 }));
        assert!(bad(TokenizerConfig::Keras { num_words: 1 }));
        assert!(bad(words(0, 10)));
        assert!(bad(words(1, 0)));
        let with_subwords = |n| words(1, 10).with_subwords(n);
        assert!(bad(with_subwords(1)));
        assert!(bad(with_subwords(MAX_SUBWORDS + 1)));
        assert!(with_subwords(0).validate().is_ok());
        assert!(with_subwords(2).validate().is_ok());
        assert!(with_subwords(MAX_SUBWORDS).validate().is_ok());
        assert!(TokenizerConfig::origin().validate().is_ok());
        assert!(TokenizerConfig::default().validate().is_ok());
    }

    #[test]
    fn repeat_parts_reads_only_the_repeat_levels() {
        assert_eq!(repeat_parts("lambda×2"), Some(("lambda", 0)));
        assert_eq!(repeat_parts("lambda×4"), Some(("lambda", 1)));
        assert_eq!(repeat_parts("lambda×3"), None);
        assert_eq!(repeat_parts("×2"), None);
        assert_eq!(repeat_parts("a b×2"), None);
        assert_eq!(repeat_parts("lambda"), None);
    }
}
