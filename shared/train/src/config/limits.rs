//! The documented bounds of every setting and of the data, and the memory estimate checked
//! before training. Each is checked before anything is allocated for it, and each failure is an
//! error naming the setting (the retraining job reports them as `bad_config`, the data limits as
//! `bad_data`).

use super::{Overrides, Settings};
use crate::calibrate::ThresholdStrategy;
use crate::error::{Error, Result};
use crate::train::TrainConfig;
use tagger_core::tokenizer::TokenizerConfig;

/// Most hidden layers.
pub const MAX_HIDDEN_LAYERS: usize = 4;
/// Widest hidden layer.
pub const MAX_HIDDEN_WIDTH: usize = 4096;
/// Most epochs.
pub const MAX_EPOCHS: usize = 1000;
/// Largest batch.
pub const MAX_BATCH_SIZE: usize = 65_536;
/// Longest early-stopping patience.
pub const MAX_PATIENCE: usize = MAX_EPOCHS;
/// Largest vocabulary (`num_words`, `max_features`) and `min_count`.
pub const MAX_FEATURES: usize = 1_000_000;
/// Most extra words to mask.
pub const MAX_MASK_WORDS: usize = 1000;
/// Longest masked word and mask replacement, in bytes.
pub const MAX_MASK_WORD_BYTES: usize = 64;
/// Largest `max_text_bytes`.
pub const MAX_TEXT_BYTES: usize = 16 << 20;
/// Most explainer background rows.
pub const MAX_BACKGROUND_ROWS: usize = 10_000;
/// Default most distinct tags in a data file ([`crate::dataset::CsvOptions::max_tags`]).
pub const DEFAULT_MAX_TAGS: usize = 10_000;
/// Largest `max_tags`.
pub const MAX_TAGS: usize = 100_000;
/// Largest `activity_l1`: from 1e-3 cooking's hidden layer collapses (P@1 0.44; 0.12 at 3e-3).
pub const MAX_ACTIVITY_L1: f32 = 0.01;
/// Largest `min_tag_rows`: past this most tags of any data set would go untrained.
pub const MAX_MIN_TAG_ROWS: usize = 1_000;
/// Most tags on one row: rows with more are skipped as unusable.
pub const MAX_TAGS_PER_ROW: usize = 100;
/// Largest `max_memory_mb` (1 TiB).
pub const MAX_MEMORY_MB: u64 = 1 << 20;

fn int(field: &'static str, v: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("{v} is out of range: must be {min} to {max}"),
        ))
    }
}

/// A finite number in a range whose ends are open or closed as written in `range`.
fn real(field: &'static str, v: f64, lo: f64, lo_open: bool, hi: f64, hi_open: bool) -> Result<()> {
    let above = if lo_open { v > lo } else { v >= lo };
    let below = if hi_open { v < hi } else { v <= hi };
    if v.is_finite() && above && below {
        return Ok(());
    }
    let range = format!(
        "{}{lo}, {hi}{}",
        if lo_open { "(" } else { "[" },
        if hi_open { ")" } else { "]" }
    );
    Err(Error::config(
        field,
        format!("must be a finite number in {range}, got {v:e}"),
    ))
}

fn hidden(layers: &[usize]) -> Result<()> {
    if layers.len() > MAX_HIDDEN_LAYERS {
        return Err(Error::config(
            "hidden",
            format!(
                "{} layers given ({layers:?}): at most {MAX_HIDDEN_LAYERS}",
                layers.len()
            ),
        ));
    }
    if let Some(&w) = layers
        .iter()
        .find(|&&w| !(1..=MAX_HIDDEN_WIDTH).contains(&w))
    {
        return Err(Error::config(
            "hidden",
            format!("a layer of {w} units in {layers:?}: each must have 1 to {MAX_HIDDEN_WIDTH}"),
        ));
    }
    Ok(())
}

