//! The one-step commands. Each reads its inputs, calls the library, and prints a table or JSON.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tagger_core::artifact::Artifact;
use tagger_core::predictor::PredictOptions;
use tagger_core::Predictor;
use tagger_job::{self as job, JobConfig, JobReport, Upload};
use tagger_registry::registry::{Pointer, ReferenceSet, Registry, MAX_REFERENCE_ROWS};
use tagger_registry::store::{LocalStore, ObjectStore};
use tagger_train::config::{Overrides, Settings, Sidecar};
use tagger_train::dataset::{self, CsvOptions, Example, LoadReport};
use tagger_train::pipeline::{self, TestData, TrainData, Trained, TrainingRecord};
use tagger_train::train::EpochStats;

use crate::{
    EvalArgs, ExplainArgs, InfoArgs, JobArgs, PredictArgs, QuickstartArgs, TrainArgs,
    TrainSettingsArgs,
};

/// The sample questions `quickstart` trains on (written for this project; see assets/README.md).
pub const SAMPLE_CSV: &str = include_str!("../assets/questions.csv");

/// Text from data (tag names, words, keys, paths, messages) made safe to print to a terminal:
/// control characters (C0 including newline and tab, DEL, C1) and the bidirectional
/// overrides and isolates are written as `\u{..}` escapes, so a tag named
/// `"\x1b]0;pwned\x07"` cannot retitle the terminal, move the cursor or fake a line. Every
/// human-readable output of the CLI passes data through this; JSON output is escaped by
/// serde_json already.
pub fn safe(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A test report whose tag names went through [`safe`], for its table.
pub fn safe_report(r: &tagger_train::metrics::Report) -> tagger_train::metrics::Report {
    let mut r = r.clone();
    for m in &mut r.per_tag {
        m.tag = safe(&m.tag).into_owned();
    }
    r
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Settings from the preset, then the `--settings` JSON, then individual flags (later wins).
pub fn settings_from(args: &TrainSettingsArgs) -> Result<Settings> {
    let mut overrides = Overrides::default();
    if let Some(path) = &args.settings {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read settings {}", path.display()))?;
        overrides = Sidecar::from_json(&bytes)
            .with_context(|| format!("settings file {}", path.display()))?
            .settings;
    }
    Ok(Settings::default().apply(&overrides.merged(&args.overrides))?)
}

/// Hashes bytes as the CSV reader pulls them, so the data is read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Rows of a CSV, its load report and the SHA-256 of its bytes.
pub fn read_csv_hashed(
    reader: impl Read,
    opts: &CsvOptions,
) -> Result<(Vec<Example>, LoadReport, String)> {
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
    };
    let (rows, report) = dataset::read_csv(&mut hashing, opts)?;
    // The CSV reader may stop before EOF (it does not at present); hash any rest so the digest
    // always covers the whole input.
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    Ok((rows, report, hex::encode(hashing.hasher.finalize())))
}

fn open_csv(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// A model folder (with `latest.json`) or a `model.bin` file, ready to answer.
pub fn load_model(path: &Path) -> Result<Predictor> {
    load_artifact(path).map(Predictor::new)
}

/// The artifact in a model folder (with `latest.json`) or a `model.bin` file.
pub fn load_artifact(path: &Path) -> Result<Artifact> {
    if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        return Artifact::from_bytes(&bytes)
            .with_context(|| format!("cannot load model {}", path.display()));
    }
    if !path.is_dir() {
        bail!(
            "no model at {}: expected a model folder (with latest.json) or a model.bin file",
            path.display()
        );
    }
    let store = LocalStore::new(path);
    runtime()?.block_on(async {
        let registry = Registry::new(&store, "");
        let Some((pointer, _)) = registry.latest().await? else {
            bail!(
                "{} has no latest.json: train a model into it first (tagger train --out {})",
                path.display(),
                path.display()
            );
        };
        registry
            .load(&pointer)
            .await
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "cannot load model {} from {}",
                    pointer.version,
                    path.display()
                )
            })
    })
}

