//! Training settings: one validated struct, two presets, and flat JSON overrides.
//!
//! `seed` reproduces the origin talk's pipeline exactly (Keras tokenizer with 400 words, 50/25
//! hidden units, 3 epochs, batch 128, 10% validation, a fixed 0.8 threshold); `default` is what
//! won on quality and speed on the real datasets. Overrides come from the CLI's flags, the train
//! function's environment and a per-dataset JSON sidecar, all through [`Overrides`], so a typo
//! is a specific error wherever it is made.

use serde::{Deserialize, Serialize};

use crate::calibrate::ThresholdStrategy;
use crate::dataset::CsvOptions;
use crate::error::{Error, Result};
use crate::train::TrainConfig;
use tagger_core::tokenizer::TokenizerConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The origin talk's pipeline, for comparison.
    Seed,
    /// The project's quality-tuned pipeline.
    Default,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "seed" | "origin" => Ok(Preset::Seed),
            "default" => Ok(Preset::Default),
            other => Err(Error::config(
                "preset",
                format!("unknown preset {other:?} (expected \"seed\" or \"default\")"),
            )),
        }
    }
}

/// How the explainer's background rows are picked from the training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackgroundMode {
    /// A seeded random sample (default: representative of the whole set).
    Sample,
    /// The first rows after shuffling, as the origin did (`X_train[:200]`).
    First,
}

/// Giveaway-word masking applied to training and question text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskSettings {
    /// Mask every tag name (whole words) in the text.
    pub tag_names: bool,
    /// More words to mask (aliases such as `tf` or `sklearn`).
    pub words: Vec<String>,
    pub replacement: String,
}

impl Default for MaskSettings {
    fn default() -> Self {
        Self {
            tag_names: false,
            words: Vec::new(),
            replacement: "avocado".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub preset: Preset,
    pub tokenizer: TokenizerConfig,
    pub train: TrainConfig,
    pub thresholds: ThresholdStrategy,
    /// Fraction of the training rows held out (from the end, as Keras does) for early stopping
    /// and threshold calibration.
    pub validation_split: f64,
    /// Shuffle the rows (seeded) before the test and validation splits. `false` keeps file
    /// order, as Keras' `fit(validation_split=...)` does: the validation rows are the last ones
    /// of the file (the seed preset, so it trains on the rows the origin trained on).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// After early stopping picked the epoch count and the thresholds were calibrated on the
    /// validation rows, train a second model (next seed) on training + validation rows for
    /// that many epochs and keep the logit average of both ([`tagger_core::model::Mlp::average_logits`]).
    /// A small ensemble that also sees 10% more data: on cooking +0.013 P@1 (mean of 3 seeds),
    /// at twice the training cost, so it is skipped above [`REFIT_MAX_ROWS`] training rows,
    /// where one model already has data enough.
    #[serde(default)]
    pub refit: bool,
    /// Adapt the training config to the data ([`Settings::train_for`]): bigger batches for
    /// large training sets, fewer hidden units for few tags. Only values
    /// still at [`TrainConfig::default`]'s are adapted, so explicit choices stand.
    #[serde(default)]
    pub auto_size: bool,
    /// Fraction held out for the test report when no separate test file is given.
    pub test_split: f64,
    pub mask: MaskSettings,
    pub csv: CsvOptions,
    pub background_rows: usize,
    pub background_mode: BackgroundMode,
}

impl Settings {
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Seed => Settings {
                preset,
                tokenizer: TokenizerConfig::Keras { num_words: 400 },
                train: TrainConfig::origin(),
                thresholds: ThresholdStrategy::Fixed(0.8),
                validation_split: 0.1,
                shuffle: false,
                refit: false,
                auto_size: false,
                test_split: 0.2,
                mask: MaskSettings::default(),
                csv: CsvOptions::default(),
                background_rows: 200,
                background_mode: BackgroundMode::First,
            },
            Preset::Default => Settings {
                preset,
                tokenizer: default_tokenizer(),
                train: TrainConfig::default(),
                // One threshold per tag-frequency group rather than one for all: macro-F1 +0.013
                // to +0.041 on every data set and re-split, P@1 the same, micro-F1 within ±0.005
                // (benchmarks/quality.md).
                thresholds: ThresholdStrategy::Frequency,
                validation_split: 0.1,
                shuffle: true,
                refit: true,
                auto_size: true,
                test_split: 0.2,
                mask: MaskSettings::default(),
                csv: CsvOptions::default(),
                background_rows: 200,
                background_mode: BackgroundMode::Sample,
            },
        }
    }

