use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;

use super::counting::keras_word_counts;
use super::*;
use crate::error::Error;

/// A `tags,text` CSV's rows (the shared data sets' canonical layout), read with the csv crate:
/// the core has no dataset reader of its own.
struct Row {
    text: String,
}

fn read_rows(path: &Path) -> Result<Vec<Row>, csv::Error> {
    let mut reader = csv::Reader::from_path(path)?;
    let headers = reader.headers()?.clone();
    let col = headers
        .iter()
        .position(|h| h == "text")
        .expect("a text column");
    reader
        .records()
        .map(|r| {
            r.map(|r| Row {
                text: r[col].to_owned(),
            })
        })
        .collect()
}

fn words(min_count: usize, max_features: usize, bigrams: bool) -> TokenizerConfig {
    TokenizerConfig::Words {
        min_count,
        max_features,
        bigrams,
        repeats: false,
        subwords: 0,
    }
}

fn with_repeats(config: TokenizerConfig) -> TokenizerConfig {
    match config {
        TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams,
            ..
        } => TokenizerConfig::Words {
            min_count,
            max_features,
            bigrams,
            repeats: true,
            subwords: 0,
        },
        keras => keras,
    }
}

fn with_subwords(config: TokenizerConfig, n: usize) -> TokenizerConfig {
    config.with_subwords(n)
}

fn keras_tokens_of(text: &str) -> Vec<String> {
    let t = Tokenizer::fit(&TokenizerConfig::Keras { num_words: 10 }, [""]).unwrap();
    t.tokens(text).into_iter().map(Cow::into_owned).collect()
}

fn word_tokens_of(text: &str) -> Vec<String> {
    let t = Tokenizer::fit(&TokenizerConfig::default(), [""]).unwrap();
    t.tokens(text).into_iter().map(Cow::into_owned).collect()
}

// ----- Keras mode ---------------------------------------------------------------------------

#[test]
fn keras_tokens_follow_text_to_word_sequence() {
    // Filters become spaces; the apostrophe and non-space whitespace other than \t \n survive.
    assert_eq!(
        keras_tokens_of("Hello, World! It's C++/C#_x\tTab\nNL a\rb ÉTÉ"),
        ["hello", "world", "it's", "c", "c", "x", "tab", "nl", "a\rb", "été"]
    );
}

#[test]
fn keras_ranks_by_count_then_first_seen() {
    let ranked = keras_word_counts(&[&["b a", "a b c", "c"]]);
    let words: Vec<&str> = ranked.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(words, ["b", "a", "c"]);
    assert!(ranked.iter().all(|(_, c)| *c == 2));
}

#[test]
fn keras_keeps_indices_below_num_words() {
    let t = Tokenizer::fit(
        &TokenizerConfig::Keras { num_words: 3 },
        ["x x x y y z", "w"],
    )
    .unwrap();
    assert_eq!(t.vocabulary(), ["x", "y"]);
    assert_eq!(t.n_features(), 3);
    assert_eq!(t.encode("Z y X y"), [1, 2]);
    assert_eq!(t.feature_name(0), None);
    assert_eq!(t.feature_name(1), Some("x"));
    assert_eq!(t.feature_name(3), None);
}