fn progress_bar(epochs: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} training [{bar:30}] epoch {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn epoch_line(e: &EpochStats) -> String {
    let mut line = format!("loss {:.4}", e.train_loss);
    if let Some(v) = e.val_loss {
        line += &format!(" val_loss {v:.4}");
    }
    if let Some(f) = e.val_micro_f1 {
        line += &format!(" val_micro_f1 {f:.3}");
    }
    line
}

/// Trains and publishes into `out` (a local "models" folder); returns the run and its pointer.
pub fn train_and_publish(
    data: TrainData,
    test: Option<TestData>,
    settings: &Settings,
    out: &Path,
    quiet: bool,
) -> Result<(Trained, Pointer)> {
    let bar = progress_bar(settings.train.epochs, quiet);
    let trained = pipeline::train(
        data,
        test,
        settings,
        &tagger_registry::clock::now_rfc3339(),
        &mut |e| {
            bar.set_position(e.epoch as u64);
            bar.set_message(epoch_line(e));
            if !quiet {
                bar.println(format!(
                    "epoch {:>3}: {} ({:.2}s)",
                    e.epoch,
                    epoch_line(e),
                    e.seconds
                ));
            }
        },
    )?;
    bar.finish_and_clear();
    let store = LocalStore::new(out);
    let pointer = runtime()?.block_on(async {
        let registry = Registry::new(&store, "");
        let report = serde_json::to_vec_pretty(&trained.report)?;
        let source = serde_json::to_vec_pretty(&serde_json::json!({
            "source": trained.report.source,
            "sha256": trained.artifact.info.data_sha256,
            "settings": settings,
        }))?;
        // The held-out rows first: the job's quality gate scores later uploads on them.
        let held_out = tagger_job::reference_rows(&trained.test_examples);
        registry
            .write_reference(&ReferenceSet::sample(
                &trained.artifact.info.version,
                &held_out,
                MAX_REFERENCE_ROWS,
            ))
            .await?;
        anyhow::Ok(
            registry
                .publish(&trained.artifact, &report, &source)
                .await?,
        )
    })?;
    Ok((trained, pointer))
}

pub fn train(args: &TrainArgs) -> Result<()> {
    let settings = settings_from(&args.settings)?;
    let (examples, load, sha256) = read_csv_hashed(open_csv(&args.data)?, &settings.csv)
        .with_context(|| format!("cannot use {}", args.data.display()))?;
    let data = TrainData {
        examples,
        load,
        source: args.data.display().to_string(),
        sha256,
    };
    let test = match &args.test {
        Some(path) => {
            let (examples, load) = dataset::read_csv(open_csv(path)?, &settings.csv)
                .with_context(|| format!("cannot use {}", path.display()))?;
            Some(TestData { examples, load })
        }
        None => None,
    };
    let (trained, pointer) =
        train_and_publish(data, test, &settings, &args.out, args.quiet || args.json)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trained.report)?);
        return Ok(());
    }
    print_run(&trained, &pointer, &args.out);
    Ok(())
}

fn print_run(trained: &Trained, pointer: &Pointer, out: &Path) {
    let r = &trained.report;
    println!(
        "rows: {} train, {} validation, {} test; {} tags; {} features",
        r.rows.train, r.rows.validation, r.rows.test, r.labels, r.features
    );
    if !r.train_load.skipped.is_empty() {
        println!("skipped rows: {}", r.train_load.summary());
    }
    if r.unknown_test_tags > 0 {
        println!(
            "test tags never seen in training: {} occurrences (counted as misses)",
            r.unknown_test_tags
        );
    }
    println!(
        "time: {:.2}s total ({:.2}s prepare, {:.2}s fit, best epoch {})",
        r.timings.total_seconds, r.timings.prepare_seconds, r.timings.fit_seconds, r.best_epoch
    );
    if let Some(m) = &r.metrics {
        println!("{}", safe_report(m).table(15));
    }
    println!(
        "published version {} -> {}",
        pointer.version,
        out.join(&pointer.key).display()
    );
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let artifact = load_model(&args.model)?;
    let csv = TrainingRecord::of(artifact.info())
        .settings
        .map(|s| s.csv)
        .unwrap_or_default();
    let (examples, load) = dataset::read_csv(open_csv(&args.data)?, &csv)
        .with_context(|| format!("cannot use {}", args.data.display()))?;
    let report = pipeline::evaluate(&artifact, &examples);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "load": load, "metrics": report }))?
        );
    } else {
        if !load.skipped.is_empty() {
            println!("skipped rows: {}", load.summary());
        }
        println!("{}", safe_report(&report).table(20));
    }
    Ok(())
}

