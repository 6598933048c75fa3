//! Training settings: one validated struct ([`Settings`]), two presets, and one typed partial
//! form of it ([`Overrides`]) that every surface is derived from.
//!
//! `seed` reproduces the origin talk's pipeline exactly (Keras tokenizer with 400 words, 50/25
//! hidden units, 3 epochs, batch 128, 10% validation, a fixed 0.8 threshold); `default` is what
//! won on quality and speed on the real datasets. [`Overrides`] is at once the CLI's flags (clap
//! derive), the train function's `TRAIN_<NAME>` variables ([`Overrides::from_env`], parsed by the
//! same clap definitions), the `data/<name>.json` sidecar ([`Sidecar`], serde) and its JSON
//! Schema (`shared/train/settings.schema.json`, schemars), so a setting has one name everywhere
//! and a typo or an out-of-range value is a specific error wherever it is made. Every bound is in
//! [`limits`].

pub mod limits;
mod overrides;
mod sidecar;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::calibrate::ThresholdStrategy;
use crate::dataset::CsvOptions;
use crate::error::{Error, Result};
use crate::train::TrainConfig;
use tagger_core::tokenizer::{TokenizerConfig, REPEATS_MIN_MEAN_TOKENS};

pub use limits::Footprint;
pub use overrides::{Overrides, ThresholdMode};
pub use sidecar::Sidecar;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The origin talk's pipeline, for comparison.
    #[serde(alias = "origin")]
    #[value(alias = "origin")]
    Seed,
    /// The project's quality-tuned pipeline.
    Default,
}

impl std::str::FromStr for Preset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        <Preset as clap::ValueEnum>::from_str(s.trim(), true).map_err(|_| {
            Error::config(
                "preset",
                format!("unknown preset {s:?} (expected \"seed\" or \"default\")"),
            )
        })
    }
}

/// How the explainer's background rows are picked from the training set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
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

