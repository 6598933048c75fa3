//! Retraining triggered by an upload: one CSV object in, at most one published model version out.
//!
//! [`retrain`] is what the `train` Lambda runs for each S3 record, written against
//! [`ObjectStore`] only so that it is unit-tested on memory and knows nothing of Lambda or AWS:
//!
//! ```text
//! data/<name>.csv (+ data/<name>.json sidecar)
//!   -> settings = environment defaults <- sidecar overrides, validated
//!   -> version  = hash(sha256 of the CSV bytes, settings)      (same upload twice => same version)
//!   -> already published? stop.  Otherwise read rows, train, evaluate
//!   -> models/<version>/{model.bin, metrics.json, source.json, reference.json}
//!                                    (immutable, re-read and verified; reference = held-out rows)
//!   -> quality gate (see [`gate`]): no-skill baseline, distinct texts, the live model on the
//!      upload's test rows and on its own reference set, the live model's tag mass; sequencer order
//!   -> models/latest.json moved with a conditional write (previous kept as models/previous.json)
//!   -> reports/<data key>.json, whatever happened
//! ```
//!
//! Nothing is ever written under the data prefix, so the function cannot trigger itself.

mod budget;
mod config;
pub mod gate;
mod keys;
mod report;
mod steps;

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use budget::Budget;
pub use config::*;
pub use gate::{Gate, GateLimits};
pub use keys::*;
pub use report::*;
use steps::{earlier_verdict, judge, lost_race, score_incumbent, write_report};
use tagger_core::Predictor;
use tagger_registry::registry::{
    PointerMetrics, ReferenceRow, ReferenceSet, Registry, MAX_REFERENCE_ROWS,
};
use tagger_registry::store::{join, ObjectStore};
use tagger_train::config::{Overrides, Settings, Sidecar};
use tagger_train::dataset::{self, FormatReport, SkipCount};
use tagger_train::pipeline::{self, TrainData};
use tagger_train::teacher::Teacher;
use tracing::Instrument;

/// Is sequencer `a` newer than `b`? S3 sequencers are hex strings of varying length that order
/// events for one key once left-padded with zeros to the same length.
pub fn sequencer_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim().to_ascii_uppercase(), b.trim().to_ascii_uppercase());
    let width = a.len().max(b.len());
    format!("{a:0>width$}").cmp(&format!("{b:0>width$}"))
}

/// `data/x.csv` -> `data/x.json`.
fn sidecar_key(csv_key: &str) -> String {
    format!("{}.json", &csv_key[..csv_key.len() - ".csv".len()])
}

/// The suffix of a teacher file: `data/x.teacher.csv` teaches the run of `data/x.csv`.
const TEACHER_SUFFIX: &str = ".teacher.csv";

/// `data/x.csv` -> `data/x.teacher.csv`.
fn teacher_key(csv_key: &str) -> String {
    format!(
        "{}{TEACHER_SUFFIX}",
        &csv_key[..csv_key.len() - ".csv".len()]
    )
}

fn ignore_reason(key: &str, cfg: &JobConfig) -> Option<String> {
    let prefix = cfg.data_prefix.trim_start_matches('/');
    if !key.starts_with(prefix) {
        return Some(format!("key {key:?} is outside the data prefix {prefix:?}"));
    }
    let lower = key.to_ascii_lowercase();
    if !lower.ends_with(".csv")
        || key.len() <= prefix.len() + ".csv".len()
        || key.ends_with("/.csv")
    {
        return Some(format!("key {key:?} is not a .csv file"));
    }
    if tagger_registry::store::check_key(key).is_err() {
        return Some(format!("key {key:?} is not a usable object key"));
    }
    if lower.ends_with(TEACHER_SUFFIX) {
        let data = format!("{}.csv", &key[..key.len() - TEACHER_SUFFIX.len()]);
        return Some(format!(
            "key {key:?} is a teacher file: the next run of {data:?} with distill > 0 learns from it"
        ));
    }
    None
}

/// Runs one upload to its end: see the module docs. Every upload inside the data prefix leaves a
/// report at [`JobConfig::report_key`]; a failure leaves `latest.json` as it was.
///
/// Training is CPU-bound and runs on the calling thread: async callers run this inside
/// `spawn_blocking`/`block_in_place` (the Lambda adapter does).
pub async fn retrain(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
) -> Result<Outcome, JobError> {
    retrain_until(store, upload, cfg, Budget::UNLIMITED).await
}

/// [`retrain`] within a time budget: training stops between epochs when another epoch would
/// not leave `budget.reserve` before `budget.finish_by`, and the run fails as
/// [`FailureKind::Timeout`] (not retryable: the same upload would take as long again) with its
/// report written.
pub async fn retrain_until(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
    budget: Budget,
) -> Result<Outcome, JobError> {
    retrain_reported(store, upload, cfg, budget).await.0
}