/// Golden values: `../shared/golden/keras-tokenizer/<name>.json`, made by tf_keras 2.21
/// `Tokenizer(num_words=400)` fitted on `data/<name>/train.csv` (the file's `source` and `keras`
/// fields say so), `texts_to_matrix(mode='binary')` on the first 500 rows of `test.csv`.
fn check_keras_golden(name: &str) {
    let shared = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"));
    let golden_path = shared
        .join("golden/keras-tokenizer")
        .join(format!("{name}.json"));
    let train_path = shared.join("data").join(name).join("train.csv");
    let test_path = shared.join("data").join(name).join("test.csv");
    if !golden_path.exists() || !train_path.exists() || !test_path.exists() {
        eprintln!("skipping keras golden test for {name}: ../shared files are absent");
        return;
    }
    let golden: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&golden_path).unwrap()).unwrap();
    let train = read_rows(&train_path).unwrap();
    let test = read_rows(&test_path).unwrap();
    let texts: Vec<&str> = train.iter().map(|e| e.text.as_str()).collect();

    for n_chunks in [1, 3] {
        let ranked = keras_word_counts(&chunk_by_bytes(&texts, n_chunks));
        assert_eq!(
            ranked.len() as u64,
            golden["vocabulary_size_full"].as_u64().unwrap(),
            "{name}"
        );
        let top: Vec<&str> = golden["top_words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        let counts: Vec<u64> = golden["word_counts_top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        let ours: Vec<&str> = ranked
            .iter()
            .take(top.len())
            .map(|(w, _)| w.as_str())
            .collect();
        let our_counts: Vec<u64> = ranked.iter().take(counts.len()).map(|(_, c)| *c).collect();
        assert_eq!(ours, top, "{name}: top words differ");
        assert_eq!(our_counts, counts, "{name}: word counts differ");
    }

    let tokenizer = Tokenizer::fit(
        &TokenizerConfig::Keras { num_words: 400 },
        texts.iter().copied(),
    )
    .unwrap();
    let expected = golden["test_binary_indices"].as_array().unwrap();
    assert_eq!(expected.len(), 500);
    for (row, (example, want)) in test.iter().zip(expected).enumerate() {
        let want: Vec<u32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            tokenizer.encode(&example.text),
            want,
            "{name}: test row {row}: {:?}",
            example.text
        );
    }
}

#[test]
fn keras_mode_matches_keras_golden_on_cooking() {
    check_keras_golden("cooking");
}

#[test]
fn keras_mode_matches_keras_golden_on_so_titles() {
    check_keras_golden("so-titles");
}

// ----- Words mode ---------------------------------------------------------------------------

#[test]
fn words_keep_programming_names_whole() {
    assert_eq!(
        word_tokens_of("I use C#, C++ and .NET (ASP.NET) with Node.js; python-3.x vs Objective-C."),
        [
            "i",
            "use",
            "c#",
            "c++",
            "and",
            ".net",
            "asp.net",
            "with",
            "node.js",
            "python-3.x",
            "vs",
            "objective-c"
        ]
    );
}

#[test]
fn words_strip_sentence_punctuation_and_ellipses() {
    assert_eq!(
        word_tokens_of("Why? wait...what --help e.g. it's \"quoted\" 3.14. x- __init__ _ -- ... #"),
        ["why", "wait", "what", "help", "e.g", "it", "s", "quoted", "3.14", "x", "__init__"]
    );
    assert_eq!(
        word_tokens_of("Ünïcode, café— naïve"),
        ["ünïcode", "café", "naïve"]
    );
}

#[test]
fn words_vocabulary_orders_by_document_count_then_token() {
    let texts = ["b b b a", "a c", "c b", "d"];
    let t = Tokenizer::fit(&words(2, 100, false), texts).unwrap();
    // b: 2 texts (repeats within a text count once), a: 2, c: 2, d: 1 (below min_count).
    assert_eq!(t.vocabulary(), ["a", "b", "c"]);
    assert_eq!(t.n_features(), 4);
    assert_eq!(t.encode("C a zzz A"), [1, 3]);
    let capped = Tokenizer::fit(&words(1, 2, false), texts).unwrap();
    assert_eq!(capped.vocabulary(), ["a", "b"]);
}

#[test]
fn repeats_add_a_feature_per_frequency_level() {
    let texts = [
        "lambda lambda lambda lambda s3",
        "Lambda LAMBDA s3 s3 api",
        "lambda api",
        "s3",
    ];
    let t = Tokenizer::fit(&with_repeats(words(2, 100, false)), texts).unwrap();
    // lambda: 3 texts, twice or more in 2, four times in 1 (below min_count); s3: 3 texts,
    // twice in 1; api: 2 texts.
    assert_eq!(t.vocabulary(), ["lambda", "s3", "api", "lambda×2"]);
    assert_eq!(t.encode("lambda"), [1]);
    assert_eq!(t.encode("LAMBDA s3 lambda"), [1, 2, 4]);
    assert_eq!(t.encode("api lambda lambda lambda lambda"), [1, 3, 4]);
    assert_eq!(t.feature_index("lambda×2"), Some(4));
    assert_eq!(t.feature_index("lambda×4"), None);
    assert_eq!(t.feature_index("s3×2"), None);
    assert_eq!(t.feature_name(4), Some("lambda×2"));
    // The fourth occurrence level, once kept.
    let t = Tokenizer::fit(&with_repeats(words(1, 100, false)), texts).unwrap();
    assert_eq!(t.feature_index("lambda×4"), Some(5));
    assert_eq!(t.encode("lambda lambda lambda lambda"), [1, 4, 5]);
    assert_eq!(t.encode("lambda lambda lambda"), [1, 4]);
    // Off: repeats change nothing, and a repeat name is no feature.
    let off = Tokenizer::fit(&words(1, 100, false), texts).unwrap();
    assert!(off.vocabulary().iter().all(|w| !w.contains(REPEAT_MARK)));
    assert_eq!(off.feature_index("lambda×2"), None);
}

