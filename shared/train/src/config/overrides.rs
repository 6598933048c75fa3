//! [`Overrides`]: every setting as an `Option`, and the three surfaces derived from it.

use clap::{Args, FromArgMatches};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::limits;
use super::{default_tokenizer, BackgroundMode, Preset, Settings};
use crate::calibrate::ThresholdStrategy;
use crate::dataset::{Delimiter, TagFormat};
use crate::error::{Error, Result};
use tagger_core::tokenizer::TokenizerConfig;

/// How thresholds are chosen (`thresholds`); `threshold` sets a fixed value directly.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ThresholdMode {
    /// One F1-tuned threshold for every tag.
    Global,
    /// One F1-tuned threshold per tag-frequency group (the default preset's).
    Frequency,
    /// F1-tuned per tag with at least 20 validation positives, never below 0.2.
    #[serde(alias = "per_tag")]
    #[value(alias = "per_tag")]
    PerTag,
    /// 0.8 for every tag (the origin's serving rule).
    Fixed,
}

/// Every training setting, each optional: a `None` keeps the preset's value. The CLI's flags
/// (`--batch-size` for `batch_size`), the train function's `TRAIN_<NAME>` variables and the
/// sidecar's keys are all this struct, so they cannot drift apart; the bounds are in
/// [`limits`](super::limits).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Args, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "tagger training settings")]
pub struct Overrides {
    /// Start from this preset; the other settings apply on top of it whatever their order.
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Most passes over the training rows: 1 to 1000.
    #[arg(long)]
    #[schemars(range(min = 1, max = 1000))]
    pub epochs: Option<usize>,
    /// Hidden layer widths (CLI and environment: `256` or `50,25`): at most 4 layers of 1 to
    /// 4096 units; `[]` (sidecar only) is logistic regression on the bag of words.
    #[arg(long, value_delimiter = ',')]
    #[schemars(length(max = 4), inner(range(min = 1, max = 4096)))]
    pub hidden: Option<Vec<usize>>,
    /// Rows per gradient step: 1 to 65536.
    #[arg(long)]
    #[schemars(range(min = 1, max = 65536))]
    pub batch_size: Option<usize>,
    /// Adam step size: finite, in (0, 1].
    #[arg(long)]
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0))]
    pub learning_rate: Option<f64>,
    /// Step size multiplier per epoch: in (0, 1] (1 = constant).
    #[arg(long)]
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0))]
    pub lr_decay: Option<f64>,
    /// Fraction of hidden units dropped in training: in [0, 1).
    #[arg(long)]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1))]
    pub dropout: Option<f64>,
    /// Knowledge distillation, with a teacher file (CLI `train --teacher`; the retraining job
    /// reads `data/<name>.teacher.csv` beside the upload): how much a
    /// labelled row's target is the teacher's probabilities rather than its tags, in [0, 1]
    /// (0 = off). The teacher's texts that are no training row train on its probabilities alone.
    #[arg(long)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub distill: Option<f64>,
    /// Tags on fewer training rows than this get no output unit (their training frequency is
    /// their constant answer, so they are never predicted): 1 to 1000, 1 = every tag trains. The
    /// default preset uses 2 when a data set has more tags than training rows.
    #[arg(long)]
    #[schemars(range(min = 1, max = 1000))]
    pub min_tag_rows: Option<usize>,
    /// Activity penalty: this times each row's sum of hidden activations (after dropout) is
    /// added to its loss, in [0, 0.01] (0 = off, the presets'). It holds hidden units at zero
    /// unless they help: fewer active units make every epoch cheaper. With a larger step it
    /// trains short texts faster at a small cost in macro-F1 (see the README).
    #[arg(long)]
    #[schemars(range(min = 0.0, max = 0.01))]
    pub activity_l1: Option<f64>,
    /// Early stopping after this many epochs without a lower validation loss (0 = off): at most 1000.
    #[arg(long)]
    #[schemars(range(max = 1000))]
    pub patience: Option<usize>,
    /// Seed of the shuffles, initial weights, dropout and background sample.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Switches to the Keras tokenizer with this many words: 2 to 1,000,000.
    #[arg(long)]
    #[schemars(range(min = 2, max = 1_000_000))]
    pub num_words: Option<usize>,
    /// Word tokenizer: most vocabulary entries, 1 to 1,000,000.
    #[arg(long)]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_features: Option<usize>,
    /// Word tokenizer: least number of training texts a word must be in, 1 to 1,000,000.
    #[arg(long)]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub min_count: Option<usize>,
    /// Word tokenizer: add pairs of adjacent words.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub bigrams: Option<bool>,
    /// Word tokenizer: add a feature for a word found at least 2 (and 4) times in a text.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub repeats: Option<bool>,
    /// Word tokenizer: add the runs of this many characters inside words as features (0 = off,
    /// or 2 to 4), ranked with the words for the same `max_features`.
    #[arg(long)]
    #[schemars(range(max = 4))]
    pub subwords: Option<usize>,
    /// One fixed decision threshold for every tag: in (0, 1).
    #[arg(long)]
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 1))]
    pub threshold: Option<f64>,
    /// How thresholds are chosen.
    #[arg(long, value_enum)]
    pub thresholds: Option<ThresholdMode>,
    /// Fraction of the training rows held out for early stopping and calibration: in [0, 1).
    #[arg(long)]
    #[schemars(range(min = 0.0), extend("exclusiveMaximum" = 1))]
    pub validation_split: Option<f64>,
    /// Fraction held out for the test report when no test file is given: in (0, 1).
    #[arg(long)]
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 1))]
    pub test_split: Option<f64>,
    /// Shuffle the rows (seeded) before splitting; `false` keeps file order.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub shuffle: Option<bool>,
    /// Train a second model on training + validation rows and average the two.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub refit: Option<bool>,
    /// Adapt batch size, epochs, hidden width, patience and step-size decay to the data (never the ones set here).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_size: Option<bool>,
    /// Mask every tag name (whole words) in the text.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub mask_tags: Option<bool>,
    /// More words to mask (CLI and environment: comma-separated): at most 1000 of at most 64 bytes.
    #[arg(long, value_delimiter = ',')]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 64)))]
    pub mask_words: Option<Vec<String>>,
    /// The word masked words become: one word of at most 64 bytes.
    #[arg(long)]
    #[schemars(length(min = 1, max = 64))]
    pub mask_replacement: Option<String>,
    /// Separates the tags inside the `tags` field: one punctuation character (sets the tag
    /// format; not with `tag_format`).
    #[arg(long)]
    pub tag_separator: Option<char>,
    /// How tag cells list tags: `auto` (detected from the first rows, the default), `comma`,
    /// `pipe`, `semicolon`, `space`, `angle` (`<a><b>`) or `list` (`['a', 'b']`).
    #[arg(long, value_enum)]
    pub tag_format: Option<TagFormat>,
    /// What separates the fields of a row: `auto` (detected, the default), `comma`, `tab` or
    /// `semicolon`.
    #[arg(long, value_enum)]
    pub delimiter: Option<Delimiter>,
    /// The file has no header row: its columns are `columns`, else `tags,text`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_header: Option<bool>,
    /// Which column is which (CLI and environment: comma-separated): names in file order
    /// (`tags,text`; `_` passes a column over) or `role=column` pairs with a 1-based number or a
    /// header name (`tags=3,text=1`); roles: tags, text, title, body, id. At most 64 entries.
    #[arg(long, value_delimiter = ',')]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 256)))]
    pub columns: Option<Vec<String>>,
    /// Largest share of unusable rows before the file is rejected: in [0, 1].
    #[arg(long)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_bad_fraction: Option<f64>,
    /// Rows whose text is longer than this many bytes are skipped: 1 to 16 MiB.
    #[arg(long)]
    #[schemars(range(min = 1, max = 16_777_216))]
    pub max_text_bytes: Option<usize>,
    /// Most distinct tags in a data file: 2 to 100,000.
    #[arg(long)]
    #[schemars(range(min = 2, max = 100_000))]
    pub max_tags: Option<usize>,
    /// Training rows the explainer keeps as its background: 1 to 10,000.
    #[arg(long)]
    #[schemars(range(min = 1, max = 10_000))]
    pub background_rows: Option<usize>,
    /// How the background rows are picked.
    #[arg(long, value_enum)]
    pub background_mode: Option<BackgroundMode>,
    /// Memory budget for training in MiB (default: the function's configured memory on Lambda,
    /// else the machine's available memory): 1 to 1,048,576.
    #[arg(long)]
    #[schemars(range(min = 1, max = 1_048_576))]
    pub max_memory_mb: Option<u64>,
}