fn mask(words: &[String], replacement: &str) -> Result<()> {
    if words.len() > MAX_MASK_WORDS {
        return Err(Error::config(
            "mask_words",
            format!("{} words given: at most {MAX_MASK_WORDS}", words.len()),
        ));
    }
    if let Some(w) = words
        .iter()
        .find(|w| w.trim().is_empty() || w.len() > MAX_MASK_WORD_BYTES)
    {
        return Err(Error::config(
            "mask_words",
            format!(
                "each word must be non-empty and at most {MAX_MASK_WORD_BYTES} bytes, got one of {} bytes",
                w.len()
            ),
        ));
    }
    if replacement.len() > MAX_MASK_WORD_BYTES {
        return Err(Error::config(
            "mask_replacement",
            format!(
                "{} bytes given: at most {MAX_MASK_WORD_BYTES}",
                replacement.len()
            ),
        ));
    }
    if replacement.trim().is_empty() || replacement.contains(char::is_whitespace) {
        return Err(Error::config(
            "mask_replacement",
            format!("must be one non-empty word, got {replacement:?}"),
        ));
    }
    Ok(())
}

/// The bounds of the values an [`Overrides`] sets, checked on the values as given (before
/// `f64` settings narrow to `f32`, so `1e39` is reported as given, not as `inf`).
pub(super) fn check_overrides(o: &Overrides) -> Result<()> {
    let n = |v: usize| v as u64;
    if let Some(v) = o.epochs {
        int("epochs", n(v), 1, n(MAX_EPOCHS))?;
    }
    if let Some(v) = &o.hidden {
        hidden(v)?;
    }
    if let Some(v) = o.batch_size {
        int("batch_size", n(v), 1, n(MAX_BATCH_SIZE))?;
    }
    if let Some(v) = o.learning_rate {
        real("learning_rate", v, 0.0, true, 1.0, false)?;
    }
    if let Some(v) = o.lr_decay {
        real("lr_decay", v, 0.0, true, 1.0, false)?;
    }
    if let Some(v) = o.dropout {
        real("dropout", v, 0.0, false, 1.0, true)?;
    }
    if let Some(v) = o.distill {
        real("distill", v, 0.0, false, 1.0, false)?;
    }
    if let Some(v) = o.min_tag_rows {
        int("min_tag_rows", n(v), 1, n(MAX_MIN_TAG_ROWS))?;
    }
    if let Some(v) = o.activity_l1 {
        real(
            "activity_l1",
            v,
            0.0,
            false,
            f64::from(MAX_ACTIVITY_L1),
            false,
        )?;
    }
    if let Some(v) = o.patience {
        int("patience", n(v), 0, n(MAX_PATIENCE))?;
    }
    if let Some(v) = o.num_words {
        int("num_words", n(v), 2, n(MAX_FEATURES))?;
    }
    if let Some(v) = o.max_features {
        int("max_features", n(v), 1, n(MAX_FEATURES))?;
    }
    if let Some(v) = o.min_count {
        int("min_count", n(v), 1, n(MAX_FEATURES))?;
    }
    if let Some(v) = o.subwords {
        tagger_core::tokenizer::check_subwords(v)?;
    }
    if o.num_words.is_some()
        && (o.max_features.is_some()
            || o.min_count.is_some()
            || o.bigrams.is_some()
            || o.repeats.is_some()
            || o.subwords.is_some())
    {
        return Err(Error::config(
            "num_words",
            "selects the Keras tokenizer, which has no max_features, min_count, bigrams, repeats or subwords: set one or the other",
        ));
    }
    if let Some(v) = o.threshold {
        real("threshold", v, 0.0, true, 1.0, true)?;
        if o.thresholds
            .is_some_and(|m| m != super::ThresholdMode::Fixed)
        {
            return Err(Error::config(
                "threshold",
                "a fixed threshold conflicts with a calibrated `thresholds` mode: set one or the other",
            ));
        }
    }
    if let Some(v) = o.validation_split {
        real("validation_split", v, 0.0, false, 1.0, true)?;
    }
    if let Some(v) = o.test_split {
        real("test_split", v, 0.0, true, 1.0, true)?;
    }
    if o.mask_words.is_some() || o.mask_replacement.is_some() {
        let words = o.mask_words.as_deref().unwrap_or_default();
        mask(words, o.mask_replacement.as_deref().unwrap_or("avocado"))?;
    }
    if let Some(v) = o.max_bad_fraction {
        real("max_bad_fraction", v, 0.0, false, 1.0, false)?;
    }
    if o.tag_separator.is_some() && o.tag_format.is_some() {
        return Err(Error::config(
            "tag_format",
            "tag_separator already sets how tags are split: set one or the other",
        ));
    }
    if let Some(v) = &o.columns {
        columns(v)?;
    }
    if let Some(v) = o.max_text_bytes {
        int("max_text_bytes", n(v), 1, n(MAX_TEXT_BYTES))?;
    }
    if let Some(v) = o.max_tags {
        int("max_tags", n(v), 2, n(MAX_TAGS))?;
    }
    if let Some(v) = o.background_rows {
        int("background_rows", n(v), 1, n(MAX_BACKGROUND_ROWS))?;
    }
    if let Some(v) = o.max_memory_mb {
        int("max_memory_mb", v, 1, MAX_MEMORY_MB)?;
    }
    Ok(())
}

