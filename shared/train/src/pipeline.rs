//! From loaded CSV rows to a finished artifact and its run report: normalise and mask the text,
//! split (seeded), fit labels and vocabulary, train, calibrate thresholds on the validation
//! split, evaluate on the test split, and pick the explainer background.

use std::borrow::Cow;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use tagger_core::artifact::{Artifact, ModelInfo, RowCounts};
use tagger_core::labels::LabelSet;
use tagger_core::model::Mlp;
use tagger_core::sparse::SparseRows;
use tagger_core::text::{self, Masker};
use tagger_core::thresholds::Thresholds;
use tagger_core::tokenizer::{mean_word_tokens, Tokenizer};
use tagger_core::Predictor;

use crate::calibrate::{self, ThresholdStrategy};
use crate::config::{BackgroundMode, Settings};
use crate::dataset::Example;
use crate::error::{Error, Result};
use crate::metrics::{self, Report};
use crate::nn::Training;
use crate::teacher::{SoftTargets, Teacher};
use crate::train::{self, EpochStats};

mod rare;
mod record;
mod refit;

use rare::RareTags;
pub use record::{headline, RunReport, TestData, Timings, TrainData, Trained, TrainingRecord};
use refit::fit_with_refit;

/// Scores a model on raw rows with its own normalisation, vocabulary, labels and thresholds:
/// the rule it is served with.
pub fn evaluate(model: &Predictor, examples: &[Example]) -> Report {
    let raw: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let texts = prepare_texts(model.masker(), &raw);
    let x = model
        .tokenizer()
        .encode_all(texts.iter().map(|t| t.as_ref()));
    let labels: Vec<Vec<u32>> = examples
        .iter()
        .map(|e| model.labels().encode_scored(&e.tags))
        .collect();
    let y: SparseRows = labels.iter().map(Vec::as_slice).collect();
    metrics::evaluate(
        &by_row_blocks(&x, |rows| model.model().predict_proba_rows(rows)),
        &y,
        model.thresholds(),
        model.labels().names(),
    )
}

/// Rows per block of [`by_row_blocks`]: the block size of [`Training::logits_batch`], so a block
/// boundary never moves a row into another block than a single call would put it in.
const ROW_BLOCK: usize = 256;

/// `score(rows)`, the rows split into one contiguous run of whole [`ROW_BLOCK`]s per core (at
/// most 8) and scored side by side, results in row order. Each row is scored as one call over
/// all rows would score it (blocks stay whole), so the result is the same bit for bit on any
/// number of cores; it only takes less wall time (the evaluation and calibration after training
/// are otherwise single-threaded).
fn by_row_blocks(
    rows: &SparseRows,
    score: impl Fn(&SparseRows) -> ndarray::Array2<f32> + Sync,
) -> ndarray::Array2<f32> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    by_row_blocks_on(rows, cores, score)
}