    pub fn seed(&self) -> u64 {
        self.train.seed
    }

    /// The training config for `rows` training rows (validation excluded) and `tags` tags.
    /// Without [`Settings::auto_size`] it is `self.train`; with it, values still at the default
    /// preset's adapt to the data (a pure function of the two counts, so runs stay reproducible):
    /// - more than [`LARGE_ROWS`] rows: batch [`LARGE_BATCH`], at most [`LARGE_EPOCHS`] epochs
    ///   (early stopping keeps the better). One pass over 100k+ rows nearly converges (the
    ///   188k-row scale CSV: validation loss 0.0784 after epoch 1, 0.0769 after 2, 0.0772 after
    ///   3), and large batches touch each first-layer row once per batch instead of once per
    ///   64 rows, which is where the time of long texts goes;
    /// - at most [`FEW_TAGS`] tags: [`FEW_TAGS_HIDDEN`] hidden units. A handful of outputs needs
    ///   no 256-unit layer (the scale CSV's 5 tags: same P@1 at a quarter of the first-layer cost).
    pub fn train_for(&self, rows: usize, tags: usize) -> TrainConfig {
        let mut cfg = self.train.clone();
        if !self.auto_size {
            return cfg;
        }
        let default = TrainConfig::default();
        if rows > LARGE_ROWS {
            if cfg.batch_size == default.batch_size {
                cfg.batch_size = LARGE_BATCH;
            }
            if cfg.epochs == default.epochs {
                cfg.epochs = LARGE_EPOCHS;
            }
        }
        if tags <= FEW_TAGS && cfg.hidden == default.hidden {
            cfg.hidden = vec![FEW_TAGS_HIDDEN];
        }
        cfg
    }

    /// Rejects values that would fail or silently misbehave later, before any work is done.
    pub fn validate(&self) -> Result<()> {
        self.tokenizer.validate()?;
        self.train.validate()?;
        self.thresholds.validate()?;
        self.csv.validate()?;
        fraction("validation_split", self.validation_split, true)?;
        fraction("test_split", self.test_split, false)?;
        if self.mask.replacement.trim().is_empty()
            || self.mask.replacement.contains(char::is_whitespace)
        {
            return Err(Error::config(
                "mask_replacement",
                format!(
                    "must be one non-empty word, got {:?}",
                    self.mask.replacement
                ),
            ));
        }
        Ok(())
    }