impl Overrides {
    /// A settings JSON object (the sidecar format without the job's `force`), the setting named
    /// in any error.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let o: Overrides = serde_path_to_error::deserialize(de).map_err(Error::config_json)?;
        o.validate()?;
        Ok(o)
    }

    /// The train function's `TRAIN_<NAME>` variables (`TRAIN_BATCH_SIZE` for `batch_size`), each
    /// parsed exactly as the CLI flag of the same name; `get` returns a variable's value.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let cmd = Overrides::augment_args(clap::Command::new("env").no_binary_name(true));
        let mut out = Overrides::default();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let var = Overrides::env_var(long);
            let Some(value) = get(&var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            // Lists may be written `50, 25` in an environment file.
            let value: Vec<&str> = value.split(',').map(str::trim).collect();
            let parsed = cmd
                .clone()
                .try_get_matches_from([format!("--{long}={}", value.join(","))])
                .and_then(|m| Overrides::from_arg_matches(&m))
                .map_err(|e| Error::ConfigValue {
                    origin: var.clone(),
                    message: first_line(&e.render().to_string()),
                })?;
            parsed.validate().map_err(|e| Error::ConfigValue {
                origin: var.clone(),
                message: e.to_string(),
            })?;
            out = out.merged(&parsed);
        }
        Ok(out)
    }

    /// The environment variable of a setting (`batch_size` or `batch-size` -> `TRAIN_BATCH_SIZE`).
    pub fn env_var(name: &str) -> String {
        format!("TRAIN_{}", name.replace('-', "_").to_ascii_uppercase())
    }

    /// The setting names, in declaration order (the sidecar's keys).
    pub fn names() -> Vec<String> {
        let cmd = Overrides::augment_args(clap::Command::new("names"));
        cmd.get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| l.replace('-', "_"))
            .collect()
    }

    /// Each value set here within its documented bounds ([`limits`]), the setting named.
    pub fn validate(&self) -> Result<()> {
        limits::check_overrides(self)
    }

    /// `self` with every field that `later` sets replaced by `later`'s value.
    pub fn merged(&self, later: &Overrides) -> Overrides {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            b.as_ref().or(a.as_ref()).cloned()
        }
        // Exhaustive destructuring: a new field does not compile until it is merged here.
        let Overrides {
            preset,
            epochs,
            hidden,
            batch_size,
            learning_rate,
            lr_decay,
            dropout,
            distill,
            min_tag_rows,
            activity_l1,
            patience,
            seed,
            num_words,
            max_features,
            min_count,
            bigrams,
            repeats,
            subwords,
            threshold,
            thresholds,
            validation_split,
            test_split,
            shuffle,
            refit,
            auto_size,
            mask_tags,
            mask_words,
            mask_replacement,
            tag_separator,
            tag_format,
            delimiter,
            no_header,
            columns,
            max_bad_fraction,
            max_text_bytes,
            max_tags,
            background_rows,
            background_mode,
            max_memory_mb,
        } = self;
        Overrides {
            preset: pick(preset, &later.preset),
            epochs: pick(epochs, &later.epochs),
            hidden: pick(hidden, &later.hidden),
            batch_size: pick(batch_size, &later.batch_size),
            learning_rate: pick(learning_rate, &later.learning_rate),
            lr_decay: pick(lr_decay, &later.lr_decay),
            dropout: pick(dropout, &later.dropout),
            distill: pick(distill, &later.distill),
            min_tag_rows: pick(min_tag_rows, &later.min_tag_rows),
            activity_l1: pick(activity_l1, &later.activity_l1),
            patience: pick(patience, &later.patience),
            seed: pick(seed, &later.seed),
            num_words: pick(num_words, &later.num_words),
            max_features: pick(max_features, &later.max_features),
            min_count: pick(min_count, &later.min_count),
            bigrams: pick(bigrams, &later.bigrams),
            repeats: pick(repeats, &later.repeats),
            subwords: pick(subwords, &later.subwords),
            threshold: pick(threshold, &later.threshold),
            thresholds: pick(thresholds, &later.thresholds),
            validation_split: pick(validation_split, &later.validation_split),
            test_split: pick(test_split, &later.test_split),
            shuffle: pick(shuffle, &later.shuffle),
            refit: pick(refit, &later.refit),
            auto_size: pick(auto_size, &later.auto_size),
            mask_tags: pick(mask_tags, &later.mask_tags),
            mask_words: pick(mask_words, &later.mask_words),
            mask_replacement: pick(mask_replacement, &later.mask_replacement),
            tag_separator: pick(tag_separator, &later.tag_separator),
            tag_format: pick(tag_format, &later.tag_format),
            delimiter: pick(delimiter, &later.delimiter),
            no_header: pick(no_header, &later.no_header),
            columns: pick(columns, &later.columns),
            max_bad_fraction: pick(max_bad_fraction, &later.max_bad_fraction),
            max_text_bytes: pick(max_text_bytes, &later.max_text_bytes),
            max_tags: pick(max_tags, &later.max_tags),
            background_rows: pick(background_rows, &later.background_rows),
            background_mode: pick(background_mode, &later.background_mode),
            max_memory_mb: pick(max_memory_mb, &later.max_memory_mb),
        }
    }
}