/// Sizes set explicitly (through [`Overrides`]), which [`Settings::train_for`] never adapts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pinned {
    pub batch_size: bool,
    pub epochs: bool,
    pub hidden: bool,
    /// Left out when false, so settings that pinned only sizes serialize (and hash) as before.
    #[serde(skip_serializing_if = "is_false")]
    pub patience: bool,
    /// Left out when false, like `patience`.
    #[serde(skip_serializing_if = "is_false")]
    pub lr_decay: bool,
    /// Left out when false, like `patience`.
    #[serde(skip_serializing_if = "is_false")]
    pub min_tag_rows: bool,
    /// Left out when false, like `patience`.
    #[serde(skip_serializing_if = "is_false")]
    pub subwords: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Pinned {
    fn is_empty(&self) -> bool {
        *self == Pinned::default()
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
    /// large training sets, fewer hidden units for few tags. Sizes set explicitly
    /// ([`Settings::pinned`]) are never adapted.
    #[serde(default)]
    pub auto_size: bool,
    /// The sizes an [`Overrides`] set, kept as chosen by [`Settings::train_for`]. Recorded only
    /// when some are set, so the settings (and version ids) of runs without any stay as they were.
    #[serde(default, skip_serializing_if = "Pinned::is_empty")]
    pub pinned: Pinned,
    /// Fraction held out for the test report when no separate test file is given.
    pub test_split: f64,
    pub mask: MaskSettings,
    pub csv: CsvOptions,
    pub background_rows: usize,
    pub background_mode: BackgroundMode,
    /// Memory budget for training in MiB ([`Settings::check_memory`]); `None` = what the
    /// function or machine has ([`limits::available_memory_mb`]). A limit, not a model choice:
    /// not recorded, so it never changes a version.
    #[serde(default, skip_serializing)]
    pub max_memory_mb: Option<u64>,
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
                pinned: Pinned::default(),
                test_split: 0.2,
                mask: MaskSettings::default(),
                csv: CsvOptions::default(),
                background_rows: 200,
                background_mode: BackgroundMode::First,
                max_memory_mb: None,
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
                pinned: Pinned::default(),
                test_split: 0.2,
                mask: MaskSettings::default(),
                csv: CsvOptions::default(),
                background_rows: 200,
                background_mode: BackgroundMode::Sample,
                max_memory_mb: None,
            },
        }
    }

    pub fn seed(&self) -> u64 {
        self.train.seed
    }

    /// The training config for `rows` training rows (validation excluded) and `tags` tags.
    /// Without [`Settings::auto_size`] it is `self.train`; with it, sizes not
    /// [`Settings::pinned`] adapt to the data (a pure function of the two counts, so runs stay
    /// reproducible):
    /// - more than [`LARGE_ROWS`] rows: batch [`LARGE_BATCH`], at most [`LARGE_EPOCHS`] epochs
    ///   (early stopping keeps the better). One pass over 100k+ rows nearly converges (the
    ///   188k-row scale CSV: validation loss 0.0784 after epoch 1, 0.0769 after 2, 0.0772 after
    ///   3), and large batches touch each first-layer row once per batch instead of once per
    ///   64 rows, which is where the time of long texts goes;
    /// - at most [`FEW_TAGS`] tags: [`FEW_TAGS_HIDDEN`] hidden units. A handful of outputs needs
    ///   no 256-unit layer (the scale CSV's 5 tags: same P@1 at a quarter of the first-layer cost).
    /// - fewer than [`MIN_PATIENCE_STEPS`] steps per epoch: early-stopping patience of at least
    ///   that many steps. On a small set an epoch is a handful of steps and the validation loss
    ///   bumps after the first one (so-html's 573 training rows, 9 steps an epoch: 0.0700 after
    ///   epoch 1, 0.0810 after 2, 0.0326 after 20), so patience 1 kept the epoch-1 model (P@1
    ///   0.013; trained on, 0.244). Sets of 2,304+ rows (cooking, so-titles, so-nlp) keep 1.
    ///   It was 100 steps; 36 (so-html: 2 epochs instead of 6) stops on the same best epoch, so
    ///   trains the same model, on so-html's fixed split and 3 re-splits and on 15 subsets of
    ///   cooking, so-titles and so-nlp of 700 to 3,500 rows, in up to a third less time
    ///   (benchmarks/quality.md).
    /// - fewer than [`SMALL_ROWS`] rows: batch [`SMALL_BATCH`], [`SMALL_HIDDEN`] hidden units,
    ///   at least [`SMALL_EPOCHS`] epochs and a step-size decay of [`SMALL_LR_DECAY`] an epoch.
    ///   The preset's schedule decays per epoch, and an epoch of a few hundred rows is a handful
    ///   of steps: so-html's 573 rows got 180 steps in 20 epochs, the last ones at 4% of the
    ///   step size, and stopped far from converged (P@1 0.244). More, smaller steps under a
    ///   slower decay, and a wider layer, lift so-html to 0.375 and
    ///   the 630-row subsets of cooking, so-titles and so-nlp by 0.02-0.25 P@1; at 1,350-1,710
    ///   rows cooking still gains 0.07-0.16 and the others tie, at 1,980-3,150 so-nlp loses
    ///   0.01-0.02 (benchmarks/quality.md), hence the cut.
    /// - more tags than training rows: tags on fewer than [`MANY_TAGS_MIN_TAG_ROWS`] rows train
    ///   no output unit ([`TrainConfig::min_tag_rows`]). so-html's 573 rows carry 883 tags, 590
    ///   on one row each; without their units every figure rises on the fixed split and all 3
    ///   re-splits (P@1 mean 0.434 -> 0.472, micro-F1 0.215 -> 0.293, macro-F1 0.095 -> 0.125,
    ///   every dropped tag still counted in them) at 40% less training time. Where tags are
    ///   fewer than rows the gain is not general: 700-row so-titles subsets lose 0.02-0.03
    ///   macro-F1, so-nlp's fixed split 0.010 P@1 (benchmarks/quality.md).
    /// - `taught` (a teacher's probabilities in the targets): patience of at least
    ///   [`TAUGHT_PATIENCE`] epochs. With soft targets the validation loss sometimes bumps once
    ///   before it falls again, and patience 1 stopped there (cooking seed 25: P@1 0.698, 0.712
    ///   with 2). With a MiniLM teacher, patience 2 lifted the fixed-split seed means of
    ///   cooking (4 seeds), so-titles (4) and so-nlp (6) on every figure, and on 3 re-splits of
    ///   each P@1 rose or stayed on every split (benchmarks/quality.md), for up to 2x the
    ///   training time of taught so-titles. Untaught runs keep the preset's 1.
    pub fn train_for(&self, rows: usize, tags: usize, taught: bool) -> TrainConfig {
        let mut cfg = self.train.clone();
        if !self.auto_size {
            return cfg;
        }
        if rows < SMALL_ROWS {
            if !self.pinned.batch_size {
                cfg.batch_size = SMALL_BATCH;
            }
            if !self.pinned.hidden {
                cfg.hidden = vec![SMALL_HIDDEN];
            }
            if !self.pinned.epochs {
                cfg.epochs = cfg.epochs.max(SMALL_EPOCHS);
            }
            if !self.pinned.lr_decay {
                cfg.lr_decay = SMALL_LR_DECAY;
            }
        }
        if rows > LARGE_ROWS {
            if !self.pinned.batch_size {
                cfg.batch_size = LARGE_BATCH;
            }
            if !self.pinned.epochs {
                cfg.epochs = cfg.epochs.min(LARGE_EPOCHS);
            }
        }
        if tags > rows && !self.pinned.min_tag_rows {
            cfg.min_tag_rows = cfg.min_tag_rows.max(MANY_TAGS_MIN_TAG_ROWS);
        }
        if tags <= FEW_TAGS && !self.pinned.hidden {
            cfg.hidden = vec![FEW_TAGS_HIDDEN];
        }
        if cfg.early_stopping_patience > 0 && !self.pinned.patience {
            let steps = rows.div_ceil(cfg.batch_size.max(1)).max(1);
            cfg.early_stopping_patience = cfg
                .early_stopping_patience
                .max(MIN_PATIENCE_STEPS.div_ceil(steps));
            if taught {
                cfg.early_stopping_patience = cfg.early_stopping_patience.max(TAUGHT_PATIENCE);
            }
        }
        cfg
    }

    /// Narrows `cfg`'s first hidden layer when a teacher's unlabelled texts grew the vocabulary
    /// from `own` features (the training texts' alone) to `features`, so the first layer keeps
    /// the weights it would have had: the artifact's size and the prediction cost stay those of
    /// the training texts' vocabulary. On so-titles with its 20k unlabelled titles (5,857 ->
    /// 8,027 features, 256 -> 186 units) P@1 rose from 0.831 to 0.837 (4-seed means); a wider
    /// vocabulary did as well at 256 and at 192 units, but 256 grew the artifact from 1.98 to
    /// 2.68 MB (benchmarks/quality.md). Only with [`Settings::auto_size`] and the hidden sizes
    /// not [`Settings::pinned`].
    pub fn hold_first_layer(&self, cfg: &mut TrainConfig, own: usize, features: usize) {
        if !self.auto_size || self.pinned.hidden || features <= own {
            return;
        }
        if let Some(first) = cfg.hidden.first_mut() {
            *first = (*first * own / features).max(1);
        }
    }

    /// The tokenizer to fit, given whether a teacher's probabilities are in the targets
    /// (`taught`) and the training texts' mean number of word tokens (`mean_tokens()`, asked
    /// only when needed). Without [`Settings::auto_size`], or with `subwords` set explicitly, it
    /// is `self.tokenizer`; with it, a taught word tokenizer gets [`AUTO_SUBWORDS`]-character
    /// sub-words for short texts (fewer than [`REPEATS_MIN_MEAN_TOKENS`] tokens on average, the
    /// cut repeat features use).
    ///
    /// Measured (benchmarks/quality.md, fixed split and 3 re-splits each): with a MiniLM
    /// teacher, sub-words lifted P@1 on every split of cooking (+0.003 to +0.011, 2 seeds) and
    /// so-titles (+0.008 to +0.012), at the same feature count. Without a teacher they help
    /// cooking but cost so-titles micro- and macro-F1 (and P@1 on its 700- and 2,000-row
    /// subsets), so untaught runs keep words alone; on long posts (so-nlp) they cost every figure.
    pub fn tokenizer_for(
        &self,
        taught: bool,
        mean_tokens: impl FnOnce() -> f64,
    ) -> TokenizerConfig {
        let mut config = self.tokenizer.clone();
        if !self.auto_size || self.pinned.subwords || !taught {
            return config;
        }
        if let TokenizerConfig::Words { subwords, .. } = &mut config {
            if *subwords == 0 && mean_tokens() < REPEATS_MIN_MEAN_TOKENS as f64 {
                *subwords = AUTO_SUBWORDS;
            }
        }
        config
    }

    /// Rejects values that would fail, misbehave or exhaust memory later, before any work is
    /// done: every bound in [`limits`].
    pub fn validate(&self) -> Result<()> {
        limits::check_settings(self)?;
        self.tokenizer.validate()?;
        self.train.validate()?;
        self.thresholds.validate()?;
        self.csv.validate()?;
        Ok(())
    }

    /// Fails with what to lower when training `footprint` with `self.train` (already sized by
    /// [`Settings::train_for`]) would need more memory than [`Settings::max_memory_mb`] (or, when
    /// unset, what the function or machine has). Call it before the model is allocated.
    pub fn check_memory(&self, footprint: &Footprint) -> Result<()> {
        limits::check_memory(&self.train, footprint, self.max_memory_mb)
    }

    /// Applies overrides on top of these settings (a `preset` override restarts from that
    /// preset), then validates the result.
    pub fn apply(self, o: &Overrides) -> Result<Self> {
        overrides::apply(self, o)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::preset(Preset::Default)
    }
}