#[test]
fn repeats_need_long_training_texts() {
    let short = ["lambda lambda s3", "lambda lambda api"];
    let config = with_repeats(words(1, 100, false));
    counting::MIN_MEAN_TOKENS.with(|m| m.set(REPEATS_MIN_MEAN_TOKENS));
    let t = Tokenizer::fit(&config, short).unwrap();
    assert_eq!(t.vocabulary(), ["lambda", "api", "s3"]);
    assert_eq!(t.config(), &words(1, 100, false));
    let long: Vec<String> = short
        .iter()
        .map(|t| format!("{t} {}", "w ".repeat(REPEATS_MIN_MEAN_TOKENS as usize)))
        .collect();
    let t = Tokenizer::fit(&config, long.iter().map(String::as_str)).unwrap();
    counting::MIN_MEAN_TOKENS.with(|m| m.set(0));
    assert_eq!(t.feature_index("lambda×2"), Some(2));
    assert_eq!(t.config(), &config);
}

#[test]
fn repeats_without_repeat_features_record_the_option_off() {
    let t = Tokenizer::fit(&with_repeats(words(1, 100, false)), ["a b", "b c"]).unwrap();
    assert_eq!(t.config(), &words(1, 100, false));
}

#[test]
fn repeat_names_are_rejected_unless_the_config_has_repeats() {
    let parse = |s: &str| serde_json::from_str::<Tokenizer>(s);
    assert!(parse(
        r#"{"config":{"Words":{"min_count":1,"max_features":9,"bigrams":false}},"vocab":["a","a×2"]}"#
    )
    .is_err());
    let t = parse(
        r#"{"config":{"Words":{"min_count":1,"max_features":9,"bigrams":false,"repeats":true}},"vocab":["a","a×2"]}"#,
    )
    .unwrap();
    assert_eq!(t.encode("a A"), [1, 2]);
}

#[test]
fn words_bigrams_are_counted_and_encoded_like_unigrams() {
    let texts = ["new york city", "New York pizza", "york new"];
    let t = Tokenizer::fit(&words(2, 100, true), texts).unwrap();
    assert_eq!(t.vocabulary(), ["new", "york", "new york"]);
    assert_eq!(t.encode("I love NEW YORK"), [1, 2, 3]);
    assert_eq!(t.encode("york new"), [1, 2]);
    assert_eq!(t.feature_name(3), Some("new york"));
    assert_eq!(t.feature_index("new york"), Some(3));
    assert_eq!(t.feature_index("york"), Some(2));
    assert_eq!(t.feature_index("york new"), None);
    assert_eq!(t.feature_index("zzz"), None);
}

#[test]
fn bigrams_compete_with_unigrams_for_max_features() {
    let texts = ["x y", "x y", "y"];
    let t = Tokenizer::fit(&words(2, 2, true), texts).unwrap();
    assert_eq!(t.vocabulary(), ["y", "x"]);
    let t = Tokenizer::fit(&words(2, 3, true), texts).unwrap();
    assert_eq!(t.vocabulary(), ["y", "x", "x y"]);
}

#[test]
fn bigram_encodes_even_when_its_words_are_not_features() {
    let repr = TokenizerRepr {
        config: words(1, 5, true),
        vocab: vec!["p q".to_string()],
    };
    let only_bigram = Tokenizer::try_from(repr).unwrap();
    assert_eq!(only_bigram.encode("P q p"), [1]);
    assert!(only_bigram.encode("p").is_empty());
    assert_eq!(only_bigram.n_features(), 2);
}