    /// Applies overrides on top of these settings (a `preset` override restarts from that preset).
    pub fn apply(mut self, o: &Overrides) -> Result<Self> {
        if let Some(p) = o.preset {
            self = Settings::preset(p);
        }
        if let Some(v) = o.epochs {
            self.train.epochs = v;
        }
        if let Some(v) = &o.hidden {
            self.train.hidden = v.clone();
        }
        if let Some(v) = o.batch_size {
            self.train.batch_size = v;
        }
        if let Some(v) = o.learning_rate {
            self.train.learning_rate = v;
        }
        if let Some(v) = o.dropout {
            self.train.dropout = v;
        }
        if let Some(v) = o.patience {
            self.train.early_stopping_patience = v;
        }
        if let Some(v) = o.seed {
            self.train.seed = v;
        }
        if let Some(n) = o.num_words {
            self.tokenizer = TokenizerConfig::Keras { num_words: n };
        }
        if o.max_features.is_some() || o.min_count.is_some() || o.bigrams.is_some() {
            let (mut min_count, mut max_features, mut bigrams) =
                match (&self.tokenizer, default_tokenizer()) {
                    (
                        TokenizerConfig::Words {
                            min_count,
                            max_features,
                            bigrams,
                        },
                        _,
                    ) => (*min_count, *max_features, *bigrams),
                    (
                        _,
                        TokenizerConfig::Words {
                            min_count,
                            max_features,
                            bigrams,
                        },
                    ) => (min_count, max_features, bigrams),
                    _ => (2, 20_000, false),
                };
            min_count = o.min_count.unwrap_or(min_count);
            max_features = o.max_features.unwrap_or(max_features);
            bigrams = o.bigrams.unwrap_or(bigrams);
            self.tokenizer = TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
            };
        }
        if let Some(t) = o.threshold {
            self.thresholds = ThresholdStrategy::Fixed(t);
        }
        if let Some(s) = &o.thresholds {
            self.thresholds = match s.as_str() {
                "global" => ThresholdStrategy::Global,
                "per-tag" | "per_tag" => ThresholdStrategy::PerTag { min_support: 20, floor: 0.2 },
                "fixed" => ThresholdStrategy::Fixed(0.8),
                "frequency" => ThresholdStrategy::Frequency,
                other => {
                    return Err(Error::config("thresholds", format!("unknown strategy {other:?} (expected \"global\", \"frequency\", \"per-tag\" or \"fixed\")")))
                }
            };
        }
        if let Some(v) = o.validation_split {
            self.validation_split = v;
        }
        if let Some(v) = o.test_split {
            self.test_split = v;
        }
        if let Some(v) = o.mask_tags {
            self.mask.tag_names = v;
        }
        if let Some(v) = &o.mask_words {
            self.mask.words = v.clone();
        }
        if let Some(v) = &o.mask_replacement {
            self.mask.replacement = v.clone();
        }
        if let Some(v) = &o.tag_separator {
            let mut chars = v.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => self.csv.tag_separator = c,
                _ => {
                    return Err(Error::config(
                        "tag_separator",
                        format!("must be one character, got {v:?}"),
                    ))
                }
            }
        }
        if let Some(v) = o.max_bad_fraction {
            self.csv.max_bad_fraction = v;
        }
        if let Some(v) = o.background_rows {
            self.background_rows = v;
        }
        if let Some(v) = o.background_mode {
            self.background_mode = v;
        }
        self.validate()?;
        Ok(self)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::preset(Preset::Default)
    }
}

/// Largest training set (rows, validation excluded) that [`Settings::refit`] applies to.
pub const REFIT_MAX_ROWS: usize = 100_000;

/// [`Settings::train_for`]: training sets above this many rows count as large.
pub const LARGE_ROWS: usize = 100_000;
/// [`Settings::train_for`]: batch size for large training sets.
pub const LARGE_BATCH: usize = 512;
/// [`Settings::train_for`]: most epochs for large training sets.
pub const LARGE_EPOCHS: usize = 2;
/// [`Settings::train_for`]: data sets with at most this many tags count as having few tags.
pub const FEW_TAGS: usize = 16;
/// [`Settings::train_for`]: hidden units for few tags.
pub const FEW_TAGS_HIDDEN: usize = 64;

fn yes() -> bool {
    true
}

/// The project's default tokenizer: found best on the real datasets (see the README's quality table).
pub fn default_tokenizer() -> TokenizerConfig {
    TokenizerConfig::Words {
        min_count: 2,
        max_features: 20_000,
        bigrams: false,
    }
}

fn fraction(field: &'static str, v: f64, zero_ok: bool) -> Result<()> {
    let ok = v.is_finite() && v < 1.0 && (v > 0.0 || (zero_ok && v == 0.0));
    if ok {
        Ok(())
    } else {
        let range = if zero_ok { "[0, 1)" } else { "(0, 1)" };
        Err(Error::config(
            field,
            format!("must be a fraction in {range}, got {v}"),
        ))
    }
}