fn questions(args_text: &[String]) -> Box<dyn Iterator<Item = std::io::Result<String>> + '_> {
    if args_text.is_empty() {
        Box::new(BufReader::new(std::io::stdin()).lines())
    } else {
        Box::new(args_text.iter().cloned().map(Ok))
    }
}

pub fn predict(args: &PredictArgs) -> Result<()> {
    let artifact = load_model(&args.model)?;
    let opts = PredictOptions {
        threshold: args.threshold,
        top_k: args.top_k,
        scores: args.scores,
    };
    let mut failures = 0usize;
    for (n, question) in questions(&args.text).enumerate() {
        let question = question?;
        match artifact.predict(&question, &opts) {
            Ok(p) if args.json => println!("{}", serde_json::to_string(&p)?),
            Ok(p) => {
                let tags: Vec<String> = p
                    .tags
                    .iter()
                    .zip(&p.probabilities)
                    .map(|(t, pr)| format!("{} ({pr:.2})", safe(t)))
                    .collect();
                println!(
                    "{}",
                    if tags.is_empty() {
                        "(no confident tag)".to_owned()
                    } else {
                        tags.join(", ")
                    }
                );
                if let Some(scores) = &p.scores {
                    let mut all: Vec<_> = scores.iter().collect();
                    all.sort_by(|a, b| b.1.total_cmp(a.1));
                    for (tag, s) in all.iter().take(10) {
                        println!("    {:<24} {s:.3}", safe(tag));
                    }
                }
            }
            Err(e) => {
                failures += 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "error": e.to_string(), "line": n + 1 })
                    );
                } else {
                    eprintln!("question {}: {}", n + 1, safe(&e.to_string()));
                }
            }
        }
    }
    if failures > 0 {
        bail!("{failures} question(s) could not be answered");
    }
    Ok(())
}

pub fn explain(args: &ExplainArgs) -> Result<()> {
    crate::explain::run(args)
}

pub fn info(args: &InfoArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let summary = model.summary();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let record = TrainingRecord::of(model.info());
    println!("version:     {}", safe(&summary.version));
    println!("created at:  {}", safe(&summary.trained_at));
    println!("trained by:  tagger {}", safe(&summary.crate_version));
    println!(
        "data:        {} (sha256 {})",
        safe(&summary.source),
        safe(&summary.data_sha256.chars().take(16).collect::<String>())
    );
    println!(
        "rows:        {} train, {} validation, {} test",
        summary.rows.train, summary.rows.validation, summary.rows.test
    );
    if let Some(settings) = &record.settings {
        println!(
            "preset:      {}; tokenizer {}",
            serde_json::to_string(&settings.preset)?,
            serde_json::to_string(&settings.tokenizer)?
        );
    }
    println!(
        "network:     {} -> {:?} -> {}",
        summary.features,
        summary.hidden,
        summary.labels.len()
    );
    println!("background:  {} rows", summary.background_rows);
    println!("tags and thresholds:");
    for (name, t) in &summary.thresholds.per_tag {
        println!("    {:<28} {t:.2}", safe(name));
    }
    if let Some(m) = &record.metrics {
        println!("{}", safe_report(m).table(10));
    }
    Ok(())
}

/// Runs uploads through the same retraining job as the `train` function, with a local folder as
/// the bucket; returns the reports.
pub fn run_job(bucket: &Path, keys: &[String]) -> Result<Vec<JobReport>> {
    let store = LocalStore::new(bucket);
    let cfg = JobConfig::default();
    runtime()?.block_on(async {
        let mut reports = Vec::new();
        for key in keys {
            let upload = Upload {
                key: key.clone(),
                etag: None,
                version_id: None,
                sequencer: None,
                size: None,
            };
            let outcome = job::retrain(&store, &upload, &cfg).await;
            let report_key = cfg.report_key(key);
            let report: Option<JobReport> = match store.get(&report_key).await? {
                Some(obj) => Some(serde_json::from_slice(&obj.body)?),
                None => None,
            };
            match (outcome, report) {
                (Ok(job::Outcome::Ignored { reason }), _) => {
                    println!("{}: ignored ({})", safe(key), safe(&reason))
                }
                (_, Some(report)) => {
                    println!(
                        "{}: {} - {} (report: {})",
                        safe(key),
                        safe(&report.outcome),
                        safe(&report.reason),
                        safe(&bucket.join(&report_key).display().to_string())
                    );
                    reports.push(report);
                }
                (Ok(outcome), None) => println!("{}: {outcome:?}", safe(key)),
                (Err(e), None) => bail!("{}: {}", safe(key), safe(&e.message)),
            }
        }
        Ok(reports)
    })
}