#[test]
fn long_and_non_ascii_tokens_are_lowercased_and_matched() {
    let long = "Supercalifragilisticexpialidocious_Method";
    let t = Tokenizer::fit(&words(1, 100, false), ["Été été ÉTÉ", long]).unwrap();
    // Both occur in one text, so token order decides: ASCII sorts before 'é'.
    assert_eq!(t.vocabulary(), [long.to_lowercase().as_str(), "été"]);
    assert_eq!(t.feature_index("été"), Some(2));
    assert_eq!(t.encode("ÉtÉ"), [2]);
    assert_eq!(t.encode(&long.to_uppercase()), [1]);
}

#[test]
fn encode_into_reuses_the_buffer() {
    let t = Tokenizer::fit(&words(1, 100, false), ["alpha beta", "gamma"]).unwrap();
    let mut out = vec![99, 98];
    t.encode_into("gamma Alpha", &mut out);
    assert_eq!(out, t.encode("alpha gamma"));
    assert_eq!(out.len(), 2);
    let long = "A".repeat(100);
    let t = Tokenizer::fit(&words(1, 100, false), [long.as_str()]).unwrap();
    assert_eq!(t.encode(&long.to_lowercase()), [1]);
}

#[test]
fn encode_all_matches_encode_row_by_row() {
    let texts: Vec<String> = (0..5000)
        .map(|i| format!("Row {i} talks about topic{} and C# stuff", i % 37))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t = Tokenizer::fit(&words(2, 50, true), refs.iter().copied()).unwrap();
    let rows = t.encode_all(refs.iter().copied());
    assert_eq!(rows.len(), texts.len());
    for (i, text) in refs.iter().enumerate() {
        assert_eq!(rows.row(i), t.encode(text).as_slice());
    }
}

const BAKING: [&str; 3] = [
    "baking bread x1 x2 x3 x4 x5 x6 x7 x8 x9",
    "baked bread x1 x2 x3 x4 x5 x6 x7 x8 x9",
    "bakery",
];

#[test]
fn subwords_are_counted_by_texts_and_ranked_with_the_words() {
    // Words in 2+ texts: "bread", "x1".."x9" (10). Sub-words: "bak" in 3 texts; "ake", "bre",
    // "ead", "rea" in 2. The vocabulary keeps the size of the words alone: "·bak" (3 texts)
    // takes the place of "x9", last of the 2-text entries by name.
    let t = Tokenizer::fit(&with_subwords(words(2, 100, false), 3), BAKING).unwrap();
    let mut want = vec!["·bak".to_string(), "bread".to_string()];
    want.extend((1..=8).map(|i| format!("x{i}")));
    assert_eq!(t.vocabulary(), want);
    assert_eq!(t.feature_index("·bak"), Some(1));
    assert_eq!(t.feature_name(1), Some("·bak"));
    assert_eq!(t.feature_index("·ake"), None);
    // An unseen, inflected word still reaches the model through a known sub-word; words of at
    // most 3 letters and digits make none.
    assert_eq!(t.encode("Bakes"), [1]);
    assert_eq!(t.encode("bak"), Vec::<u32>::new());
    assert_eq!(t.subword_features("bakes"), [1]);
    assert!(t.has_subwords());
    // Sub-words read letters and digits only: the word "b.a-ke" has the sub-words of "bake".
    assert_eq!(t.subword_features("b.a-ke"), [1]);

    // Ranked by texts, then by name (the mark sorts after ASCII): "pot" (3 texts) before
    // "·bak" (3), which displaces "pan" (2); "·ake" (2) ranks after "pan".
    let texts = [
        "baking", "baked", "bakes", "pan", "pan", "pot", "pot", "pot",
    ];
    let t = Tokenizer::fit(&with_subwords(words(2, 100, false), 3), texts).unwrap();
    assert_eq!(t.vocabulary(), ["pot", "·bak"]);
    assert_eq!(t.encode("Pot for baking"), [1, 2]);
}

