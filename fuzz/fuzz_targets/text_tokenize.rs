//! Question text -> HTML to text -> masking -> tokenizers, with the tokenizer's invariants.
//!
//! Invalid UTF-8 is replaced (the predict function only ever passes `&str`). The input goes
//! through tokenizers fitted once on fixed texts (Keras and Words, with and without bigrams), and
//! its lines are also used as a training corpus, so fitting is fuzzed too; `fit_encode` must give
//! the same rows as `fit` + `encode_all`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tagger_core::text::{self, Masker};
use tagger_core::tokenizer::{Tokenizer, TokenizerConfig};

const FIT_TEXTS: &[&str] = &[
    "How do I parse JSON in JavaScript?",
    "Merging two pandas DataFrames on a column in Python",
    "C# LINQ group by with .NET 8 and ASP.NET Core",
    "Why does my C++ template fail to compile? std::vector<int>",
    "scikit-learn pipeline with tf-idf features in python",
    "javascript promise async await error handling",
    "python list comprehension vs map performance",
    "Ünïcödé wörds: straße, İstanbul, ǅemal, ﬁle, ΣΑΣ",
];

fn masker() -> &'static Masker {
    static M: OnceLock<Masker> = OnceLock::new();
    M.get_or_init(|| {
        Masker::new(
            [
                "javascript",
                "c#",
                ".net",
                "scikit-learn",
                "tf",
                "İstanbul",
                "std::vector",
            ],
            "avocado",
        )
    })
}

fn fixed_tokenizers() -> &'static [Tokenizer] {
    static T: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        [
            TokenizerConfig::Keras { num_words: 16 },
            TokenizerConfig::Words {
                min_count: 1,
                max_features: 64,
                bigrams: true,
                repeats: true,
            },
            TokenizerConfig::default(),
        ]
        .iter()
        .map(|c| Tokenizer::fit(c, FIT_TEXTS.iter().copied()).expect("fixed texts fit"))
        .collect()
    })
}

/// `encode` is sorted, unique and in range, and names every token (and, with bigrams, every
/// adjacent pair) that has a feature: the explainer maps attributions back to words this way.
fn check(tok: &Tokenizer, text: &str) {
    let features = tok.encode(text);
    assert!(features.windows(2).all(|w| w[0] < w[1]), "{features:?}");
    assert!(features
        .iter()
        .all(|&f| f >= 1 && (f as usize) < tok.n_features()));
    for &f in &features {
        let name = tok.feature_name(f).expect("an encoded feature has a name");
        assert_eq!(tok.feature_index(name), Some(f), "{name:?}");
    }
    let tokens = tok.tokens(text);
    for t in &tokens {
        assert!(!t.is_empty());
        if let Some(f) = tok.feature_index(t) {
            assert!(features.binary_search(&f).is_ok(), "token {t:?} -> {f}");
        }
    }
    if let TokenizerConfig::Words { bigrams: true, .. } = tok.config() {
        for pair in tokens.windows(2) {
            if let Some(f) = tok.feature_index(&format!("{} {}", pair[0], pair[1])) {
                assert!(features.binary_search(&f).is_ok(), "pair {pair:?} -> {f}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let normalised = text::normalise(&raw);
    let prepared = text::prepare(masker(), &raw);
    let _ = masker().mask(&normalised);
    for tok in fixed_tokenizers() {
        check(tok, &raw);
        check(tok, &prepared);
    }

    let lines: Vec<&str> = prepared.lines().collect();
    for config in [
        TokenizerConfig::Keras { num_words: 8 },
        TokenizerConfig::Words {
            min_count: 1,
            max_features: 32,
            bigrams: true,
            repeats: true,
        },
    ] {
        let tok = Tokenizer::fit(&config, lines.iter().copied()).expect("valid config fits");
        for line in &lines {
            check(&tok, line);
        }
    }
    let config = TokenizerConfig::Words {
        min_count: 1,
        max_features: 32,
        bigrams: false,
        repeats: true,
    };
    let (tok, rows) = Tokenizer::fit_encode(&config, &lines).expect("valid config fits");
    let fitted = Tokenizer::fit(&config, lines.iter().copied()).expect("valid config fits");
    assert_eq!(tok.vocabulary(), fitted.vocabulary());
    assert_eq!(rows, fitted.encode_all(lines.iter().copied()));
});