/// Flat, user-facing overrides: CLI flags, environment defaults and `data/<name>.json` sidecars.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub preset: Option<Preset>,
    pub epochs: Option<usize>,
    pub hidden: Option<Vec<usize>>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f32>,
    pub dropout: Option<f32>,
    pub patience: Option<usize>,
    pub seed: Option<u64>,
    /// Switches to the Keras tokenizer with this many words.
    pub num_words: Option<usize>,
    pub max_features: Option<usize>,
    pub min_count: Option<usize>,
    pub bigrams: Option<bool>,
    /// A fixed decision threshold for every tag.
    pub threshold: Option<f32>,
    /// `global`, `frequency`, `per-tag` or `fixed`.
    pub thresholds: Option<String>,
    pub validation_split: Option<f64>,
    pub test_split: Option<f64>,
    pub mask_tags: Option<bool>,
    pub mask_words: Option<Vec<String>>,
    pub mask_replacement: Option<String>,
    pub tag_separator: Option<String>,
    pub max_bad_fraction: Option<f64>,
    pub background_rows: Option<usize>,
    pub background_mode: Option<BackgroundMode>,
    /// Publish even when the quality gate fails (train function only).
    pub force: Option<bool>,
}

impl Overrides {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(Error::ConfigJson)
    }

    /// `self` with every field that `later` sets replaced by `later`'s value.
    pub fn merged(&self, later: &Overrides) -> Overrides {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(later).unwrap_or_default();
        let mut out = a.as_object().cloned().unwrap_or_default();
        for (k, v) in b.as_object().into_iter().flatten() {
            if !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(serde_json::Value::Object(out)).unwrap_or_else(|_| later.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn auto_size_adapts_only_default_values_and_only_when_on() {
        let s = Settings::default();
        assert_eq!(s.train_for(LARGE_ROWS, 100), s.train);
        let big = s.train_for(LARGE_ROWS + 1, 5);
        assert_eq!(
            (big.batch_size, big.epochs, big.hidden),
            (LARGE_BATCH, LARGE_EPOCHS, vec![FEW_TAGS_HIDDEN])
        );
        let mut chosen = Settings::default();
        chosen.train.batch_size = 32;
        chosen.train.hidden = vec![128];
        let kept = chosen.train_for(LARGE_ROWS + 1, 5);
        assert_eq!((kept.batch_size, kept.hidden), (32, vec![128]));
        let seed = Settings::preset(Preset::Seed);
        assert_eq!(seed.train_for(LARGE_ROWS + 1, 5), seed.train);
    }

    #[test]
    fn rejects_unknown_sidecar_field() {
        let err = Overrides::from_json(br#"{"epochz": 3}"#).unwrap_err();
        assert!(
            matches!(&err, Error::ConfigJson(m) if m.to_string().contains("epochz")),
            "{err}"
        );
    }

    #[test]
    fn rejects_invalid_override_values() {
        let bad = |o: Overrides| Settings::default().apply(&o).unwrap_err();
        assert!(matches!(
            bad(Overrides {
                test_split: Some(1.5),
                ..Default::default()
            }),
            Error::InvalidConfig {
                field: "test_split",
                ..
            }
        ));
        assert!(matches!(
            bad(Overrides {
                validation_split: Some(f64::NAN),
                ..Default::default()
            }),
            Error::InvalidConfig {
                field: "validation_split",
                ..
            }
        ));
        assert!(matches!(
            bad(Overrides {
                tag_separator: Some("||".into()),
                ..Default::default()
            }),
            Error::InvalidConfig {
                field: "tag_separator",
                ..
            }
        ));
        assert!(matches!(
            bad(Overrides {
                thresholds: Some("best".into()),
                ..Default::default()
            }),
            Error::InvalidConfig {
                field: "thresholds",
                ..
            }
        ));
        assert!(matches!(
            bad(Overrides {
                epochs: Some(0),
                ..Default::default()
            }),
            Error::InvalidConfig { .. }
        ));
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
}