#[test]
fn subwords_never_displace_words_in_more_than_min_count_texts_of_a_small_corpus() {
    // "rro" is in all 7 texts, ahead of both words; but each word is in 3+ texts (more than
    // min_count, and the corpus is too small for the per-mille rule to ask more): kept.
    let mut texts = vec!["error"; 4];
    texts.extend(["borrow"; 3]);
    let t = Tokenizer::fit(&with_subwords(words(2, 100, false), 3), texts).unwrap();
    assert_eq!(t.vocabulary(), ["error", "borrow"]);
    // In a large corpus, a word must be in 1 text in SUBWORD_PROTECT_PER_TEXTS to stay.
    let n = SUBWORD_PROTECT_PER_TEXTS as usize * 4;
    let mut texts: Vec<String> = vec!["error".to_string(); 4];
    texts.extend(std::iter::repeat_n("borrow".to_string(), 3));
    // Filler texts of one 3-character word each: no sub-words, each in one text.
    let digit = |d: usize| char::from_digit((d % 36) as u32, 36).unwrap();
    texts.extend((0..n).map(|i| [digit(i / 1296), digit(i / 36), digit(i)].iter().collect()));
    let t = Tokenizer::fit(
        &with_subwords(words(2, 100, false), 3),
        texts.iter().map(String::as_str),
    )
    .unwrap();
    assert_eq!(t.vocabulary(), ["·rro", "error"]);
}

#[test]
fn subwords_share_max_features_and_stay_off_when_unset() {
    let t = Tokenizer::fit(&with_subwords(words(2, 2, false), 3), BAKING).unwrap();
    assert_eq!(t.vocabulary(), ["·bak", "bread"]);
    // None get in (every word is in 3+ texts of a tiny corpus): recorded off.
    let kept = Tokenizer::fit(&with_subwords(words(2, 100, false), 3), ["bread"; 4]).unwrap();
    assert_eq!(kept.vocabulary(), ["bread"]);
    assert_eq!(kept.config().subwords(), 0);
    let plain = Tokenizer::fit(&words(2, 100, false), BAKING).unwrap();
    assert_eq!(plain.vocabulary().len(), 10);
    assert!(!plain.has_subwords());
    assert!(plain.subword_features("baking").is_empty());
}

#[test]
fn subword_mark_splits_words() {
    // No token can contain the mark, so no word's name can clash with a sub-word's.
    assert_eq!(word_tokens_of("a·b ab·cd"), ["a", "b", "ab", "cd"]);
}

