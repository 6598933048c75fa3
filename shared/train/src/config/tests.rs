use std::collections::BTreeMap;

use clap::{Args, FromArgMatches};

use super::*;

fn field_of(err: &Error) -> String {
    match err {
        Error::InvalidConfig { field, .. } => (*field).to_owned(),
        Error::ConfigJson { path, .. } => path.clone(),
        Error::ConfigValue { origin, .. } => origin.clone(),
        other => format!("not a settings error: {other}"),
    }
}

fn cli(args: &[&str]) -> std::result::Result<Overrides, clap::Error> {
    let cmd = Overrides::augment_args(clap::Command::new("t").no_binary_name(true));
    Overrides::from_arg_matches(&cmd.try_get_matches_from(args)?)
}

fn env(vars: &[(&str, &str)]) -> Result<Overrides> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Overrides::from_env(|k| map.get(k).cloned())
}

#[test]
fn presets_validate() {
    Settings::preset(Preset::Seed).validate().unwrap();
    Settings::preset(Preset::Default).validate().unwrap();
}

#[test]
fn seed_preset_matches_origin() {
    let s = Settings::preset(Preset::Seed);
    assert_eq!(s.tokenizer, TokenizerConfig::Keras { num_words: 400 });
    assert_eq!(s.train.hidden, vec![50, 25]);
    assert_eq!((s.train.epochs, s.train.batch_size), (3, 128));
    assert_eq!(s.thresholds, ThresholdStrategy::Fixed(0.8));
    assert_eq!(s.validation_split, 0.1);
}

#[test]
fn auto_size_adapts_only_sizes_not_set_and_only_when_on() {
    let s = Settings::default();
    assert_eq!(s.train_for(LARGE_ROWS, 100, false), s.train);
    let big = s.train_for(LARGE_ROWS + 1, 5, false);
    assert_eq!(
        (big.batch_size, big.epochs, big.hidden),
        (LARGE_BATCH, LARGE_EPOCHS, vec![FEW_TAGS_HIDDEN])
    );
    let chosen = Settings::default()
        .apply(&Overrides {
            batch_size: Some(32),
            hidden: Some(vec![128]),
            ..Default::default()
        })
        .unwrap();
    let kept = chosen.train_for(LARGE_ROWS + 1, 5, false);
    assert_eq!((kept.batch_size, kept.hidden), (32, vec![128]));
    assert_eq!(
        kept.epochs, LARGE_EPOCHS,
        "epochs were not set, so they adapt"
    );
    let seed = Settings::preset(Preset::Seed);
    assert_eq!(seed.train_for(LARGE_ROWS + 1, 5, false), seed.train);
}