/// [`Settings::tokenizer_for`]: the sub-word length it picks.
pub const AUTO_SUBWORDS: usize = 3;

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
/// [`Settings::train_for`]: least early-stopping patience, in optimizer steps.
pub const MIN_PATIENCE_STEPS: usize = 36;
/// [`Settings::train_for`]: least early-stopping patience, in epochs, of a taught run.
pub const TAUGHT_PATIENCE: usize = 2;
/// [`Settings::train_for`]: training sets below this many rows count as small.
pub const SMALL_ROWS: usize = 1_800;
/// [`Settings::train_for`]: batch size for small training sets.
pub const SMALL_BATCH: usize = 32;
/// [`Settings::train_for`]: hidden units for small training sets.
pub const SMALL_HIDDEN: usize = 512;
/// [`Settings::train_for`]: least epochs for small training sets.
pub const SMALL_EPOCHS: usize = 40;
/// [`Settings::train_for`]: step-size decay per epoch for small training sets.
pub const SMALL_LR_DECAY: f32 = 0.95;
/// [`Settings::train_for`]: least training rows a tag needs to train when the tags outnumber the
/// training rows.
pub const MANY_TAGS_MIN_TAG_ROWS: usize = 2;

fn yes() -> bool {
    true
}

/// The project's default tokenizer: found best on the real datasets (see the README's quality
/// table). Repeat features (a word twice or four times in a text) lift so-nlp's long posts
/// (P@1 0.862 -> 0.877 on its fixed split, and up on 2 of 3 re-splits) and change little on
/// titles, which seldom repeat a word (benchmarks/quality.md).
pub fn default_tokenizer() -> TokenizerConfig {
    TokenizerConfig::Words {
        min_count: 2,
        max_features: 20_000,
        bigrams: false,
        repeats: true,
        subwords: 0,
    }
}