#[test]
fn subwords_of_non_ascii_words_fit_their_keys() {
    let config = with_subwords(words(1, 100, false), MAX_SUBWORDS);
    // Four 4-byte characters: the longest key.
    let t = Tokenizer::fit(&config, ["𝒜𝒜𝒜𝒜𝒜"]).unwrap();
    assert!(
        t.vocabulary().contains(&"·𝒜𝒜𝒜𝒜".to_string()),
        "{:?}",
        t.vocabulary()
    );
    assert_eq!(t.encode("𝒜𝒜𝒜𝒜𝒜𝒜").len(), 1);
    let back = Tokenizer::from_parts(config, t.vocabulary().to_vec()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn subword_names_are_rejected_unless_the_config_makes_them() {
    let three = with_subwords(words(1, 100, false), 3);
    let ok = |config: &TokenizerConfig, vocab: &[&str]| {
        Tokenizer::from_parts(
            config.clone(),
            vocab.iter().map(|w| w.to_string()).collect(),
        )
    };
    assert!(ok(&three, &["·abc", "abc"]).is_ok());
    assert!(
        ok(&words(1, 100, false), &["·abc"]).is_err(),
        "sub-words off"
    );
    assert!(ok(&three, &["·ab"]).is_err(), "wrong length");
    assert!(ok(&three, &["·a-c"]).is_err(), "not letters and digits");
    assert!(ok(&three, &["a·bc"]).is_err(), "a mark inside a word");
    assert!(ok(&three, &["·abc", "·abc"]).is_err(), "duplicate");
}

#[test]
fn round_trips_through_json() {
    // JSON (settings, training records) is the tokenizer's only serde format: artifacts carry
    // it in their own wire types, and a `subwords` of 0 is left out so that the settings of
    // every model without sub-words serialise (and hash into version ids) as before.
    let t = Tokenizer::fit(&words(1, 100, true), ["c# and .net", "c# or java"]).unwrap();
    let json = serde_json::to_string(&t).unwrap();
    assert!(
        !json.contains("lookup") && !json.contains("subwords"),
        "only config and vocabulary serialise, sub-words only when on: {json}"
    );
    let back: Tokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert_eq!(
        back.encode("C# and .NET or java"),
        t.encode("C# and .NET or java")
    );
    let t = Tokenizer::fit(&with_subwords(words(1, 100, false), 3), ["jsonify", "json"]).unwrap();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains(r#""subwords":3"#), "{json}");
    let back: Tokenizer = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    assert_eq!(back.encode("jsonified"), t.encode("jsonified"));
}

#[test]
fn deserialise_rejects_inconsistent_vocabularies() {
    let parse = |s: &str| serde_json::from_str::<Tokenizer>(s);
    assert!(parse(r#"{"config":{"Keras":{"num_words":2}},"vocab":["a","b"]}"#).is_err());
    assert!(parse(
        r#"{"config":{"Words":{"min_count":1,"max_features":9,"bigrams":false}},"vocab":["a","a"]}"#
    )
    .is_err());
    assert!(parse(
        r#"{"config":{"Words":{"min_count":1,"max_features":9,"bigrams":false}},"vocab":["a b"]}"#
    )
    .is_err());
    assert!(parse(
        r#"{"config":{"Words":{"min_count":0,"max_features":9,"bigrams":false}},"vocab":[]}"#
    )
    .is_err());
    assert!(parse(
        r#"{"config":{"Words":{"min_count":1,"max_features":9,"bigrams":true}},"vocab":["a b"]}"#
    )
    .is_ok());
}

#[test]
fn fit_rejects_degenerate_configs() {
    assert!(matches!(
        Tokenizer::fit(&words(0, 1, false), ["a"]),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn fit_on_no_text_gives_an_empty_vocabulary() {
    let t = Tokenizer::fit(&TokenizerConfig::default(), std::iter::empty()).unwrap();
    assert!(t.vocabulary().is_empty());
    assert!(t.encode("anything").is_empty());
}

// ----- properties ---------------------------------------------------------------------------

fn any_config() -> impl Strategy<Value = TokenizerConfig> {
    prop_oneof![
        (2usize..40).prop_map(|num_words| TokenizerConfig::Keras { num_words }),
        (
            1usize..3,
            1usize..40,
            any::<bool>(),
            any::<bool>(),
            prop_oneof![Just(0usize), Just(2), Just(3)]
        )
            .prop_map(|(min_count, max_features, bigrams, repeats, subwords)| {
                let config = words(min_count, max_features, bigrams);
                let config = if repeats {
                    with_repeats(config)
                } else {
                    config
                };
                with_subwords(config, subwords)
            }),
    ]
}

fn any_texts() -> impl Strategy<Value = Vec<String>> {
    // Small alphabets make repeated tokens (and ties) likely; punctuation exercises the splitters.
    prop::collection::vec("[a-cA-C#+.\\- ,é]{0,30}", 0..30)
}

proptest! {
    #[test]
    fn encode_is_sorted_unique_and_in_range(config in any_config(), texts in any_texts(), query in "[a-cA-C#+.\\- é]{0,40}") {
        let t = Tokenizer::fit(&config, texts.iter().map(String::as_str)).unwrap();
        let row = t.encode(&query);
        prop_assert!(row.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(row.iter().all(|&i| i >= 1 && (i as usize) < t.n_features()));
        for &i in &row {
            prop_assert!(t.feature_name(i).is_some());
        }
    }

    #[test]
    fn encode_ignores_case(config in any_config(), texts in any_texts(), query in "[a-cA-C#+.\\- é]{0,40}") {
        let t = Tokenizer::fit(&config, texts.iter().map(String::as_str)).unwrap();
        prop_assert_eq!(t.encode(&query.to_ascii_uppercase()), t.encode(&query.to_ascii_lowercase()));
    }

    #[test]
    fn fit_does_not_depend_on_chunking(config in any_config(), texts in any_texts(), chunks in 2usize..5) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let one = Tokenizer::fit_in_chunks(&config, &refs, 1).unwrap();
        let many = Tokenizer::fit_in_chunks(&config, &refs, chunks).unwrap();
        prop_assert_eq!(&one, &many);
        prop_assert_eq!(one, Tokenizer::fit(&config, refs.iter().copied()).unwrap());
    }

    #[test]
    fn fit_encode_equals_fit_then_encode_all(config in any_config(), texts in any_texts(), chunks in 1usize..5) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let (t, rows) = Tokenizer::fit_encode_in_chunks(&config, &refs, chunks).unwrap();
        let fitted = Tokenizer::fit(&config, refs.iter().copied()).unwrap();
        prop_assert_eq!(&rows, &fitted.encode_all(refs.iter().copied()));
        prop_assert_eq!(t, fitted);
    }

    #[test]
    fn words_fit_does_not_depend_on_text_order(min_count in 1usize..3, max_features in 1usize..40, bigrams: bool, repeats: bool, texts in any_texts()) {
        let config = words(min_count, max_features, bigrams);
        let config = if repeats { with_repeats(config) } else { config };
        let forward = Tokenizer::fit(&config, texts.iter().map(String::as_str)).unwrap();
        let backward = Tokenizer::fit(&config, texts.iter().rev().map(String::as_str)).unwrap();
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn serde_round_trip_preserves_encoding(config in any_config(), texts in any_texts(), query in "[a-cA-C#+.\\- é]{0,40}") {
        let t = Tokenizer::fit(&config, texts.iter().map(String::as_str)).unwrap();
        let back: Tokenizer = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        prop_assert_eq!(back.encode(&query), t.encode(&query));
        prop_assert_eq!(back, t);
    }
}

// ----- timing (not a test of speed: prints figures) -----------------------------------------

/// CPU seconds (user + system) this process has used so far, from /proc (Linux); the machine
/// is shared, so wall time alone over-states the cost when other builds run.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// `cargo test --release -p tagger-shared --lib -- --ignored --nocapture tokenizer_timing_on_scale_csv`
/// after `python3 ../shared/tools/make-scale-csv -o /tmp/scale.csv`.
#[test]
#[ignore]
fn tokenizer_timing_on_scale_csv() {
    let path = Path::new("/tmp/scale.csv");
    if !path.exists() {
        eprintln!(
            "skipping: {} is absent (make it with ../shared/tools/make-scale-csv)",
            path.display()
        );
        return;
    }
    let started = Instant::now();
    let examples = read_rows(path).unwrap();
    let bytes: usize = examples.iter().map(|e| e.text.len()).sum();
    println!(
        "read csv: {:.2} s, {} rows ({} MB of text)",
        started.elapsed().as_secs_f64(),
        examples.len(),
        bytes >> 20
    );
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    for config in [
        TokenizerConfig::default(),
        TokenizerConfig::origin(),
        words(2, 20_000, true),
    ] {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        let t = Tokenizer::fit(&config, texts.iter().copied()).unwrap();
        let (fit, fit_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let (t1, c1) = (Instant::now(), cpu_seconds());
        let rows = t.encode_all(texts.iter().copied());
        let (enc, enc_cpu) = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
        assert_eq!(rows.len(), texts.len());
        println!(
            "{config:?}: fit {fit:.3} s + encode_all {enc:.3} s = {:.3} s wall, {:.2} s cpu ({} features, {} nnz)",
            fit + enc,
            fit_cpu + enc_cpu,
            t.n_features(),
            rows.nnz()
        );
    }

    let titles_path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/so-titles/test.csv"
    ));
    if let Ok(titles) = read_rows(titles_path) {
        let t = Tokenizer::fit(&TokenizerConfig::default(), texts.iter().copied()).unwrap();
        let mut out = Vec::new();
        let mut nnz = 0;
        let t0 = Instant::now();
        let reps = 20;
        for _ in 0..reps {
            for e in &titles {
                t.encode_into(&e.text, &mut out);
                nnz += out.len();
            }
        }
        let per = t0.elapsed().as_secs_f64() / (reps * titles.len()) as f64;
        println!(
            "encode_into: {:.2} µs per so-titles title ({nnz} features total)",
            per * 1e6
        );
    }
}