/// [`retrain_until`], with the report it wrote (or tried to write): `None` when no run took
/// place (an ignored upload, invalid job settings, a redelivery answered from its report).
pub async fn retrain_reported(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
    budget: Budget,
) -> (Result<Outcome, JobError>, Option<JobReport>) {
    if let Some(reason) = ignore_reason(&upload.key, cfg) {
        tracing::info!(key = %upload.key, %reason, "ignored upload");
        return (Ok(Outcome::Ignored { reason }), None);
    }
    if let Err(e) = cfg.validate() {
        return (Err(e.into()), None);
    }
    let started = Instant::now();
    let report_key = cfg.report_key(&upload.key);
    let mut report = JobReport::new(upload.clone(), join(&store.describe(), &upload.key), cfg);

    // A redelivery (S3 at-least-once, Lambda's async retries) of an upload already judged
    // permanently bad answers from its report instead of reading and training again.
    if let Some(previous) = earlier_verdict(store, &report_key, upload).await {
        tracing::info!(key = %upload.key, reason = %previous.message, "upload already failed permanently; not retrying");
        return (Err(previous), None);
    }

    let span = tracing::info_span!("job", data_key = %upload.key);
    let result = run(store, upload, cfg, &budget, &mut report)
        .instrument(span)
        .await;
    report.timings.total_seconds = started.elapsed().as_secs_f64();
    report.finished_at = tagger_registry::clock::now_rfc3339();
    match &result {
        Ok(outcome) => {
            let (name, reason) = describe(outcome);
            report.outcome = name.into();
            if report.reason.is_empty() {
                report.reason = reason;
            }
            tracing::info!(key = %upload.key, outcome = name, reason = %report.reason, "training upload done");
        }
        Err(e) => {
            report.outcome = "failed".into();
            report.reason = e.message.clone();
            report.failure = Some(e.kind);
            report.retryable = e.retryable;
            if e.retryable {
                tracing::error!(key = %upload.key, error = %e.message, "training upload failed (retryable)");
            } else {
                tracing::warn!(key = %upload.key, kind = ?e.kind, error = %e.message, "training upload rejected");
            }
        }
    }
    let written = write_report(store, &report_key, &report).await;
    let result = match (result, written) {
        (Ok(outcome), Ok(())) => Ok(outcome),
        // A promotion without its report: retrying lands on AlreadyPublished and writes it.
        (Ok(_), Err(e)) => Err(JobError::new(
            FailureKind::Storage,
            true,
            format!("cannot write report {report_key}: {e}"),
        )),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(report_err)) => {
            tracing::error!(key = %report_key, error = %report_err, "cannot write the failure report");
            Err(e)
        }
    };
    (result, Some(report))
}

fn describe(outcome: &Outcome) -> (&'static str, String) {
    match outcome {
        Outcome::Ignored { reason } => ("ignored", reason.clone()),
        Outcome::AlreadyPublished { version } => (
            "already_published",
            format!("version {version} is already live"),
        ),
        Outcome::Promoted { version, previous } => (
            "promoted",
            match previous {
                Some(p) => format!("version {version} replaced {p}"),
                None => format!("version {version} is the first published model"),
            },
        ),
        Outcome::Superseded { version, current } => (
            "superseded",
            format!("version {version} was written but {current}, from a newer upload, stays live"),
        ),
    }
}

/// The teacher of `upload` (`data/<name>.teacher.csv`) when the settings distill (`distill >
/// 0`): its absence is a settings error, since the run would otherwise train untaught under a
/// version that claims a teacher. Without distillation a teacher file present is not read, and
/// the warning returned says so.
async fn read_teacher(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
    settings: &Settings,
    report: &mut JobReport,
) -> Result<(Option<Teacher>, Option<String>), JobError> {
    let key = teacher_key(&upload.key);
    if settings.train.distill == 0.0 {
        let unused = store.head(&key).await?.is_some().then(|| {
            format!("{key} is not used: distill is 0 (set distill in the data set's settings file to learn from it)")
        });
        return Ok((None, unused));
    }
    let obj = store
        .get_limited(&key, cfg.max_upload_bytes)
        .await?
        .ok_or_else(|| {
            JobError::new(
                FailureKind::BadConfig,
                false,
                format!(
                    "distill is {} but there is no teacher file {key}: upload its `text,teacher` CSV first, or set distill to 0",
                    settings.train.distill
                ),
            )
        })?;
    let teacher = Teacher::from_reader(&obj.body[..])
        .map_err(|e| JobError::new(FailureKind::BadData, false, format!("teacher {key}: {e}")))?;
    report.teacher = Some(key);
    Ok((Some(teacher), None))
}

