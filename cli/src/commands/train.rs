//! Training a CSV into a local models folder, and the quickstart that does it through the job.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tagger_core::predictor::PredictOptions;
use tagger_registry::registry::{Pointer, ReferenceSet, Registry, MAX_REFERENCE_ROWS};
use tagger_registry::store::LocalStore;
use tagger_train::config::Settings;
use tagger_train::dataset;
use tagger_train::pipeline::{self, TestData, TrainData, Trained, TrainingRecord};
use tagger_train::teacher::Teacher;
use tagger_train::train::EpochStats;

use super::{load_model, run_job, runtime, safe, safe_report, settings_from, SAMPLE_CSV};
use crate::{QuickstartArgs, TrainArgs};

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
    teacher: Option<&Teacher>,
    settings: &Settings,
    out: &Path,
    quiet: bool,
) -> Result<(Trained, Pointer)> {
    let bar = progress_bar(settings.train.epochs, quiet);
    let trained = pipeline::train_taught(
        data,
        test,
        teacher,
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
            true
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
    // A path, or a Kaggle StackSample folder / Questions.csv (joined with its Tags.csv).
    let (examples, load, sha256) = dataset::read_path(&args.data, &settings.csv)
        .with_context(|| format!("cannot use {}", args.data.display()))?;
    let data = TrainData {
        examples,
        load,
        source: args.data.display().to_string(),
        sha256,
    };
    let test = match &args.test {
        Some(path) => {
            let (examples, load, _) = dataset::read_path(path, &settings.csv)
                .with_context(|| format!("cannot use {}", path.display()))?;
            Some(TestData { examples, load })
        }
        None => None,
    };
    if args.teacher.is_some() && settings.train.distill == 0.0 {
        anyhow::bail!("--teacher needs --distill (the weight of its probabilities, in (0, 1])");
    }
    let teacher = match &args.teacher {
        Some(path) => Some(
            Teacher::from_path(path).with_context(|| format!("cannot use {}", path.display()))?,
        ),
        None => None,
    };
    let (trained, pointer) = train_and_publish(
        data,
        test,
        teacher.as_ref(),
        &settings,
        &args.out,
        args.quiet || args.json,
    )?;
    let teacher_warning = teacher
        .as_ref()
        .and_then(|t| t.held_out_warning(trained.test_examples.iter().map(|e| e.text.as_str())));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&trained.report)?);
        // stdout stays one JSON document.
        if let Some(w) = &teacher_warning {
            eprintln!("warning: {}", safe(w));
        }
        return Ok(());
    }
    print_run(&trained, &pointer, &args.out);
    if let Some(w) = &teacher_warning {
        println!("warning: {}", safe(w));
    }
    Ok(())
}

fn print_run(trained: &Trained, pointer: &Pointer, out: &Path) {
    let r = &trained.report;
    println!(
        "rows: {} train, {} validation, {} test; {} tags; {} features",
        r.rows.train, r.rows.validation, r.rows.test, r.labels, r.features
    );
    if let Some(format) = &r.train_load.format {
        println!("read as: {}", safe(&format.to_string()));
    }
    for warning in &r.train_load.warnings {
        println!("warning: {}", safe(warning));
    }
    if let Some(test) = &r.test_load {
        if let Some(format) = test
            .format
            .as_ref()
            .filter(|_| test.format != r.train_load.format)
        {
            println!("test read as: {}", safe(&format.to_string()));
        }
        for warning in &test.warnings {
            println!("warning (test file): {}", safe(warning));
        }
    }
    if !r.train_load.skipped.is_empty() {
        println!("skipped rows: {}", r.train_load.summary());
    }
    if r.untrained_tags > 0 {
        println!(
            "tags on fewer than {} training rows: {} of {} (no output unit trained; never \
             predicted, counted in the metrics)",
            r.settings.train.min_tag_rows, r.untrained_tags, r.labels
        );
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