fn first_line(rendered: &str) -> String {
    let line = rendered.lines().next().unwrap_or(rendered);
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// [`Settings::apply`].
pub(super) fn apply(mut s: Settings, o: &Overrides) -> Result<Settings> {
    o.validate()?;
    if let Some(p) = o.preset {
        s = Settings::preset(p);
    }
    if let Some(v) = o.epochs {
        s.train.epochs = v;
        s.pinned.epochs = true;
    }
    if let Some(v) = &o.hidden {
        s.train.hidden = v.clone();
        s.pinned.hidden = true;
    }
    if let Some(v) = o.batch_size {
        s.train.batch_size = v;
        s.pinned.batch_size = true;
    }
    // The f64 values were range-checked above, so these narrowings are exact enough and finite.
    if let Some(v) = o.learning_rate {
        s.train.learning_rate = v as f32;
    }
    if let Some(v) = o.lr_decay {
        s.train.lr_decay = v as f32;
        s.pinned.lr_decay = true;
    }
    if let Some(v) = o.dropout {
        s.train.dropout = v as f32;
    }
    if let Some(v) = o.distill {
        s.train.distill = v as f32;
    }
    if let Some(v) = o.min_tag_rows {
        s.train.min_tag_rows = v;
        s.pinned.min_tag_rows = true;
    }
    if let Some(v) = o.activity_l1 {
        s.train.activity_l1 = v as f32;
    }
    if let Some(v) = o.patience {
        s.train.early_stopping_patience = v;
        s.pinned.patience = true;
    }
    if let Some(v) = o.seed {
        s.train.seed = v;
    }
    if let Some(n) = o.num_words {
        s.tokenizer = TokenizerConfig::Keras { num_words: n };
    }
    if o.max_features.is_some()
        || o.min_count.is_some()
        || o.bigrams.is_some()
        || o.repeats.is_some()
        || o.subwords.is_some()
    {
        // Words settings refine the current words tokenizer, or else the default one.
        let words = |t: &TokenizerConfig| match *t {
            TokenizerConfig::Words {
                min_count,
                max_features,
                bigrams,
                repeats,
                subwords,
            } => Some((min_count, max_features, bigrams, repeats, subwords)),
            TokenizerConfig::Keras { .. } => None,
        };
        let (min_count, max_features, bigrams, repeats, subwords) = words(&s.tokenizer)
            .or_else(|| words(&default_tokenizer()))
            .unwrap_or((2, 20_000, false, true, 0));
        s.tokenizer = TokenizerConfig::Words {
            min_count: o.min_count.unwrap_or(min_count),
            max_features: o.max_features.unwrap_or(max_features),
            bigrams: o.bigrams.unwrap_or(bigrams),
            repeats: o.repeats.unwrap_or(repeats),
            subwords: o.subwords.unwrap_or(subwords),
        };
        s.pinned.subwords |= o.subwords.is_some();
    }
    if let Some(mode) = o.thresholds {
        s.thresholds = match mode {
            ThresholdMode::Global => ThresholdStrategy::Global,
            ThresholdMode::Frequency => ThresholdStrategy::Frequency,
            ThresholdMode::PerTag => ThresholdStrategy::PerTag {
                min_support: 20,
                floor: 0.2,
            },
            ThresholdMode::Fixed => ThresholdStrategy::Fixed(0.8),
        };
    }
    if let Some(t) = o.threshold {
        s.thresholds = ThresholdStrategy::Fixed(t as f32);
    }
    if let Some(v) = o.validation_split {
        s.validation_split = v;
    }
    if let Some(v) = o.test_split {
        s.test_split = v;
    }
    if let Some(v) = o.shuffle {
        s.shuffle = v;
    }
    if let Some(v) = o.refit {
        s.refit = v;
    }
    if let Some(v) = o.auto_size {
        s.auto_size = v;
    }
    if let Some(v) = o.mask_tags {
        s.mask.tag_names = v;
    }
    if let Some(v) = &o.mask_words {
        s.mask.words = v.clone();
    }
    if let Some(v) = &o.mask_replacement {
        s.mask.replacement = v.clone();
    }
    if let Some(c) = o.tag_separator {
        // Any separator but `,` is used as given under `auto`, and recorded as before; `,` set on
        // purpose is the comma format, so it is not taken for "detect".
        s.csv.tag_separator = c;
        s.csv.tag_format = if c == ',' {
            TagFormat::Comma
        } else {
            TagFormat::Auto
        };
    }
    if let Some(f) = o.tag_format {
        s.csv.tag_format = f;
        s.csv.tag_separator = ',';
    }
    if let Some(d) = o.delimiter {
        s.csv.delimiter = d;
    }
    if let Some(v) = o.no_header {
        s.csv.no_header = v;
    }
    if let Some(v) = &o.columns {
        s.csv.columns = v.clone();
    }
    if let Some(v) = o.max_bad_fraction {
        s.csv.max_bad_fraction = v;
    }
    if let Some(v) = o.max_text_bytes {
        s.csv.max_text_bytes = v;
    }
    if let Some(v) = o.max_tags {
        s.csv.max_tags = v;
    }
    if let Some(v) = o.background_rows {
        s.background_rows = v;
    }
    if let Some(v) = o.background_mode {
        s.background_mode = v;
    }
    if let Some(v) = o.max_memory_mb {
        s.max_memory_mb = Some(v);
    }
    s.validate()?;
    Ok(s)
}