fn by_row_blocks_on(
    rows: &SparseRows,
    cores: usize,
    score: impl Fn(&SparseRows) -> ndarray::Array2<f32> + Sync,
) -> ndarray::Array2<f32> {
    let blocks = rows.len().div_ceil(ROW_BLOCK);
    let parts = cores.min(blocks).max(1);
    if parts == 1 {
        return score(rows);
    }
    let (n, per_part) = (rows.len(), blocks.div_ceil(parts) * ROW_BLOCK);
    let ranges: Vec<Vec<usize>> = (0..n)
        .step_by(per_part)
        .map(|start| (start..(start + per_part).min(n)).collect())
        .collect();
    let score = &score;
    let scored: Vec<ndarray::Array2<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|ids| s.spawn(move || score(&rows.select(ids))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let views: Vec<_> = scored.iter().map(|a| a.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).expect("parts have the same columns")
}

/// The model version: derived from the data, the settings and the release (the crate version),
/// so a repeated upload of the same file with the same settings maps to the same version, and a
/// release that trains differently (its version raised) trains it again.
pub fn version_id(data_sha256: &str, settings: &Settings) -> String {
    let mut h = Sha256::new();
    h.update(data_sha256.as_bytes());
    h.update(serde_json::to_vec(settings).unwrap_or_default());
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// [`version_id`] of a run that may be taught: a taught model also depends on its teacher, so
/// the same data and settings with another teacher file is another version.
pub fn taught_version_id(
    data_sha256: &str,
    teacher: Option<&Teacher>,
    settings: &Settings,
) -> String {
    match teacher {
        Some(t) => version_id(&format!("{data_sha256}+teacher:{}", t.digest()), settings),
        None => version_id(data_sha256, settings),
    }
}

pub use tagger_core::artifact::sha256_hex;

/// The masker the settings ask for, knowing the tag names.
pub fn masker_for(settings: &Settings, labels: &LabelSet) -> Masker {
    let mut words: Vec<String> = settings.mask.words.clone();
    if settings.mask.tag_names {
        words.extend(labels.names().iter().cloned());
    }
    if words.is_empty() {
        Masker::none()
    } else {
        Masker::new(words, &settings.mask.replacement)
    }
}

/// The unlabelled texts that are no word-dropped or cut copy of a training text (as
/// `reference.py --augment` writes): texts with a word no training text has, or whose words no
/// single training text holds all of. A copy adds no word, and counted it would pass a word of
/// one training text as a word of two.
fn not_copies<'a>(
    tokenizer: &Tokenizer,
    texts: &[&str],
    unlabelled: &'a [Cow<'a, str>],
) -> Vec<&'a str> {
    if unlabelled.is_empty() {
        return Vec::new();
    }
    // Words as ids, each training text as its sorted ids: a few bytes a word, not a string.
    let mut ids: std::collections::HashMap<String, u32> = Default::default();
    let sets: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut set: Vec<u32> = tokenizer
                .tokens(t)
                .into_iter()
                .map(|w| {
                    let next = ids.len() as u32;
                    *ids.entry(w.into_owned()).or_insert(next)
                })
                .collect();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    let mut holders: Vec<Vec<u32>> = vec![Vec::new(); ids.len()];
    for (i, set) in sets.iter().enumerate() {
        for &w in set {
            holders[w as usize].push(i as u32);
        }
    }
    unlabelled
        .iter()
        .map(|t| t.as_ref())
        .filter(|t| {
            let Some(words) = tokenizer
                .tokens(t)
                .iter()
                .map(|w| ids.get(w.as_ref()).copied())
                .collect::<Option<Vec<u32>>>()
            else {
                return true;
            };
            // A text without words adds nothing.
            let Some(rarest) = words
                .iter()
                .map(|&w| &holders[w as usize])
                .min_by_key(|l| l.len())
            else {
                return false;
            };
            !rarest.iter().any(|&i| {
                let set = &sets[i as usize];
                words.iter().all(|w| set.binary_search(w).is_ok())
            })
        })
        .collect()
}

/// [`text::prepare`] over many texts, one chunk per core when there is enough text (each text is
/// prepared independently, so the result does not depend on the split).
fn prepare_texts<'a>(masker: &Masker, raws: &[&'a str]) -> Vec<Cow<'a, str>> {
    tagger_core::parallel::map_texts(raws, |t| text::prepare(masker, t))
}

/// Trains on `data` (and evaluates on `test` or a held-out split). `created_at` is recorded as
/// given: pass a fixed value to get byte-identical artifacts from identical inputs.
pub fn train(
    data: TrainData,
    test: Option<TestData>,
    settings: &Settings,
    created_at: &str,
    on_epoch: &mut dyn FnMut(&EpochStats),
) -> Result<Trained> {
    train_until(data, test, settings, created_at, &mut |stats| {
        on_epoch(stats);
        true
    })
}

/// [`train`], where `on_epoch` also answers whether to go on: `false` after an epoch stops the
/// run with [`Error::Stopped`] (a caller's time budget; nothing half-trained is returned).
pub fn train_until(
    data: TrainData,
    test: Option<TestData>,
    settings: &Settings,
    created_at: &str,
    on_epoch: &mut dyn FnMut(&EpochStats) -> bool,
) -> Result<Trained> {
    train_taught(data, test, None, settings, created_at, on_epoch)
}

/// [`train_until`] with a teacher ([`crate::teacher`]): when `settings.train.distill > 0`, the
/// training rows whose text the teacher knows learn from its probabilities too, and the
/// teacher's other texts (never a test text) join the fit as unlabelled rows.
pub fn train_taught(
    data: TrainData,
    test: Option<TestData>,
    teacher: Option<&Teacher>,
    settings: &Settings,
    created_at: &str,
    on_epoch: &mut dyn FnMut(&EpochStats) -> bool,
) -> Result<Trained> {
    train_with(data, test, teacher, None, settings, created_at, on_epoch)
}