async fn run(
    store: &dyn ObjectStore,
    upload: &Upload,
    cfg: &JobConfig,
    budget: &Budget,
    report: &mut JobReport,
) -> Result<Outcome, JobError> {
    let t = Instant::now();
    let sidecar_key = sidecar_key(&upload.key);
    let sidecar = match store.get(&sidecar_key).await? {
        None => Sidecar::default(),
        Some(obj) => {
            report.sidecar = Some(sidecar_key.clone());
            Sidecar::from_json(&obj.body).map_err(|e| {
                JobError::new(
                    FailureKind::BadConfig,
                    false,
                    format!("sidecar {sidecar_key}: {e}"),
                )
            })?
        }
    };
    let overrides = cfg.defaults.merged(&sidecar.settings);
    report.overrides = Some(overrides.clone());
    // `force` is the job's own option, per data set only: it never changes the settings.
    let forced = sidecar.force.unwrap_or(false);
    report.forced = forced;
    let settings = Settings::default().apply(&overrides).map_err(|e| {
        let origin = if report.sidecar.is_some() {
            format!("sidecar {sidecar_key} + environment")
        } else {
            "environment".into()
        };
        JobError::new(FailureKind::BadConfig, false, format!("{origin}: {e}"))
    })?;

    if let Some(size) = upload.size {
        if size as u64 > cfg.max_upload_bytes {
            return Err(JobError::new(
                FailureKind::BadData,
                false,
                format!(
                    "upload is {size} bytes, more than the {} allowed (MAX_UPLOAD_MB); split it or raise the limit",
                    cfg.max_upload_bytes
                ),
            ));
        }
    }
    budget.check("before reading the upload")?;
    let csv = store
        .get_limited(&upload.key, cfg.max_upload_bytes)
        .await?
        .ok_or_else(|| {
            // Deleted between the event and now: a later event describes what happened to it.
            JobError::new(
                FailureKind::BadData,
                false,
                format!("object {} no longer exists", upload.key),
            )
        })?;
    report.read_etag = Some(csv.etag.clone());
    let (teacher, teacher_warning) = read_teacher(store, upload, cfg, &settings, report).await?;
    let sha256 = pipeline::sha256_hex(&csv.body);
    let version = pipeline::taught_version_id(&sha256, teacher.as_ref(), &settings);
    report.data_sha256 = Some(sha256.clone());
    report.version = Some(version.clone());

    let registry = Registry::new(store, &cfg.model_prefix);
    if let Some((current, _)) = registry.latest().await? {
        if current.version == version
            && store
                .head(&registry.key(&format!("{version}/model.bin")))
                .await?
                .is_some()
        {
            report.metrics = current.metrics.clone();
            report.timings.read_seconds = t.elapsed().as_secs_f64();
            return Ok(Outcome::AlreadyPublished { version });
        }
    }

    let (examples, load) = dataset::read_csv(&csv.body[..], &settings.csv)?;
    drop(csv);
    report.rows_read = Some(load.rows_read);
    report.rows_used = Some(load.rows_used);
    report.skipped = load.skipped.clone();
    report.format = load.format.clone();
    report.warnings = load.warnings.clone();
    report.warnings.extend(teacher_warning);
    report.timings.read_seconds = t.elapsed().as_secs_f64();
    let (distinct, rows) = gate::distinct_texts(examples.iter().map(|e| e.text.as_str()));
    report.gate.rows = Some(rows);
    report.gate.distinct_texts = Some(distinct);
    report.gate.distinct_fraction = Some(distinct as f64 / rows.max(1) as f64);

    budget.check("before training")?;
    let t = Instant::now();
    let data = TrainData {
        examples,
        load,
        source: report.source.clone(),
        sha256,
    };
    let created_at = tagger_registry::clock::now_rfc3339();
    let mut stopped_at = None;
    let trained = tracing::info_span!("training", rows = rows).in_scope(|| {
        pipeline::train_taught(data, None, teacher.as_ref(), &settings, &created_at, &mut |e| {
            tracing::info!(epoch = e.epoch, train_loss = e.train_loss, val_loss = ?e.val_loss, val_micro_f1 = ?e.val_micro_f1, seconds = e.seconds, "epoch");
            // Another epoch like this one must still leave the reserve for evaluating and publishing.
            let go_on = budget.allows(Duration::from_secs_f64(e.seconds));
            if !go_on {
                stopped_at = Some(e.epoch);
            }
            go_on
        })
    });
    report.timings.train_seconds = t.elapsed().as_secs_f64();
    let trained = match (trained, stopped_at) {
        (Err(tagger_train::Error::Stopped { .. }), Some(epoch)) => {
            return Err(budget.timeout(&format!("training after epoch {epoch}")))
        }
        (result, _) => result?,
    };
    let new_metrics = trained.report.metrics.as_ref().ok_or_else(|| {
        JobError::gate("no test rows were held out, so the model cannot be scored: upload more rows or raise test_split")
    })?;
    report.metrics = Some(pipeline::headline(new_metrics));
    if let Some(teacher) = &teacher {
        report.warnings.extend(
            teacher.held_out_warning(trained.test_examples.iter().map(|e| e.text.as_str())),
        );
    }

    // The candidate's own numbers: its test rows, the no-skill baseline on them.
    let test_rows = reference_rows(&trained.test_examples);
    let candidate = Predictor::new(trained.artifact.clone());
    report.gate.candidate = Some(gate::score(&candidate, &test_rows));
    let train_rows = trained.report.rows.train + trained.report.rows.validation;
    report.gate.baseline = gate::baseline(candidate.labels(), train_rows, &test_rows);

    let t = Instant::now();
    let report_json =
        serde_json::to_vec_pretty(&trained.report).expect("a run report serialises to json");
    let source_json = serde_json::to_vec_pretty(&serde_json::json!({
        "store": store.describe(),
        "key": upload.key,
        "etag": upload.etag,
        "read_etag": report.read_etag,
        "version_id": upload.version_id,
        "sequencer": upload.sequencer,
        "size": upload.size,
        "sha256": report.data_sha256,
        "sidecar": report.sidecar,
        "teacher": report.teacher,
        "overrides": overrides,
        "settings": settings,
    }))
    .expect("a source record serialises to json");
    budget.check("before publishing")?;
    // The reference set first: a version that becomes live always has one.
    registry
        .write_reference(&ReferenceSet::sample(
            &version,
            &test_rows,
            MAX_REFERENCE_ROWS,
        ))
        .await?;
    let mut pointer = registry
        .write_version(&trained.artifact, &report_json, &source_json)
        .await?;
    pointer.sequencer = upload.sequencer.clone();

    // Decide against the pointer as it is now; if another run moves it before our conditional
    // write lands, decide once more against what it moved to.
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        let current = registry.latest().await?;
        let Some((cur, etag)) = current else {
            report.incumbent = None;
            (
                report.gate.live,
                report.gate.reference,
                report.gate.label_mass,
            ) = (None, None, None);
            judge(&mut report.gate, forced)?;
            match registry.promote(&pointer, None).await {
                Ok(_) => {
                    break Outcome::Promoted {
                        version,
                        previous: None,
                    }
                }
                Err(tagger_registry::Error::PreconditionFailed { .. }) if attempt < 2 => continue,
                Err(e) => return Err(lost_race(e)),
            }
        };
        if cur.version == version {
            break Outcome::AlreadyPublished { version };
        }
        if let (Some(mine), Some(theirs)) = (&upload.sequencer, &cur.sequencer) {
            if sequencer_cmp(theirs, mine) == Ordering::Greater {
                report.incumbent = Some(Incumbent {
                    version: cur.version.clone(),
                    sequencer: cur.sequencer.clone(),
                    micro_f1: None,
                    note: None,
                });
                break Outcome::Superseded {
                    version,
                    current: cur.version,
                };
            }
        }
        let incumbent =
            score_incumbent(&registry, &cur, &candidate, &test_rows, &mut report.gate).await?;
        report.incumbent = Some(incumbent);
        judge(&mut report.gate, forced)?;
        match registry.promote(&pointer, Some(&etag)).await {
            Ok(_) => {
                break Outcome::Promoted {
                    version,
                    previous: Some(cur.version),
                }
            }
            Err(tagger_registry::Error::PreconditionFailed { .. }) if attempt < 2 => {
                tracing::info!(version = %version, "pointer moved while deciding; deciding again");
                continue;
            }
            Err(e) => return Err(lost_race(e)),
        }
    };
    if forced && matches!(outcome, Outcome::Promoted { .. }) {
        if let Some(why) = report.gate.failures() {
            let (_, base) = describe(&outcome);
            report.reason = format!("{base} (forced past the quality gate: {why})");
        }
    }
    report.timings.publish_seconds = t.elapsed().as_secs_f64();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use bytes::Bytes;
    use tagger_registry::registry::{Pointer, LATEST, PREVIOUS};
    use tagger_registry::store::PutMode;
    use tagger_registry::store::{MemoryStore, Object};

    /// A small, learnable corpus: each tag has its own words, a quarter of the rows carry two tags.
    fn corpus(seed: u64, rows: usize) -> String {
        const TOPICS: [(&str, [&str; 5]); 4] = [
            ("rust", ["borrow", "cargo", "lifetime", "trait", "crate"]),
            ("python", ["pip", "django", "list", "dict", "pandas"]),
            ("javascript", ["npm", "react", "promise", "dom", "node"]),
            ("sql", ["join", "select", "index", "query", "table"]),
        ];
        const FILLER: [&str; 8] = ["how", "to", "fix", "error", "with", "my", "why", "does"];
        let mut state = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        let mut out = String::from("tags,text\n");
        for _ in 0..rows {
            let a = next() % 4;
            let b = (a + 1 + next() % 3) % 4;
            let two = next() % 4 == 0;
            let mut words = vec![
                FILLER[next() % 8],
                TOPICS[a].1[next() % 5],
                FILLER[next() % 8],
                TOPICS[a].1[next() % 5],
            ];
            let tags = if two {
                words.push(TOPICS[b].1[next() % 5]);
                words.push(TOPICS[b].1[next() % 5]);
                let mut t = [TOPICS[a].0, TOPICS[b].0];
                t.sort_unstable();
                format!("\"{},{}\"", t[0], t[1])
            } else {
                TOPICS[a].0.to_owned()
            };
            out.push_str(&format!("{tags},{}\n", words.join(" ")));
        }
        out
    }

    fn cfg() -> JobConfig {
        // Small and quick: the tests exercise decisions, not model quality.
        JobConfig {
            defaults: Overrides {
                epochs: Some(5),
                hidden: Some(vec![16]),
                seed: Some(3),
                ..Default::default()
            },
            ..JobConfig::default()
        }
    }

    fn upload(key: &str, sequencer: &str) -> Upload {
        Upload {
            key: key.into(),
            etag: Some(format!("etag-{sequencer}")),
            sequencer: Some(sequencer.into()),
            ..Default::default()
        }
    }

    async fn put(store: &dyn ObjectStore, key: &str, body: impl Into<Bytes>) {
        store
            .put(key, body.into(), PutMode::Overwrite)
            .await
            .unwrap();
    }

    async fn latest(store: &dyn ObjectStore) -> Option<Pointer> {
        Registry::new(store, "models")
            .latest()
            .await
            .unwrap()
            .map(|(p, _)| p)
    }

    async fn report(store: &dyn ObjectStore, data_key: &str) -> JobReport {
        let obj = store
            .get(&format!("reports/{data_key}.json"))
            .await
            .unwrap()
            .expect("report written");
        serde_json::from_slice(&obj.body).unwrap()
    }

    /// The live version and the settings its run recorded.
    async fn live_settings(store: &dyn ObjectStore) -> (String, Settings) {
        let pointer = latest(store).await.expect("a live version");
        let artifact = Registry::new(store, "models").load(&pointer).await.unwrap();
        let settings = pipeline::TrainingRecord::of(&artifact.info)
            .settings
            .expect("the job records its settings");
        (pointer.version, settings)
    }

    fn versions(store: &MemoryStore) -> Vec<String> {
        store
            .keys()
            .into_iter()
            .filter(|k| k.ends_with("/model.bin"))
            .collect()
    }

    async fn publish_good(store: &dyn ObjectStore, key: &str, sequencer: &str) -> Pointer {
        put(store, key, corpus(1, 400)).await;
        let out = retrain(store, &upload(key, sequencer), &cfg())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Promoted { .. }), "{out:?}");
        latest(store).await.expect("pointer written")
    }

    #[test]
    fn sequencers_compare_after_left_padding() {
        assert_eq!(sequencer_cmp("FF", "0100"), Ordering::Less);
        assert_eq!(
            sequencer_cmp("0066321A5C8B3E4F22", "66321A5C8B3E4F21"),
            Ordering::Greater
        );
        assert_eq!(sequencer_cmp("0a", "A"), Ordering::Equal);
    }

    #[test]
    fn rejects_layouts_that_write_under_the_data_prefix() {
        let bad = JobConfig {
            report_prefix: "data/reports".into(),
            ..JobConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(tagger_train::Error::InvalidConfig {
                field: "report_prefix",
                ..
            })
        ));
        let bad = JobConfig {
            data_prefix: "".into(),
            ..JobConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(tagger_train::Error::InvalidConfig {
                field: "data_prefix",
                ..
            })
        ));
        JobConfig::default().validate().unwrap();
    }

    #[tokio::test]
    async fn ignores_keys_outside_the_data_prefix_or_not_csv() {
        let store = MemoryStore::new();
        for key in [
            "models/latest.json",
            "reports/data/x.csv.json",
            "data/x.json",
            "data/x.csv.bak",
            "other/x.csv",
            "data/.csv",
        ] {
            let out = retrain(&store, &upload(key, "01"), &cfg()).await.unwrap();
            assert!(matches!(out, Outcome::Ignored { .. }), "{key}: {out:?}");
        }
        assert!(store.keys().is_empty(), "{:?}", store.keys());
    }

    #[tokio::test]
    async fn first_upload_publishes_a_verified_version() {
        let store = MemoryStore::new();
        let pointer = publish_good(&store, "data/q.csv", "01").await;
        let registry = Registry::new(&store, "models");
        let artifact = registry.load(&pointer).await.unwrap();
        assert_eq!(artifact.info.version, pointer.version);
        assert_eq!(pointer.sequencer.as_deref(), Some("01"));
        for file in ["metrics.json", "source.json"] {
            assert!(
                store
                    .get(&format!("models/{}/{file}", pointer.version))
                    .await
                    .unwrap()
                    .is_some(),
                "{file}"
            );
        }
        let r = report(&store, "data/q.csv").await;
        assert_eq!(
            (r.outcome.as_str(), r.version.as_deref()),
            ("promoted", Some(pointer.version.as_str()))
        );
        assert_eq!(r.rows_read, Some(400));
        assert!(r.metrics.unwrap().micro_f1 >= cfg().min_micro_f1);
        assert!(
            store
                .keys()
                .iter()
                .all(|k| !k.starts_with("data/") || k == "data/q.csv"),
            "{:?}",
            store.keys()
        );
    }

    #[tokio::test]
    async fn bad_csv_writes_a_report_and_keeps_the_pointer() {
        let store = MemoryStore::new();
        let before = publish_good(&store, "data/q.csv", "01").await;
        put(&store, "data/bad.csv", "title,labels\nx,y\n").await;
        let err = retrain(&store, &upload("data/bad.csv", "02"), &cfg())
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable),
            (FailureKind::BadData, false),
            "{err}"
        );
        let r = report(&store, "data/bad.csv").await;
        assert_eq!(
            (r.outcome.as_str(), r.failure),
            ("failed", Some(FailureKind::BadData))
        );
        assert!(r.reason.contains("tags"), "{}", r.reason);
        assert_eq!(latest(&store).await, Some(before));
    }

    #[tokio::test]
    async fn redelivered_bad_upload_answers_from_its_report() {
        let store = MemoryStore::new();
        put(&store, "data/bad.csv", "").await;
        let first = retrain(&store, &upload("data/bad.csv", "02"), &cfg())
            .await
            .unwrap_err();
        // The object is fixed under the same event: the redelivery must not re-judge it.
        put(&store, "data/bad.csv", corpus(1, 400)).await;
        let again = retrain(&store, &upload("data/bad.csv", "02"), &cfg())
            .await
            .unwrap_err();
        assert_eq!(again, first);
        assert!(versions(&store).is_empty());
        // A new upload (new sequencer) is judged afresh.
        let out = retrain(&store, &upload("data/bad.csv", "03"), &cfg())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Promoted { .. }), "{out:?}");
    }

    /// A tab-separated upload with `|`-separated tags trains on the right tags, and the report
    /// says how the file was read.
    #[tokio::test]
    async fn the_report_says_how_the_csv_was_read() {
        let store = MemoryStore::new();
        let tsv: String = corpus(1, 400)
            .lines()
            .map(|line| {
                let (tags, text) = line.rsplit_once(',').unwrap();
                format!("{}\t{text}\n", tags.trim_matches('"').replace(',', "|"))
            })
            .collect();
        put(&store, "data/q.csv", tsv).await;
        retrain(&store, &upload("data/q.csv", "01"), &cfg())
            .await
            .unwrap();
        let r = report(&store, "data/q.csv").await;
        let format = r.format.expect("format reported");
        assert_eq!(format.delimiter, dataset::Delimiter::Tab);
        assert_eq!(format.tag_format, Some(dataset::TagFormat::Pipe));
        assert!(format.tag_format_detected && format.delimiter_detected);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let pointer = latest(&store).await.unwrap();
        let artifact = Registry::new(&store, "models")
            .load(&pointer)
            .await
            .unwrap();
        let mut labels = artifact.labels.names().to_vec();
        labels.sort();
        assert_eq!(labels, ["javascript", "python", "rust", "sql"]);
    }

    #[tokio::test]
    async fn sidecar_overrides_the_environment_defaults() {
        let store = MemoryStore::new();
        put(&store, "data/q.csv", corpus(1, 400)).await;
        put(&store, "data/q.json", r#"{"epochs": 8, "seed": 11}"#).await;
        retrain(&store, &upload("data/q.csv", "01"), &cfg())
            .await
            .unwrap();
        let (_, settings) = live_settings(&store).await;
        assert_eq!((settings.train.epochs, settings.train.seed), (8, 11));
        assert_eq!(settings.train.hidden, vec![16], "environment default kept");
        assert_eq!(
            report(&store, "data/q.csv").await.sidecar.as_deref(),
            Some("data/q.json")
        );
    }

    /// A `text,teacher` file for `csv`'s texts (each with its own tags at `p`), plus `extra`
    /// texts the upload does not have.
    fn teacher_for(csv: &str, p: f32, extra: &[(&str, &str)]) -> String {
        let mut out = String::from("text,teacher\n");
        // `corpus` rows: `tag,text` or `"tag,tag",text`.
        for line in csv.lines().skip(1) {
            let (tags, text) = match line.strip_prefix('"') {
                Some(rest) => rest.split_once("\",").unwrap(),
                None => line.split_once(',').unwrap(),
            };
            let probs: Vec<String> = tags.split(',').map(|t| format!("{t}={p}")).collect();
            out.push_str(&format!("{text},{}\n", probs.join(";")));
        }
        for (text, tag) in extra {
            out.push_str(&format!("{text},{tag}={p}\n"));
        }
        out
    }

    #[tokio::test]
    async fn a_teacher_beside_the_upload_teaches_the_run() {
        let store = MemoryStore::new();
        let csv = corpus(1, 400);
        put(&store, "data/q.csv", csv.clone()).await;
        put(&store, "data/q.json", r#"{"distill": 0.3}"#).await;
        put(
            &store,
            "data/q.teacher.csv",
            teacher_for(&csv, 0.9, &[("how to fix my borrow", "rust")]),
        )
        .await;
        // The teacher's own upload event starts nothing.
        let out = retrain(&store, &upload("data/q.teacher.csv", "01"), &cfg())
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Ignored { reason } if reason.contains("teacher file")),
            "{out:?}"
        );
        let out = retrain(&store, &upload("data/q.csv", "02"), &cfg())
            .await
            .unwrap();
        let Outcome::Promoted { version, .. } = out else {
            panic!("{out:?}")
        };
        let r = report(&store, "data/q.csv").await;
        assert_eq!(r.teacher.as_deref(), Some("data/q.teacher.csv"));
        // The teacher scores every row of the upload, the held-out ones included.
        let held_out = r.metrics.as_ref().unwrap().examples;
        assert!(
            r.warnings.iter().any(|w| w.contains(&format!(
                "probabilities for {held_out} of the {held_out} held-out test rows"
            ))),
            "{:?}",
            r.warnings
        );
        // The same data, settings and teacher again: recognised as published.
        let again = retrain(&store, &upload("data/q.csv", "02"), &cfg())
            .await
            .unwrap();
        assert!(
            matches!(&again, Outcome::AlreadyPublished { version: v } if *v == version),
            "{again:?}"
        );
        let (live, settings) = live_settings(&store).await;
        assert_eq!(live, version);
        assert_eq!(settings.train.distill, 0.3);
        let source = store
            .get(&format!("models/{version}/source.json"))
            .await
            .unwrap()
            .unwrap();
        let source: serde_json::Value = serde_json::from_slice(&source.body).unwrap();
        assert_eq!(source["teacher"], "data/q.teacher.csv");

        // Another teacher for the same data and settings is another version.
        put(&store, "data/q.teacher.csv", teacher_for(&csv, 0.8, &[])).await;
        // (Promoted or not: the gate's decision is not what this checks.)
        let _ = retrain(&store, &upload("data/q.csv", "03"), &cfg()).await;
        let other = report(&store, "data/q.csv").await.version;
        assert!(other.is_some() && other.as_deref() != Some(version.as_str()));
    }

    #[tokio::test]
    async fn distilling_without_a_usable_teacher_is_an_error_with_a_report() {
        for (teacher, kind, needle) in [
            (
                None,
                FailureKind::BadConfig,
                "no teacher file data/q.teacher.csv",
            ),
            (
                Some("words,probabilities\nx,rust=1\n"),
                FailureKind::BadData,
                "teacher data/q.teacher.csv",
            ),
            (
                Some("text,teacher\nhow to fix,rust=2\n"),
                FailureKind::BadData,
                "line 2",
            ),
        ] {
            let store = MemoryStore::new();
            put(&store, "data/q.csv", corpus(1, 400)).await;
            put(&store, "data/q.json", r#"{"distill": 0.5}"#).await;
            if let Some(body) = teacher {
                put(&store, "data/q.teacher.csv", body).await;
            }
            let err = retrain(&store, &upload("data/q.csv", "01"), &cfg())
                .await
                .unwrap_err();
            assert_eq!((err.kind, err.retryable), (kind, false), "{err}");
            assert!(err.message.contains(needle), "{teacher:?}: {err}");
            assert_eq!(report(&store, "data/q.csv").await.failure, Some(kind));
            assert!(versions(&store).is_empty());
        }
    }

    #[tokio::test]
    async fn a_teacher_without_distill_is_not_read_and_the_report_says_so() {
        let store = MemoryStore::new();
        put(&store, "data/q.csv", corpus(1, 400)).await;
        put(&store, "data/q.teacher.csv", "not a teacher file at all").await;
        let out = retrain(&store, &upload("data/q.csv", "01"), &cfg())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Promoted { .. }), "{out:?}");
        let r = report(&store, "data/q.csv").await;
        assert_eq!(r.teacher, None);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("data/q.teacher.csv is not used: distill is 0")),
            "{:?}",
            r.warnings
        );
    }

    #[tokio::test]
    async fn data_past_its_bounds_is_a_data_error_with_a_report() {
        let store = MemoryStore::new();
        // 1,000 rows, 20 of them one distinct tag each, against a limit of 10 tags.
        let mut csv = corpus(1, 980);
        for i in 0..20 {
            csv.push_str(&format!("rare{i},question {i} about something rare\n"));
        }
        put(&store, "data/q.csv", csv).await;
        put(&store, "data/q.json", r#"{"max_tags": 10}"#).await;
        let err = retrain(&store, &upload("data/q.csv", "01"), &cfg())
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::BadData, "{err}");
        assert!(err.message.contains("max_tags"), "{err}");
        assert_eq!(
            report(&store, "data/q.csv").await.failure,
            Some(FailureKind::BadData)
        );
        assert!(versions(&store).is_empty());
    }

    #[tokio::test]
    async fn invalid_sidecar_is_a_config_error_with_a_report() {
        for (body, needle) in [
            (r#"{"epochz": 2}"#, "epochz"),
            (r#"{"test_split": 1.5}"#, "test_split"),
            ("not json", "sidecar"),
            // Sidecars that once aborted, hung or were promoted with their value dropped.
            (r#"{"hidden": [1000000000]}"#, "hidden"),
            (r#"{"epochs": 1000000000}"#, "epochs"),
            (r#"{"epochs": 1e18}"#, "epochs"),
            (r#"{"learning_rate": 1e39}"#, "learning_rate"),
            (r#"{"force": true, "learning_rate": 1e39}"#, "learning_rate"),
            (
                r#"{"max_memory_mb": 1, "hidden": [4096, 4096]}"#,
                "max_memory_mb",
            ),
        ] {
            let store = MemoryStore::new();
            put(&store, "data/q.csv", corpus(1, 400)).await;
            put(&store, "data/q.json", body).await;
            let err = retrain(&store, &upload("data/q.csv", "01"), &cfg())
                .await
                .unwrap_err();
            assert_eq!(
                (err.kind, err.retryable),
                (FailureKind::BadConfig, false),
                "{err}"
            );
            assert!(err.message.contains(needle), "{body}: {err}");
            assert_eq!(
                report(&store, "data/q.csv").await.failure,
                Some(FailureKind::BadConfig)
            );
            assert!(versions(&store).is_empty());
        }
    }

    #[tokio::test]
    async fn same_upload_twice_trains_and_publishes_once() {
        let store = MemoryStore::new();
        let first = publish_good(&store, "data/q.csv", "01").await;
        let again = retrain(&store, &upload("data/q.csv", "01"), &cfg())
            .await
            .unwrap();
        assert_eq!(
            again,
            Outcome::AlreadyPublished {
                version: first.version.clone()
            }
        );
        assert_eq!(versions(&store).len(), 1);
        assert_eq!(latest(&store).await, Some(first));
        assert!(store.get("models/previous.json").await.unwrap().is_none());
        assert_eq!(
            report(&store, "data/q.csv").await.outcome,
            "already_published"
        );
    }

    const BAD_SIDECAR: &str =
        r#"{"epochs": 1, "hidden": [2], "learning_rate": 0.00001, "threshold": 0.99}"#;

    #[tokio::test]
    async fn worse_model_is_written_but_not_promoted() {
        let store = MemoryStore::new();
        let before = publish_good(&store, "data/q.csv", "01").await;
        put(&store, "data/q.json", BAD_SIDECAR).await;
        let cfg = JobConfig {
            min_micro_f1: 0.0,
            ..cfg()
        };
        let err = retrain(&store, &upload("data/q.csv", "02"), &cfg)
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.retryable),
            (FailureKind::QualityGate, false),
            "{err}"
        );
        assert!(err.message.contains("(live_reference)"), "{err}");
        assert_eq!(latest(&store).await, Some(before.clone()));
        assert_eq!(
            versions(&store).len(),
            2,
            "the rejected version's files are kept for inspection"
        );
        let r = report(&store, "data/q.csv").await;
        let incumbent = r.incumbent.expect("incumbent scored");
        assert_eq!(incumbent.version, before.version);
        assert!(incumbent.micro_f1.unwrap() > r.metrics.unwrap().micro_f1);
    }

    #[tokio::test]
    async fn live_version_without_reference_set_is_compared_on_the_upload_rows() {
        let store = MemoryStore::new();
        let before = publish_good(&store, "data/q.csv", "01").await;
        let reference = format!("models/{}/reference.json", before.version);
        let r = Registry::new(&store, "models")
            .reference(&before.version)
            .await
            .unwrap()
            .expect("the job stores a reference set");
        assert_eq!(r.rows_available, 80, "20% of 400 rows held out");
        put(
            &store,
            &reference,
            r#"{"version":"x","rows_available":0,"rows":[]}"#,
        )
        .await;
        put(&store, "data/q.json", BAD_SIDECAR).await;
        let err = retrain(&store, &upload("data/q.csv", "02"), &cfg())
            .await
            .unwrap_err();
        assert!(err.message.contains("(live_on_upload)"), "{err}");
        let r = report(&store, "data/q.csv").await;
        assert!(r.gate.reference.is_none());
        assert!(r
            .incumbent
            .unwrap()
            .note
            .unwrap()
            .contains("no reference set"));
    }

    /// Tags a candidate names but trained no output unit for (`min_tag_rows`) are never
    /// predicted, so they do not count as kept in its label mass.
    #[tokio::test]
    async fn tags_without_an_output_unit_are_not_kept_in_the_label_mass() {
        let store = MemoryStore::new();
        publish_good(&store, "data/q.csv", "01").await;
        let pointer = latest(&store).await.unwrap();
        let live = Registry::new(&store, "models")
            .load(&pointer)
            .await
            .unwrap();
        // rust and python on 120 rows each, javascript and sql on 20: with min_tag_rows 50 the
        // last two train no output unit (about 16 training rows each after the test split).
        const WORDS: [(&str, [&str; 3]); 4] = [
            ("rust", ["borrow", "cargo", "lifetime"]),
            ("python", ["pip", "django", "pandas"]),
            ("javascript", ["npm", "react", "promise"]),
            ("sql", ["join", "select", "query"]),
        ];
        let mut csv = String::from("tags,text\n");
        for (t, (tag, words)) in WORDS.iter().enumerate() {
            for i in 0..if t < 2 { 120 } else { 20 } {
                csv += &format!(
                    "{tag},how to fix {} with {} {i}\n",
                    words[i % 3],
                    words[(i + 1) % 3]
                );
            }
        }
        put(&store, "data/q.csv", csv).await;
        put(&store, "data/q.json", r#"{"min_tag_rows": 50}"#).await;
        // A worse model too (it can no longer answer javascript or sql): the gate refuses it.
        let err = retrain(&store, &upload("data/q.csv", "02"), &cfg())
            .await
            .unwrap_err();
        assert!(err.message.contains("quality gate"), "{err}");
        let (names, counts) = (live.labels.names(), live.labels.counts());
        let total: u64 = counts.iter().sum();
        let kept: u64 = names
            .iter()
            .zip(counts)
            .filter(|(n, _)| ["rust", "python"].contains(&n.as_str()))
            .map(|(_, c)| c)
            .sum();
        let mass = report(&store, "data/q.csv").await.gate.label_mass.unwrap();
        assert!(
            (mass - kept as f64 / total as f64).abs() < 1e-9,
            "label mass {mass}, rust + python {kept} of {total}"
        );
        assert!(mass < 0.9, "{mass}");
    }

    #[tokio::test]
    async fn force_promotes_a_model_that_fails_the_gate() {
        let store = MemoryStore::new();
        let before = publish_good(&store, "data/q.csv", "01").await;
        put(
            &store,
            "data/q.json",
            BAD_SIDECAR.replace('}', r#", "force": true}"#),
        )
        .await;
        let out = retrain(&store, &upload("data/q.csv", "02"), &cfg())
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Promoted { previous: Some(p), .. } if *p == before.version),
            "{out:?}"
        );
        assert_ne!(latest(&store).await.unwrap().version, before.version);
        let previous: Pointer = serde_json::from_slice(
            &store
                .get("models/previous.json")
                .await
                .unwrap()
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(previous, before);
        let r = report(&store, "data/q.csv").await;
        assert!(r.forced && r.reason.contains("forced"), "{}", r.reason);
    }

    #[tokio::test]
    async fn older_upload_never_replaces_a_newer_one() {
        let store = MemoryStore::new();
        let newer = publish_good(&store, "data/q.csv", "0B").await;
        put(&store, "data/late.csv", corpus(2, 400)).await;
        let out = retrain(&store, &upload("data/late.csv", "0A"), &cfg())
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Superseded { current, .. } if *current == newer.version),
            "{out:?}"
        );
        assert_eq!(latest(&store).await, Some(newer));
        assert_eq!(report(&store, "data/late.csv").await.outcome, "superseded");
    }

    /// A store in which another trainer moves the pointer just before our first conditional write.
    struct RacingStore {
        inner: MemoryStore,
        competitor: Mutex<Option<Bytes>>,
    }

    #[async_trait]
    impl ObjectStore for RacingStore {
        async fn get(&self, key: &str) -> tagger_registry::Result<Option<Object>> {
            self.inner.get(key).await
        }
        async fn head(&self, key: &str) -> tagger_registry::Result<Option<String>> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Bytes,
            mode: PutMode,
        ) -> tagger_registry::Result<String> {
            if key == "models/latest.json" && mode != PutMode::Overwrite {
                let jump = self.competitor.lock().unwrap().take();
                if let Some(theirs) = jump {
                    self.inner.put(key, theirs, PutMode::Overwrite).await?;
                }
            }
            self.inner.put(key, body, mode).await
        }
        fn describe(&self) -> String {
            "memory://racing".into()
        }
    }

    /// A competitor's published version (files copied in) and its pointer bytes.
    async fn competitor(into: &MemoryStore, sequencer: &str) -> (Pointer, Bytes) {
        let other = MemoryStore::new();
        put(&other, "data/other.csv", corpus(7, 400)).await;
        retrain(&other, &upload("data/other.csv", sequencer), &cfg())
            .await
            .unwrap();
        for key in other
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("models/") && !k.ends_with(LATEST) && !k.ends_with(PREVIOUS))
        {
            put(into, &key, other.get(&key).await.unwrap().unwrap().body).await;
        }
        let body = other.get("models/latest.json").await.unwrap().unwrap().body;
        (serde_json::from_slice(&body).unwrap(), body)
    }

    #[tokio::test]
    async fn racing_newer_promotion_wins_after_redeciding() {
        let inner = MemoryStore::new();
        let (theirs, body) = competitor(&inner, "0C").await;
        put(&inner, "data/q.csv", corpus(1, 400)).await;
        let store = RacingStore {
            inner,
            competitor: Mutex::new(Some(body)),
        };
        let out = retrain(&store, &upload("data/q.csv", "0B"), &cfg())
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Superseded { current, .. } if *current == theirs.version),
            "{out:?}"
        );
        assert_eq!(latest(&store).await, Some(theirs));
    }

    #[tokio::test]
    async fn racing_older_promotion_is_replaced_and_kept_as_previous() {
        let inner = MemoryStore::new();
        let (theirs, body) = competitor(&inner, "0A").await;
        put(&inner, "data/q.csv", corpus(1, 400)).await;
        let store = RacingStore {
            inner,
            competitor: Mutex::new(Some(body)),
        };
        let cfg = JobConfig {
            max_regression: 1.0,
            ..cfg()
        };
        let out = retrain(&store, &upload("data/q.csv", "0B"), &cfg)
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Promoted { previous: Some(p), .. } if *p == theirs.version),
            "{out:?}"
        );
        let now = latest(&store).await.unwrap();
        assert_eq!(now.sequencer.as_deref(), Some("0B"));
        Registry::new(&store, "models").load(&now).await.unwrap();
        let previous: Pointer = serde_json::from_slice(
            &store
                .get("models/previous.json")
                .await
                .unwrap()
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(previous, theirs);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_uploads_leave_the_newest_published() {
        for (first, second) in [("0A", "0B"), ("0B", "0A")] {
            let store = Arc::new(MemoryStore::new());
            put(store.as_ref(), "data/a.csv", corpus(1, 400)).await;
            put(store.as_ref(), "data/b.csv", corpus(2, 400)).await;
            let cfg = Arc::new(JobConfig {
                max_regression: 1.0,
                ..cfg()
            });
            let run = |key: &'static str, seq: &'static str| {
                let (store, cfg) = (store.clone(), cfg.clone());
                tokio::spawn(async move { retrain(store.as_ref(), &upload(key, seq), &cfg).await })
            };
            let (a, b) = (run("data/a.csv", first), run("data/b.csv", second));
            let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
            let now = latest(store.as_ref()).await.unwrap();
            assert_eq!(now.sequencer.as_deref(), Some("0B"), "{a:?} {b:?}");
            let newest = if first == "0B" { &a } else { &b };
            assert!(
                matches!(newest, Outcome::Promoted { version, .. } if *version == now.version),
                "{newest:?}"
            );
            Registry::new(store.as_ref(), "models")
                .load(&now)
                .await
                .unwrap();
        }
    }
}