#[cfg(unix)]
fn reject_non_utf8(bucket: &Path, name: &std::ffi::OsStr) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let key = [b"data/".as_slice(), name.as_bytes()].concat();
    let store = LocalStore::new(bucket);
    let cfg = JobConfig::default();
    let upload = Upload {
        key: job::escape_key_bytes(&key),
        ..Upload::default()
    };
    match runtime()?.block_on(job::reject_invalid_key(&store, &key, &upload, &cfg)) {
        Ok(_) => {}
        Err(e) => println!("{}: failed - {}", safe(&upload.key), safe(&e.message)),
    }
    Ok(())
}

#[cfg(not(unix))]
fn reject_non_utf8(_bucket: &Path, name: &std::ffi::OsStr) -> Result<()> {
    println!(
        "{}: ignored (not a UTF-8 name)",
        safe(&name.to_string_lossy())
    );
    Ok(())
}

pub fn job(args: &JobArgs) -> Result<()> {
    let mut bad_names = 0usize;
    let keys = if args.keys.is_empty() {
        let data = args.bucket.join("data");
        let mut keys: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(&data)
            .with_context(|| format!("cannot list {}", data.display()))?
            .filter_map(|e| e.ok())
        {
            let name = entry.file_name();
            match name.to_str() {
                Some(name) if name.ends_with(".csv") => keys.push(format!("data/{name}")),
                Some(_) => {}
                // A name that is not UTF-8 cannot be a key: reported, never read under a
                // look-alike name.
                None => {
                    reject_non_utf8(&args.bucket, &name)?;
                    bad_names += 1;
                }
            }
        }
        keys.sort();
        keys
    } else {
        args.keys.clone()
    };
    if keys.is_empty() && bad_names > 0 {
        bail!("{bad_names} upload(s) with a name that is not UTF-8: see their reports");
    }
    if keys.is_empty() {
        bail!(
            "no uploads: put CSV files under {}/data/ or name keys",
            args.bucket.display()
        );
    }
    let reports = run_job(&args.bucket, &keys)?;
    let failed = reports.iter().filter(|r| r.outcome == "failed").count() + bad_names;
    if failed > 0 {
        bail!("{failed} upload(s) failed: see their reports");
    }
    Ok(())
}

/// Puts the sample into a local bucket as an upload, runs the same retraining job the `train`
/// function runs, answers a few questions, then (unless told not to) serves the model the way
/// the `predict` function does.
pub fn quickstart(args: &QuickstartArgs) -> Result<()> {
    let bucket = args.dir.join("bucket");
    let key = "data/questions.csv";
    let data_path = bucket.join(key);
    std::fs::create_dir_all(data_path.parent().unwrap_or(&bucket))?;
    std::fs::write(&data_path, SAMPLE_CSV)?;
    println!(
        "uploaded the sample questions to {} ({} bytes)",
        data_path.display(),
        SAMPLE_CSV.len()
    );
    run_job(&bucket, &[key.to_owned()])?;
    let models = bucket.join("models");
    let artifact = load_model(&models)?;
    if let Some(m) = &TrainingRecord::of(artifact.info()).metrics {
        println!("{}", safe_report(m).table(10));
    }
    println!("sample answers:");
    for q in [
        "How do I plot two lines with different y axes in the same figure?",
        "<p>My <code>df.groupby('city').mean()</code> drops the date column. How do I keep it?</p>",
        "ValueError: Input 0 of layer sequential is incompatible with the layer: expected ndim=3, found ndim=2",
    ] {
        let p = artifact.predict(q, &PredictOptions::default())?;
        println!("  {q}\n    -> {:?}", p.tags);
    }
    if args.no_serve {
        return Ok(());
    }
    println!(
        "\ntry: curl -s -X POST http://{}:{}/predict -H 'content-type: application/json' -d '{{\"question\": \"How do I merge two DataFrames on a column?\"}}'",
        args.host, args.port
    );
    crate::serve::run(&crate::serve::Serve::new(
        models.display().to_string(),
        &args.host,
        args.port,
    ))
}