/// [`train_taught`] whose first layer starts from `words`' vectors for the vocabulary words
/// that have one ([`train::WordVectors`]; an experiment, the settings do not record it).
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    data: TrainData,
    test: Option<TestData>,
    teacher: Option<&Teacher>,
    words: Option<&train::WordVectors>,
    settings: &Settings,
    created_at: &str,
    on_epoch: &mut dyn FnMut(&EpochStats) -> bool,
) -> Result<Trained> {
    let started = Instant::now();
    settings.validate()?;
    // A weight with nothing to weigh would train as if unset and say nothing.
    if settings.train.distill > 0.0 && teacher.is_none() {
        return Err(Error::InvalidConfig {
            field: "distill",
            message: "needs a teacher file (`tagger train --teacher FILE`, or \
                      `data/<name>.teacher.csv` beside an upload); set it to 0 without one"
                .into(),
        });
    }
    let TrainData {
        examples,
        load,
        source,
        sha256,
    } = data;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed());

    // Shuffle (seeded) unless the settings keep file order, then hold out the test split when
    // none was given.
    let mut order: Vec<usize> = (0..examples.len()).collect();
    if settings.shuffle {
        order.shuffle(&mut rng);
    }
    let (train_idx, test_rows, test_load) = match test {
        Some(t) => (order, t.examples, Some(t.load)),
        None => {
            let n_test = (examples.len() as f64 * settings.test_split).round() as usize;
            let n_train = examples.len() - n_test.min(examples.len());
            let test_idx = order.split_off(n_train);
            let test_rows = test_idx.iter().map(|&i| examples[i].clone()).collect();
            (order, test_rows, None)
        }
    };
    if train_idx.is_empty() {
        return Err(Error::Training(format!(
            "no training rows left after holding out the test split ({} rows in all)",
            examples.len()
        )));
    }

    let labels = LabelSet::fit(train_idx.iter().map(|&i| examples[i].tags.as_slice()));
    if labels.len() < 2 {
        let only = labels.names().first().cloned().unwrap_or_default();
        return Err(Error::Training(format!(
            "every training row has the single tag {only:?}: at least two distinct tags are needed to learn anything"
        )));
    }
    let masker = masker_for(settings, &labels);

    let raw: Vec<&str> = train_idx
        .iter()
        .map(|&i| examples[i].text.as_str())
        .collect();
    let train_texts = prepare_texts(&masker, &raw);
    drop(raw);
    let texts: Vec<&str> = train_texts.iter().map(|t| t.as_ref()).collect();
    // The teacher only counts with a weight and at least one row.
    let teacher = teacher.filter(|t| settings.train.distill > 0.0 && !t.is_empty());
    let is_taught = teacher.is_some();
    let tokenizer_config = settings.tokenizer_for(is_taught, || mean_word_tokens(&texts));
    let (own_tokenizer, x_own) = Tokenizer::fit_encode(&tokenizer_config, &texts)?;
    if own_tokenizer.n_features() == 0 {
        return Err(Error::Training(
            "the training text has no usable words".into(),
        ));
    }
    // The teacher's texts that are neither a training nor a test row: unlabelled rows.
    let extra: Vec<(&str, Vec<(u32, f32)>)> = match teacher {
        Some(teacher) => {
            let known: std::collections::HashSet<&str> = train_idx
                .iter()
                .map(|&i| examples[i].text.as_str())
                .chain(test_rows.iter().map(|e| e.text.as_str()))
                .collect();
            teacher.extra(&labels, move |t| known.contains(t)).collect()
        }
        None => Vec::new(),
    };
    let extra_raw: Vec<&str> = extra.iter().map(|&(t, _)| t).collect();
    let extra_texts = prepare_texts(&masker, &extra_raw);
    drop(extra_raw);
    // The teacher's texts teach the words they have: the vocabulary is fitted on them too (all but
    // copies of training texts, whose words would count twice), else what the teacher says of
    // words no training row has is lost.
    let own_features = own_tokenizer.n_features();
    let novel = not_copies(&own_tokenizer, &texts, &extra_texts);
    let (tokenizer, x_all) = if novel.is_empty() {
        (own_tokenizer, x_own)
    } else {
        drop((own_tokenizer, x_own));
        let all: Vec<&str> = texts.iter().copied().chain(novel).collect();
        let (tokenizer, rows) = Tokenizer::fit_encode(&tokenizer_config, &all)?;
        let training: Vec<usize> = (0..texts.len()).collect();
        (tokenizer, rows.select(&training))
    };
    drop(texts);
    drop(train_texts);
    let init = words.map(|w| w.for_vocabulary(tokenizer.vocabulary()));
    let y_all: SparseRows = train_idx
        .iter()
        .map(|&i| labels.encode(&examples[i].tags))
        .collect::<Vec<_>>()
        .iter()
        .map(Vec::as_slice)
        .collect();

    // Validation = the last fraction of the training rows (shuffled or in file order), as
    // Keras' validation_split.
    let n = train_idx.len();
    let n_val = ((n as f64) * settings.validation_split).floor() as usize;
    let fit_rows: Vec<usize> = (0..n - n_val).collect();
    let val_rows: Vec<usize> = (n - n_val..n).collect();
    let (x_fit, y_fit) = (x_all.select(&fit_rows), y_all.select(&fit_rows));
    let (x_val, y_val) = (x_all.select(&val_rows), y_all.select(&val_rows));
    drop((x_all, y_all));

    // Soft targets: per training row (in `train_idx` order), then the teacher's extra texts.
    let taught = teacher.map(|teacher| {
        let mut soft = SoftTargets::default();
        for &i in &train_idx {
            match teacher.targets(&examples[i].text, &labels) {
                Some(row) => soft.push(row, settings.train.distill),
                None => soft.push(Vec::new(), 0.0),
            }
        }
        let mut extra_soft = SoftTargets::default();
        for (_, row) in extra {
            extra_soft.push(row, 1.0);
        }
        let x_extra = tokenizer.encode_all(extra_texts.iter().map(|t| t.as_ref()));
        let y_extra: SparseRows = (0..x_extra.len()).map(|_| &[][..]).collect();
        (
            soft.select(&fit_rows),
            soft.select(&val_rows),
            (x_extra, y_extra, extra_soft),
        )
    });

    let mut unknown_test_tags = 0u64;
    let raw: Vec<&str> = test_rows.iter().map(|e| e.text.as_str()).collect();
    let test_texts = prepare_texts(&masker, &raw);
    drop(raw);
    let x_test = tokenizer.encode_all(test_texts.iter().map(|t| t.as_ref()));
    drop(test_texts);
    let y_test: SparseRows = test_rows
        .iter()
        .map(|e| {
            // Unknown tags stay, past the labels: the report counts them as missed.
            let enc = labels.encode_scored(&e.tags);
            unknown_test_tags += enc.iter().filter(|&&t| t as usize >= labels.len()).count() as u64;
            enc
        })
        .collect::<Vec<_>>()
        .iter()
        .map(Vec::as_slice)
        .collect();
    let test_examples = test_rows;
    drop(examples);
    let prepare_seconds = started.elapsed().as_secs_f64();

    // The settings as trained (data-sized), recorded in the artifact and the report.
    let input_settings = settings;
    let mut effective = settings.clone();
    effective.train = settings.train_for(x_fit.len(), labels.len(), is_taught);
    settings.hold_first_layer(&mut effective.train, own_features, tokenizer.n_features());
    effective.tokenizer = tokenizer_config;
    let settings = &effective;

    let t = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let on_epoch = &mut |stats: &EpochStats| {
        if !on_epoch(stats) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let go_on = || !stop.load(std::sync::atomic::Ordering::Relaxed);
    let refit = settings.refit && !x_val.is_empty() && x_fit.len() <= crate::config::REFIT_MAX_ROWS;
    // Tags too rare to learn train without an output unit (the fit and the refit see the same
    // tags); `y_fit` and `y_val` stay whole for calibration.
    let rare = RareTags::plan(labels.counts(), n, settings.train.min_tag_rows);
    let narrowed = rare.as_ref().map(|r| (r.narrow(&y_fit), r.narrow(&y_val)));
    let (y_fit_t, y_val_t) = match &narrowed {
        Some((f, v)) => (f, v),
        None => (&y_fit, &y_val),
    };
    let taught = match (&rare, taught) {
        (Some(r), Some((fit, val, (x, y, extra)))) => Some((
            r.narrow_soft(&fit),
            r.narrow_soft(&val),
            (x, y, r.narrow_soft(&extra)),
        )),
        (_, taught) => taught,
    };
    let n_trained = rare.as_ref().map_or(labels.len(), RareTags::n_trained);
    settings.check_memory(&crate::config::Footprint {
        features: tokenizer.n_features(),
        // Every tag, trained or not: the scores after training have a column for each, and
        // counting the untrained ones in the networks too only errs on the safe side.
        tags: labels.len(),
        // A teacher's texts that are no training row train too.
        fit_rows: x_fit.len() + taught.as_ref().map_or(0, |(_, _, (x, _, _))| x.len()),
        validation_rows: x_val.len(),
        test_rows: x_test.len(),
        models: if refit { 2 } else { 1 },
    })?;
    let (fitted, refitted) = if refit {
        fit_with_refit(
            (&x_fit, y_fit_t),
            (&x_val, y_val_t),
            taught.as_ref(),
            init.as_ref(),
            tokenizer.n_features(),
            n_trained,
            &settings.train,
            on_epoch,
            &go_on,
        )?
    } else {
        let validation = (!x_val.is_empty()).then_some((&x_val, y_val_t));
        let joined = taught
            .as_ref()
            .map(|(soft_fit, _, extra)| refit::join(&x_fit, y_fit_t, soft_fit, extra));
        let (x_train, y_train, soft) = match &joined {
            Some((x, y, s)) => (x, y, Some(s)),
            None => (&x_fit, y_fit_t, None),
        };
        let fitted = train::fit_targets(
            x_train,
            y_train,
            soft,
            init.as_ref(),
            tokenizer.n_features(),
            n_trained,
            &settings.train,
            validation,
            on_epoch,
            &mut |_, _| go_on(),
        )?;
        (fitted, None)
    };
    if !go_on() {
        return Err(Error::Stopped {
            epochs: fitted.history.len(),
        });
    }
    let fit_seconds = t.elapsed().as_secs_f64();
    drop(narrowed);
    let (fitted, refitted) = match &rare {
        Some(r) => (
            train::TrainResult {
                model: r.widen(fitted.model)?,
                ..fitted
            },
            refitted.map(|m| r.widen(m)).transpose()?,
        ),
        None => (fitted, refitted),
    };

    let t = Instant::now();
    let thresholds = match (&settings.thresholds, x_val.is_empty()) {
        (ThresholdStrategy::Fixed(v), _) => Thresholds::fixed(*v, labels.len()),
        // Nothing to calibrate on: the conventional midpoint.
        (_, true) => Thresholds::fixed(0.5, labels.len()),
        (strategy, false) => {
            let mut train_positives = vec![0u64; labels.len()];
            for i in 0..y_fit.len() {
                for &t in y_fit.row(i) {
                    train_positives[t as usize] += 1;
                }
            }
            calibrate::calibrate_with_counts(
                &by_row_blocks(&x_val, |rows| fitted.model.predict_proba_batch(rows)),
                &y_val,
                strategy,
                &train_positives,
            )
        }
    };
    let calibrate_seconds = t.elapsed().as_secs_f64();

    let fitted = match refitted {
        // Keep both: the early-stopped model and the refit one, as one exact logit average.
        Some(refitted) => {
            let model = Mlp::average_logits(&[fitted.model, refitted])
                .ok_or_else(|| Error::Training("refit model has another shape".into()))?;
            train::TrainResult { model, ..fitted }
        }
        None => fitted,
    };

    // The artifact stores quantised weights: evaluate (and keep) exactly those.
    let mut fitted = fitted;
    tagger_core::quant::snap(&mut fitted.model);

    let t = Instant::now();
    let metrics = (!x_test.is_empty()).then(|| {
        metrics::evaluate(
            &by_row_blocks(&x_test, |rows| fitted.model.predict_proba_rows(rows)),
            &y_test,
            &thresholds,
            labels.names(),
        )
    });
    let evaluate_seconds = t.elapsed().as_secs_f64();

    let k = settings.background_rows.min(x_fit.len());
    let mut bg_rows: Vec<usize> = match settings.background_mode {
        BackgroundMode::First => (0..k).collect(),
        BackgroundMode::Sample => rand::seq::index::sample(&mut rng, x_fit.len(), k).into_vec(),
    };
    bg_rows.sort_unstable();
    let background = x_fit.select(&bg_rows);

    let version = taught_version_id(&sha256, teacher, input_settings);
    let rows = RowCounts {
        train: x_fit.len() as u64,
        validation: x_val.len() as u64,
        test: x_test.len() as u64,
    };
    let mut stored_history = fitted.history.clone();
    for e in &mut stored_history {
        e.seconds = 0.0;
    }
    let record = TrainingRecord {
        settings: Some(settings.clone()),
        metrics: metrics.clone(),
        history: stored_history,
        train_load: load.clone(),
    };
    let artifact = Artifact {
        info: ModelInfo {
            version: version.clone(),
            created_at: created_at.to_owned(),
            crate_version: env!("CARGO_PKG_VERSION").to_owned(),
            source: source.clone(),
            data_sha256: sha256,
            rows: rows.clone(),
            metrics: metrics.as_ref().map(headline),
            training_json: serde_json::to_string(&record)
                .map_err(|e| Error::Training(format!("cannot record the run: {e}")))?,
        },
        masker,
        labels: labels.clone(),
        model: fitted.model,
        thresholds,
        background,
        tokenizer,
    };
    artifact.check()?;
    let report = RunReport {
        version,
        source,
        created_at: created_at.to_owned(),
        rows,
        labels: labels.len(),
        features: artifact.tokenizer.n_features(),
        train_load: load,
        test_load,
        unknown_test_tags,
        untrained_tags: rare.as_ref().map_or(0, RareTags::n_left_out),
        metrics,
        history: fitted.history,
        best_epoch: fitted.best_epoch,
        timings: Timings {
            prepare_seconds,
            fit_seconds,
            calibrate_seconds,
            evaluate_seconds,
            total_seconds: started.elapsed().as_secs_f64(),
        },
        settings: settings.clone(),
    };
    Ok(Trained {
        artifact,
        report,
        test_examples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2};
    use rand::Rng;
    use tagger_core::model::Dense;

    fn random_model(rng: &mut ChaCha8Rng, sizes: &[usize]) -> Mlp {
        let layers = sizes
            .windows(2)
            .map(|w| Dense {
                weights: Array2::from_shape_fn((w[0], w[1]), |_| rng.random_range(-1.0..1.0)),
                bias: Array1::from_shape_fn(w[1], |_| rng.random_range(-0.5..0.5)),
            })
            .collect();
        Mlp::from_layers(layers).unwrap()
    }

    #[test]
    fn copies_of_training_texts_are_told_from_new_texts() {
        let config = tagger_core::tokenizer::TokenizerConfig::default();
        let tokenizer = Tokenizer::fit(&config, ["How to Braise beef", "roast a chicken"]).unwrap();
        let training = ["How to Braise beef", "roast a chicken"];
        let unlabelled: Vec<Cow<str>> = [
            "how braise beef", // word-dropped
            "to braise",       // cut
            "roast beef",      // words of two training texts
            "braise kale",     // a new word
            "?!",              // no words
        ]
        .into_iter()
        .map(Cow::Borrowed)
        .collect();
        assert_eq!(
            not_copies(&tokenizer, &training, &unlabelled),
            ["roast beef", "braise kale"]
        );
        assert!(not_copies(&tokenizer, &training, &[]).is_empty());
    }

    /// Split across any number of cores, the scores are those of one call over all rows, bit for
    /// bit: for the batched forward pass (calibration) and the per-row one (evaluation).
    #[test]
    fn scoring_by_row_blocks_matches_one_call_on_any_core_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let model = random_model(&mut rng, &[60, 24, 9]);
        let rows: Vec<Vec<u32>> = (0..ROW_BLOCK * 3 + 37)
            .map(|_| {
                let mut r: Vec<u32> = (0..rng.random_range(0..12))
                    .map(|_| rng.random_range(0..60))
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect();
        let x: SparseRows = rows.iter().map(Vec::as_slice).collect();
        let batch = model.predict_proba_batch(&x);
        let per_row = model.predict_proba_rows(&x);
        for cores in [1, 2, 3, 4, 8] {
            let b = by_row_blocks_on(&x, cores, |r| model.predict_proba_batch(r));
            assert_eq!(b, batch, "batched, {cores} cores");
            let p = by_row_blocks_on(&x, cores, |r| model.predict_proba_rows(r));
            assert_eq!(p, per_row, "per row, {cores} cores");
        }
        // Fewer rows than a block, and none.
        let few = x.select(&[3, 1, 4]);
        assert_eq!(
            by_row_blocks_on(&few, 4, |r| model.predict_proba_batch(r)),
            model.predict_proba_batch(&few)
        );
        let none = x.select(&[]);
        assert_eq!(
            by_row_blocks_on(&none, 4, |r| model.predict_proba_rows(r)).dim(),
            (0, 9)
        );
    }
}