/// `columns`: 1 to [`MAX_COLUMNS`] entries of 1 to 256 bytes, in one of its two forms.
fn columns(v: &[String]) -> Result<()> {
    if v.is_empty() || v.len() > MAX_COLUMNS {
        return Err(Error::config(
            "columns",
            format!("{} entries; expected 1 to {MAX_COLUMNS}", v.len()),
        ));
    }
    if let Some(c) = v.iter().find(|c| c.trim().is_empty() || c.len() > 256) {
        return Err(Error::config(
            "columns",
            format!(
                "entry {:?} is empty or longer than 256 bytes",
                c.chars().take(40).collect::<String>()
            ),
        ));
    }
    crate::dataset::CsvOptions {
        columns: v.to_vec(),
        ..Default::default()
    }
    .validate()
}

/// Most entries in `columns`.
pub const MAX_COLUMNS: usize = 64;

/// The same bounds on a whole [`Settings`] (presets, code that builds settings directly).
pub(super) fn check_settings(s: &Settings) -> Result<()> {
    let n = |v: usize| v as u64;
    let t = &s.train;
    hidden(&t.hidden)?;
    int("epochs", n(t.epochs), 1, n(MAX_EPOCHS))?;
    int("batch_size", n(t.batch_size), 1, n(MAX_BATCH_SIZE))?;
    real(
        "learning_rate",
        t.learning_rate.into(),
        0.0,
        true,
        1.0,
        false,
    )?;
    real("lr_decay", t.lr_decay.into(), 0.0, true, 1.0, false)?;
    real("dropout", t.dropout.into(), 0.0, false, 1.0, true)?;
    real("distill", t.distill.into(), 0.0, false, 1.0, false)?;
    int("min_tag_rows", n(t.min_tag_rows), 1, n(MAX_MIN_TAG_ROWS))?;
    int("patience", n(t.early_stopping_patience), 0, n(MAX_PATIENCE))?;
    match s.tokenizer {
        TokenizerConfig::Keras { num_words } => {
            int("num_words", n(num_words), 2, n(MAX_FEATURES))?;
        }
        TokenizerConfig::Words {
            min_count,
            max_features,
            ..
        } => {
            int("max_features", n(max_features), 1, n(MAX_FEATURES))?;
            int("min_count", n(min_count), 1, n(MAX_FEATURES))?;
        }
    }
    if let ThresholdStrategy::Fixed(v) = s.thresholds {
        real("threshold", v.into(), 0.0, true, 1.0, true)?;
    }
    real(
        "validation_split",
        s.validation_split,
        0.0,
        false,
        1.0,
        true,
    )?;
    real("test_split", s.test_split, 0.0, true, 1.0, true)?;
    mask(&s.mask.words, &s.mask.replacement)?;
    real(
        "max_bad_fraction",
        s.csv.max_bad_fraction,
        0.0,
        false,
        1.0,
        false,
    )?;
    int(
        "max_text_bytes",
        n(s.csv.max_text_bytes),
        1,
        n(MAX_TEXT_BYTES),
    )?;
    int("max_tags", n(s.csv.max_tags), 2, n(MAX_TAGS))?;
    if !s.csv.columns.is_empty() {
        columns(&s.csv.columns)?;
    }
    int(
        "background_rows",
        n(s.background_rows),
        1,
        n(MAX_BACKGROUND_ROWS),
    )?;
    if let Some(v) = s.max_memory_mb {
        int("max_memory_mb", v, 1, MAX_MEMORY_MB)?;
    }
    Ok(())
}