/// The activity penalty is a plain setting: off in both presets, set as given, bounded.
#[test]
fn activity_penalty_is_off_unless_set_and_bounded() {
    assert_eq!(Settings::default().train.activity_l1, 0.0);
    assert_eq!(Settings::preset(Preset::Seed).train.activity_l1, 0.0);
    let set = Settings::default()
        .apply(&Overrides {
            activity_l1: Some(2e-5),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(set.train.activity_l1, 2e-5);
    assert_eq!(set.train_for(11_164, 735, false).activity_l1, 2e-5);
    for bad in [-1e-6, 0.5, f64::NAN] {
        let err = Settings::default()
            .apply(&Overrides {
                activity_l1: Some(bad),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("activity_l1"), "{bad}: {err}");
    }
}

/// Sub-words are a plain setting: off in both presets, set as given on the word tokenizer,
/// bounded, and not for the Keras tokenizer.
#[test]
fn sub_words_are_off_unless_set_and_bounded() {
    assert_eq!(Settings::default().tokenizer.subwords(), 0);
    assert_eq!(Settings::preset(Preset::Seed).tokenizer.subwords(), 0);
    let set = |o: Overrides| Settings::default().apply(&o);
    let three = set(Overrides {
        subwords: Some(3),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(three.tokenizer.subwords(), 3);
    let mut want = default_tokenizer();
    if let TokenizerConfig::Words { subwords, .. } = &mut want {
        *subwords = 3;
    }
    assert_eq!(three.tokenizer, want, "only the sub-words change");
    for bad in [1, tagger_core::tokenizer::MAX_SUBWORDS + 1] {
        let err = set(Overrides {
            subwords: Some(bad),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("subwords"), "{bad}: {err}");
    }
    let err = set(Overrides {
        subwords: Some(3),
        num_words: Some(400),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("subwords"), "{err}");
}

/// Auto-size gives taught runs on short texts sub-words, and nothing else.
#[test]
fn sub_words_go_to_taught_short_texts_only() {
    let s = Settings::default();
    let short = || 8.5;
    assert_eq!(s.tokenizer_for(true, short).subwords(), AUTO_SUBWORDS);
    let long = REPEATS_MIN_MEAN_TOKENS as f64;
    assert_eq!(s.tokenizer_for(true, || long).subwords(), 0);
    assert_eq!(
        s.tokenizer_for(true, || long - 0.1).subwords(),
        AUTO_SUBWORDS
    );
    let never = || -> f64 { panic!("the texts are not looked at without a teacher") };
    assert_eq!(s.tokenizer_for(false, never).subwords(), 0);
    let fixed = s
        .clone()
        .apply(&Overrides {
            auto_size: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fixed.tokenizer_for(true, short).subwords(), 0);
    let four = s
        .apply(&Overrides {
            subwords: Some(4),
            ..Default::default()
        })
        .unwrap();
    assert!(four.pinned.subwords);
    assert_eq!(four.tokenizer_for(true, short).subwords(), 4);
    assert_eq!(four.tokenizer_for(false, short).subwords(), 4);
    let seed = Settings::preset(Preset::Seed);
    assert_eq!(seed.tokenizer_for(true, short), seed.tokenizer);
}

#[test]
fn small_sets_get_patience_of_at_least_min_patience_steps() {
    let s = Settings::default();
    let batch = s.train.batch_size;
    // 573 rows in the small-set batches of 32: 18 steps an epoch, so 2 epochs make 36 steps.
    assert_eq!(s.train_for(573, 900, false).early_stopping_patience, 2);
    // 200 rows: 7 steps an epoch, 6 epochs.
    assert_eq!(s.train_for(200, 900, false).early_stopping_patience, 6);
    // 2,000 rows in batches of 64: 32 steps an epoch, 2 epochs; 3,000 rows: 47 steps, 1.
    assert_eq!(s.train_for(2_000, 900, false).early_stopping_patience, 2);
    assert_eq!(s.train_for(3_000, 900, false).early_stopping_patience, 1);
    // An epoch of 36+ steps keeps the preset's 1 (cooking, so-titles, so-nlp have 160+).
    assert_eq!(
        s.train_for(MIN_PATIENCE_STEPS * batch, 900, false)
            .early_stopping_patience,
        s.train.early_stopping_patience
    );
    let pinned = Settings::default()
        .apply(&Overrides {
            patience: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pinned.train_for(573, 900, false).early_stopping_patience, 1);
    let off = Settings::default()
        .apply(&Overrides {
            patience: Some(0),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(off.train_for(573, 900, false).early_stopping_patience, 0);
    let json = serde_json::to_value(&pinned).unwrap();
    assert_eq!(json["pinned"]["patience"], true);
    let sized = Settings::default()
        .apply(&Overrides {
            batch_size: Some(32),
            ..Default::default()
        })
        .unwrap();
    let json = serde_json::to_value(&sized).unwrap();
    assert!(json["pinned"].get("patience").is_none(), "{json}");
    assert!(json["pinned"].get("lr_decay").is_none(), "{json}");
}

#[test]
fn taught_runs_get_a_patience_of_two_epochs_unless_set() {
    let s = Settings::default();
    // cooking's size: untaught, the preset's 1; taught, 2.
    assert_eq!(s.train_for(11_164, 735, false).early_stopping_patience, 1);
    assert_eq!(
        s.train_for(11_164, 735, true).early_stopping_patience,
        TAUGHT_PATIENCE
    );
    // A small set's longer patience stays the longer one.
    assert_eq!(s.train_for(200, 900, true).early_stopping_patience, 6);
    // Set explicitly, even to the preset's value, or turned off: kept.
    for v in [1, 0] {
        let set = Settings::default()
            .apply(&Overrides {
                patience: Some(v),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(set.train_for(11_164, 735, true).early_stopping_patience, v);
    }
    let fixed = Settings::default()
        .apply(&Overrides {
            auto_size: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fixed.train_for(11_164, 735, true), fixed.train);
    let seed = Settings::preset(Preset::Seed);
    assert_eq!(seed.train_for(11_164, 735, true), seed.train);
}

#[test]
fn small_sets_get_the_small_data_regime_below_the_cut_only() {
    let s = Settings::default();
    let small = s.train_for(SMALL_ROWS - 1, 900, false);
    assert_eq!(
        (small.batch_size, small.hidden.clone(), small.epochs),
        (SMALL_BATCH, vec![SMALL_HIDDEN], SMALL_EPOCHS)
    );
    assert_eq!(small.lr_decay, SMALL_LR_DECAY);
    // Everything else is the preset's.
    assert_eq!(
        (small.learning_rate, small.dropout, small.seed),
        (s.train.learning_rate, s.train.dropout, s.train.seed)
    );
    // At the cut and above: the preset's config (patience aside, which has its own rule), so
    // cooking, so-titles and so-nlp (11,000+ rows) train as before.
    for rows in [SMALL_ROWS, 6_400, 11_000] {
        let cfg = s.train_for(rows, 900, false);
        let as_preset = TrainConfig {
            early_stopping_patience: cfg.early_stopping_patience,
            ..s.train.clone()
        };
        assert_eq!(cfg, as_preset, "{rows} rows");
    }
    assert_eq!(s.train_for(6_400, 900, false), s.train);
    // Few tags still get their narrow layer.
    assert_eq!(s.train_for(500, 5, false).hidden, vec![FEW_TAGS_HIDDEN]);

    // Sizes and the decay set explicitly are kept, the others still adapt.
    let chosen = Settings::default()
        .apply(&Overrides {
            batch_size: Some(64),
            hidden: Some(vec![256]),
            lr_decay: Some(0.85),
            ..Default::default()
        })
        .unwrap();
    let kept = chosen.train_for(573, 900, false);
    assert_eq!(
        (kept.batch_size, kept.hidden, kept.lr_decay, kept.epochs),
        (64, vec![256], 0.85, SMALL_EPOCHS)
    );
    let epochs = Settings::default()
        .apply(&Overrides {
            epochs: Some(20),
            ..Default::default()
        })
        .unwrap()
        .train_for(573, 900, false);
    assert_eq!((epochs.epochs, epochs.batch_size), (20, SMALL_BATCH));
    let json = serde_json::to_value(&chosen).unwrap();
    assert_eq!(json["pinned"]["lr_decay"], true);
    // The seed preset never adapts.
    let seed = Settings::preset(Preset::Seed);
    assert_eq!(seed.train_for(573, 900, false), seed.train);
}

#[test]
fn rare_tags_go_untrained_only_when_tags_outnumber_rows() {
    let s = Settings::default();
    assert_eq!(s.train.min_tag_rows, 1);
    assert_eq!(
        s.train_for(573, 883, false).min_tag_rows,
        MANY_TAGS_MIN_TAG_ROWS
    );
    assert_eq!(s.train_for(573, 573, false).min_tag_rows, 1);
    assert_eq!(s.train_for(11_416, 1_470, false).min_tag_rows, 1);
    // A value set explicitly is kept either way, and recorded as set.
    for v in [1, 5] {
        let chosen = Settings::default()
            .apply(&Overrides {
                min_tag_rows: Some(v),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(chosen.train_for(573, 883, false).min_tag_rows, v);
        assert_eq!(chosen.train_for(11_416, 1_470, false).min_tag_rows, v);
        let json = serde_json::to_value(&chosen).unwrap();
        assert_eq!(json["pinned"]["min_tag_rows"], true, "{json}");
    }
    // The seed preset never adapts.
    let seed = Settings::preset(Preset::Seed);
    assert_eq!(seed.train_for(573, 883, false).min_tag_rows, 1);
    // Unset, it is not recorded: earlier settings (and version ids) stay as they were.
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["train"].get("min_tag_rows").is_none(), "{json}");
    assert!(json["pinned"].get("min_tag_rows").is_none(), "{json}");
}

#[test]
fn explicit_value_equal_to_the_default_is_not_auto_sized() {
    // The preset's batch is 64 too: an explicit 64 must still stand above 100k rows.
    let flags = cli(&["--batch-size", "64", "--epochs", "20", "--hidden", "256"]).unwrap();
    let s = Settings::default().apply(&flags).unwrap();
    assert_eq!(s.train.batch_size, TrainConfig::default().batch_size);
    let cfg = s.train_for(LARGE_ROWS + 1, 5, false);
    assert_eq!(
        (cfg.batch_size, cfg.epochs, cfg.hidden),
        (64, 20, vec![256])
    );
}

#[test]
fn settings_without_explicit_sizes_serialize_as_before() {
    // Version ids hash the settings: runs that pin nothing keep their ids.
    let json = serde_json::to_value(Settings::default()).unwrap();
    assert!(json.get("pinned").is_none() && json.get("max_memory_mb").is_none());
    assert!(json["csv"].get("max_tags").is_none());
}

#[test]
fn rejects_unknown_sidecar_field() {
    let err = Overrides::from_json(br#"{"epochz": 3}"#).unwrap_err();
    assert!(err.to_string().contains("epochz"), "{err}");
    let err = Sidecar::from_json(br#"{"force": true, "epochz": 3}"#).unwrap_err();
    assert!(err.to_string().contains("epochz"), "{err}");
}

#[test]
fn force_is_a_sidecar_option_not_a_setting() {
    let s = Sidecar::from_json(br#"{"epochs": 2, "force": true}"#).unwrap();
    assert_eq!((s.settings.epochs, s.force), (Some(2), Some(true)));
    assert!(Overrides::from_json(br#"{"force": true}"#).is_err());
    assert!(cli(&["--force"]).is_err());
    let err = Sidecar::from_json(br#"{"force": "yes"}"#).unwrap_err();
    assert_eq!(field_of(&err), "force", "{err}");
    let err = Sidecar::from_json(br#"{"force": true, "force": false}"#).unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
}

/// Each unbounded-training case found by trying the upload loop as an attacker would: every
/// one is now a quick error naming the setting, before anything is allocated for it.
#[test]
fn out_of_range_sidecar_values_name_the_setting() {
    let megabyte = format!(
        r#"{{"mask_tags": true, "mask_replacement": "{}"}}"#,
        "x".repeat(1 << 20)
    );
    let cases: Vec<(String, &str)> = vec![
        (r#"{"hidden": [1000000000]}"#.into(), "hidden"),
        (r#"{"hidden": [64, 64, 64, 64, 64]}"#.into(), "hidden"),
        (r#"{"hidden": [0]}"#.into(), "hidden"),
        (r#"{"epochs": 1000000000}"#.into(), "epochs"),
        (r#"{"epochs": 1000000000000000000}"#.into(), "epochs"),
        (r#"{"epochs": 1e18}"#.into(), "epochs"),
        (r#"{"epochs": 0}"#.into(), "epochs"),
        (r#"{"batch_size": 65537}"#.into(), "batch_size"),
        (r#"{"learning_rate": 1e39}"#.into(), "learning_rate"),
        (r#"{"learning_rate": 2}"#.into(), "learning_rate"),
        (r#"{"learning_rate": 0}"#.into(), "learning_rate"),
        (r#"{"dropout": 1}"#.into(), "dropout"),
        (r#"{"distill": 1.5}"#.into(), "distill"),
        (r#"{"distill": -0.1}"#.into(), "distill"),
        (r#"{"min_tag_rows": 0}"#.into(), "min_tag_rows"),
        (r#"{"min_tag_rows": 1001}"#.into(), "min_tag_rows"),
        (r#"{"threshold": 1}"#.into(), "threshold"),
        (
            r#"{"threshold": 0.5, "thresholds": "global"}"#.into(),
            "threshold",
        ),
        (r#"{"test_split": 1.5}"#.into(), "test_split"),
        (r#"{"validation_split": -0.1}"#.into(), "validation_split"),
        (r#"{"max_features": 1000001}"#.into(), "max_features"),
        (r#"{"num_words": 1}"#.into(), "num_words"),
        (
            r#"{"num_words": 400, "max_features": 10}"#.into(),
            "num_words",
        ),
        (r#"{"mask_words": ["a b", ""]}"#.into(), "mask_words"),
        (
            format!(r#"{{"mask_words": {:?}}}"#, vec!["w"; 1001]),
            "mask_words",
        ),
        (megabyte, "mask_replacement"),
        (
            r#"{"mask_replacement": "two words"}"#.into(),
            "mask_replacement",
        ),
        (r#"{"tag_separator": "||"}"#.into(), "tag_separator"),
        (r#"{"tag_separator": "a"}"#.into(), "tag_separator"),
        (r#"{"tag_format": "tabs"}"#.into(), "tag_format"),
        (
            r#"{"tag_format": "pipe", "tag_separator": "|"}"#.into(),
            "tag_format",
        ),
        (r#"{"delimiter": "pipe"}"#.into(), "delimiter"),
        (r#"{"columns": ["tags=0", "text=1"]}"#.into(), "columns"),
        (r#"{"columns": ["label=1"]}"#.into(), "columns"),
        (r#"{"columns": []}"#.into(), "columns"),
        (r#"{"thresholds": "best"}"#.into(), "thresholds"),
        (r#"{"preset": "best"}"#.into(), "preset"),
        (r#"{"background_rows": 10001}"#.into(), "background_rows"),
        (r#"{"background_rows": 0}"#.into(), "background_rows"),
        (r#"{"max_tags": 100001}"#.into(), "max_tags"),
        (r#"{"max_memory_mb": 0}"#.into(), "max_memory_mb"),
        (r#"{"max_text_bytes": 0}"#.into(), "max_text_bytes"),
        (r#"{"lr_decay": 0}"#.into(), "lr_decay"),
        (r#"{"patience": 1001}"#.into(), "patience"),
    ];
    for (json, field) in cases {
        let started = std::time::Instant::now();
        let err = Sidecar::from_json(json.as_bytes())
            .map(|s| s.settings)
            .and_then(|o| Settings::default().apply(&o))
            .unwrap_err();
        assert_eq!(
            field_of(&err),
            field,
            "{}: {err}",
            &json[..json.len().min(80)]
        );
        assert!(err.to_string().contains(field), "{err}");
        assert!(started.elapsed().as_secs() < 1, "{field}: slow rejection");
    }
}

/// Non-finite and out-of-range numbers are errors on the CLI and in the environment too (JSON
/// has no NaN or infinity literal; the sidecar's `1e39` is above).
#[test]
fn non_finite_values_are_errors_on_every_surface() {
    for (name, value) in [
        ("learning_rate", "NaN"),
        ("learning_rate", "inf"),
        ("learning_rate", "1e39"),
        ("dropout", "NaN"),
        ("threshold", "NaN"),
        ("validation_split", "-inf"),
        ("test_split", "NaN"),
        ("max_bad_fraction", "NaN"),
        ("lr_decay", "inf"),
        ("distill", "NaN"),
    ] {
        let flag = format!("--{}={value}", name.replace('_', "-"));
        let parsed = cli(&[&flag]).unwrap();
        let err = Settings::default().apply(&parsed).unwrap_err();
        assert_eq!(field_of(&err), name, "{flag}: {err}");
        let var = Overrides::env_var(name);
        let err = env(&[(&var, value)]).unwrap_err();
        assert_eq!(field_of(&err), var, "{var}={value}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }
    let err = Overrides::from_json(br#"{"learning_rate": NaN}"#).unwrap_err();
    assert_eq!(field_of(&err), "learning_rate", "{err}");
}

#[test]
fn later_overrides_win_and_preset_restarts() {
    let env = Overrides {
        epochs: Some(7),
        seed: Some(1),
        ..Default::default()
    };
    let sidecar = Overrides::from_json(br#"{"seed": 9, "preset": "seed"}"#).unwrap();
    let merged = env.merged(&sidecar);
    assert_eq!((merged.epochs, merged.seed), (Some(7), Some(9)));
    let s = Settings::default().apply(&merged).unwrap();
    assert_eq!(s.preset, Preset::Seed);
    assert_eq!((s.train.epochs, s.train.seed), (7, 9));
}

/// One value per setting, as JSON and as a CLI / environment string. A new setting fails
/// `every_setting_exists_on_every_surface` until it is added here.
fn samples() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    BTreeMap::from([
        ("preset", (r#""seed""#, "seed")),
        ("epochs", ("7", "7")),
        ("hidden", ("[50, 25]", "50,25")),
        ("batch_size", ("32", "32")),
        ("learning_rate", ("0.001", "0.001")),
        ("lr_decay", ("0.9", "0.9")),
        ("dropout", ("0.25", "0.25")),
        ("distill", ("0.5", "0.5")),
        ("min_tag_rows", ("3", "3")),
        ("activity_l1", ("0.0001", "0.0001")),
        ("patience", ("3", "3")),
        ("seed", ("18446744073709551615", "18446744073709551615")),
        ("num_words", ("400", "400")),
        ("max_features", ("5000", "5000")),
        ("min_count", ("3", "3")),
        ("bigrams", ("true", "true")),
        ("repeats", ("false", "false")),
        ("subwords", ("3", "3")),
        ("threshold", ("0.5", "0.5")),
        ("thresholds", (r#""per-tag""#, "per-tag")),
        ("validation_split", ("0.2", "0.2")),
        ("test_split", ("0.3", "0.3")),
        ("shuffle", ("false", "false")),
        ("refit", ("false", "false")),
        ("auto_size", ("false", "false")),
        ("mask_tags", ("true", "true")),
        ("mask_words", (r#"["tf", "sklearn"]"#, "tf,sklearn")),
        ("mask_replacement", (r#""word""#, "word")),
        ("tag_separator", (r#""|""#, "|")),
        ("tag_format", (r#""angle""#, "angle")),
        ("delimiter", (r#""tab""#, "tab")),
        ("no_header", ("true", "true")),
        ("columns", (r#"["text", "tags"]"#, "text,tags")),
        ("max_bad_fraction", ("0.5", "0.5")),
        ("max_text_bytes", ("4096", "4096")),
        ("max_tags", ("500", "500")),
        ("background_rows", ("50", "50")),
        ("background_mode", (r#""first""#, "first")),
        ("max_memory_mb", ("2048", "2048")),
    ])
}

#[test]
fn every_setting_exists_on_every_surface() {
    let schema = serde_json::to_value(schemars::schema_for!(Overrides)).unwrap();
    let json_names: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut names = Overrides::names();
    names.sort();
    let mut sorted_json = json_names.clone();
    sorted_json.sort();
    assert_eq!(names, sorted_json, "CLI flags and JSON keys differ");
    let samples = samples();
    for name in &names {
        let (json, text) = samples
            .get(name.as_str())
            .unwrap_or_else(|| panic!("no sample value for setting {name}"));
        let from_json = Overrides::from_json(format!(r#"{{"{name}": {json}}}"#).as_bytes())
            .unwrap_or_else(|e| panic!("sidecar {name}: {e}"));
        assert_ne!(
            from_json,
            Overrides::default(),
            "sidecar {name} set nothing"
        );
        let flag = format!("--{}={text}", name.replace('_', "-"));
        let from_cli = cli(&[&flag]).unwrap_or_else(|e| panic!("{flag}: {e}"));
        assert_eq!(from_cli, from_json, "{flag}");
        let var = Overrides::env_var(name);
        let from_env = env(&[(&var, text)]).unwrap_or_else(|e| panic!("{var}: {e}"));
        assert_eq!(from_env, from_json, "{var}");
        let mut sidecar = Overrides::default();
        if *name == "threshold" {
            sidecar.thresholds = Some(ThresholdMode::Fixed);
        }
        if *name == "num_words" {
            sidecar.preset = Some(Preset::Seed);
        }
        Settings::default()
            .apply(&sidecar.merged(&from_json))
            .unwrap_or_else(|e| panic!("{name} does not apply: {e}"));
    }
    assert_eq!(
        samples.len(),
        names.len(),
        "samples for settings that do not exist"
    );
}

#[test]
fn merge_takes_every_field_from_the_later_overrides() {
    let full = samples()
        .iter()
        .filter(|(name, _)| !["num_words", "threshold", "tag_format"].contains(*name))
        .map(|(name, (json, _))| format!(r#""{name}": {json}"#))
        .collect::<Vec<_>>()
        .join(", ");
    let mut full = Overrides::from_json(format!("{{{full}}}").as_bytes()).unwrap();
    // Set past validation: together they conflict, but merging must not care.
    full.num_words = Some(400);
    full.threshold = Some(0.5);
    full.tag_format = Some(crate::dataset::TagFormat::Angle);
    assert_eq!(Overrides::default().merged(&full), full);
    assert_eq!(full.merged(&Overrides::default()), full);
}

#[test]
fn cli_booleans_work_as_bare_flags_and_with_values() {
    assert_eq!(cli(&["--mask-tags"]).unwrap().mask_tags, Some(true));
    assert_eq!(
        cli(&["--mask-tags", "false"]).unwrap().mask_tags,
        Some(false)
    );
    assert_eq!(cli(&["--refit=no"]).unwrap().refit, Some(false));
    assert_eq!(
        cli(&["--preset", "origin"]).unwrap().preset,
        Some(Preset::Seed)
    );
    assert!(cli(&["--preset", "best"]).is_err());
}

#[test]
fn environment_errors_name_the_variable() {
    for (var, value) in [
        ("TRAIN_EPOCHS", "three"),
        ("TRAIN_HIDDEN", "50;25"),
        ("TRAIN_PRESET", "best"),
        ("TRAIN_EPOCHS", "0"),
        ("TRAIN_HIDDEN", "1000000000"),
    ] {
        let err = env(&[(var, value)]).unwrap_err();
        assert_eq!(field_of(&err), var, "{err}");
    }
}

#[test]
fn memory_estimate_stops_runs_that_cannot_fit() {
    let shape = Footprint {
        features: 20_000,
        tags: 100,
        fit_rows: 17_280,
        validation_rows: 1_920,
        test_rows: 4_800,
        models: 2,
    };
    let s = Settings::default();
    let mb = limits::estimate_bytes(&s.train, &shape) >> 20;
    assert!((100..400).contains(&mb), "so-titles-sized run: {mb} MiB");
    let within = Settings {
        max_memory_mb: Some(512),
        ..Settings::default()
    };
    within.check_memory(&shape).unwrap();
    // The widest settings allowed, on a big vocabulary and many tags.
    let mut wide = within.clone();
    wide.train.hidden = vec![4096, 4096];
    let big = Footprint {
        features: 1_000_000,
        tags: 10_000,
        ..shape
    };
    let err = wide.check_memory(&big).unwrap_err();
    assert_eq!(field_of(&err), "max_memory_mb", "{err}");
    assert!(err.to_string().contains("max_features"), "{err}");
    // Many tags with many evaluation rows: the dense probability matrices dominate.
    let tall = Footprint {
        features: 1000,
        tags: 10_000,
        validation_rows: 20_000,
        test_rows: 50_000,
        ..shape
    };
    let err = within.check_memory(&tall).unwrap_err();
    assert!(err.to_string().contains("max_tags"), "{err}");
}

#[test]
fn machine_memory_is_known_here() {
    let (mb, origin) = limits::available_memory_mb().expect("/proc/meminfo on Linux");
    assert!(mb > 0, "{origin}");
}

#[test]
fn sidecar_schema_is_committed_and_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/settings.schema.json");
    let schema = schemars::schema_for!(Sidecar);
    let current = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("UPDATE_SETTINGS_SCHEMA").is_some() {
        std::fs::write(path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == current,
        "{path} is not what the settings struct generates: rerun with UPDATE_SETTINGS_SCHEMA=1 and commit it"
    );
}

/// The reading settings serialise as they did before the format settings existed unless one is
/// set, so the version ids of earlier uploads (data + settings) stay the same. Golden: the
/// fields `CsvOptions` serialised before `tag_format`, `delimiter`, `no_header`, `columns`.
#[test]
fn reading_settings_keep_earlier_version_ids() {
    let json =
        |o: &Overrides| serde_json::to_string(&Settings::default().apply(o).unwrap().csv).unwrap();
    assert_eq!(
        json(&Overrides::default()),
        r#"{"tag_separator":",","max_bad_fraction":0.1,"max_text_bytes":1048576}"#
    );
    let pipe = Overrides {
        tag_separator: Some('|'),
        ..Default::default()
    };
    assert_eq!(
        json(&pipe),
        r#"{"tag_separator":"|","max_bad_fraction":0.1,"max_text_bytes":1048576}"#
    );
    let set = Overrides::from_json(
        br#"{"tag_format": "list", "delimiter": "tab", "no_header": true, "columns": ["text", "tags"]}"#,
    )
    .unwrap();
    assert_eq!(
        json(&set),
        r#"{"tag_separator":",","tag_format":"list","delimiter":"tab","no_header":true,"columns":["text","tags"],"max_bad_fraction":0.1,"max_text_bytes":1048576}"#
    );
}

/// `tag_separator` `,` set on purpose is the comma format (no detection); `tag_format` replaces
/// an earlier source's separator.
#[test]
fn tag_separator_and_tag_format_settle_one_way_to_split() {
    use crate::dataset::TagFormat;
    let comma = Overrides {
        tag_separator: Some(','),
        ..Default::default()
    };
    let s = Settings::default().apply(&comma).unwrap();
    assert_eq!(s.csv.tag_format, TagFormat::Comma);
    let sidecar = Overrides {
        tag_format: Some(TagFormat::Angle),
        ..Default::default()
    };
    let s = Settings::default()
        .apply(&Overrides {
            tag_separator: Some('|'),
            ..Default::default()
        })
        .unwrap()
        .apply(&sidecar)
        .unwrap();
    assert_eq!(
        (s.csv.tag_format, s.csv.tag_separator),
        (TagFormat::Angle, ',')
    );
}

#[test]
fn a_vocabulary_grown_by_unlabelled_texts_keeps_the_first_layer_s_weights() {
    let s = Settings::default();
    let mut cfg = TrainConfig {
        hidden: vec![256, 64],
        ..TrainConfig::default()
    };
    s.hold_first_layer(&mut cfg, 5857, 8027);
    assert_eq!(cfg.hidden, vec![186, 64], "256 * 5857 / 8027, rounded down");
    let mut same = TrainConfig::default();
    s.hold_first_layer(&mut same, 5857, 5857);
    assert_eq!(same.hidden, TrainConfig::default().hidden);
    for set in [
        Overrides {
            hidden: Some(vec![256]),
            ..Default::default()
        },
        Overrides {
            auto_size: Some(false),
            ..Default::default()
        },
    ] {
        let s = Settings::default().apply(&set).unwrap();
        let mut cfg = s.train.clone();
        s.hold_first_layer(&mut cfg, 5857, 8027);
        assert_eq!(cfg.hidden, vec![256]);
    }
}