/// The shape of one training run, known once the data is tokenized and split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Vocabulary size (first-layer rows).
    pub features: usize,
    pub tags: usize,
    pub fit_rows: usize,
    pub validation_rows: usize,
    pub test_rows: usize,
    /// Networks trained at once: 2 with the refit (it runs beside the early-stopped fit).
    pub models: usize,
}

/// Bytes that training `f` with `cfg` allocates beyond the data itself: per network its
/// parameters 5 times (weights, Adam's two moments, gradients, the early-stopping copy), the
/// sparse-gradient slot per feature, the batch activations, deltas and dropout masks, and
/// the per-epoch validation logits and probabilities; Adam's step-size schedule (two `f64` per
/// step); the averaged network; the largest of the validation and test probability matrices
/// scored after training; the calibration histograms. A model estimate, not a measurement:
/// it is meant to stop runs that cannot fit, well before they start.
pub fn estimate_bytes(cfg: &TrainConfig, f: &Footprint) -> u128 {
    let u = |v: usize| v as u128;
    let mut widths = vec![u(f.features)];
    widths.extend(cfg.hidden.iter().map(|&h| u(h)));
    widths.push(u(f.tags));
    let params: u128 = widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    let activations: u128 = widths[1..].iter().sum();
    let batch = u(cfg.batch_size.min(f.fit_rows.max(1)));
    let steps = u(f.fit_rows.max(1)).div_ceil(batch) * u(cfg.epochs);
    let per_model = 5 * params * 4
        + u(f.features) * 4
        + 3 * batch * activations * 4
        + 2 * u(f.validation_rows) * u(f.tags) * 4;
    u(f.models.max(1)) * per_model
        + 2 * steps * 8
        + params * 4
        + u(f.validation_rows.max(f.test_rows)) * u(f.tags) * 4
        + 2 * u(f.tags) * 92 * 8
}

/// The memory training may use, in MiB, and where the figure comes from: the function's
/// configured memory on Lambda (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`), else the machine's
/// `MemAvailable` (`/proc/meminfo`); `None` when neither is known.
pub fn available_memory_mb() -> Option<(u64, &'static str)> {
    if let Some(mb) = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some((mb, "the function's configured memory"));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some((kb / 1024, "the machine's available memory"))
}

pub(super) fn check_memory(cfg: &TrainConfig, f: &Footprint, budget: Option<u64>) -> Result<()> {
    let (budget_mb, origin) = match budget {
        Some(mb) => (mb, "max_memory_mb"),
        None => match available_memory_mb() {
            Some(found) => found,
            None => return Ok(()),
        },
    };
    let need = estimate_bytes(cfg, f);
    let need_mb = need.div_ceil(1 << 20);
    if need_mb <= u128::from(budget_mb) {
        return Ok(());
    }
    let first = f.features as u128 * cfg.hidden.first().map_or(f.tags, |&h| h) as u128;
    let last = cfg.hidden.last().map_or(0, |&h| h) as u128 * f.tags as u128;
    let advice = if f.validation_rows.max(f.test_rows) as u128 * f.tags as u128 > first.max(last) {
        "fewer tags (max_tags) or fewer rows"
    } else if first >= last {
        "max_features or num_words, or hidden"
    } else {
        "hidden, or the number of tags (max_tags)"
    };
    Err(Error::config(
        "max_memory_mb",
        format!(
            "training would need about {need_mb} MiB ({} features x hidden {:?} x {} tags, {} network(s), batch {}, {} epochs) but {origin} is {budget_mb} MiB: lower {advice}, or batch_size, or raise max_memory_mb",
            f.features,
            cfg.hidden,
            f.tags,
            f.models.max(1),
            cfg.batch_size,
            cfg.epochs
        ),
    ))
}
