//! `tagger bench`: speed and memory figures on the real datasets, printed with a baseline.
//!
//! The machine is shared and noisy, so every timing is also given as a multiple of a fixed
//! calibration workload run in the same process (`× base`): compare those across runs.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tagger_core::predictor::PredictOptions;
use tagger_core::Predictor;
use tagger_train::config::Settings;
use tagger_train::dataset;
use tagger_train::pipeline::{self, TestData, TrainData};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder holding the canonical datasets (`<name>/train.csv`, `<name>/test.csv`).
    #[arg(long, default_value = "../shared/data")]
    data_dir: PathBuf,
    /// Datasets to train on, comma-separated; `none` (or an empty value) trains on none, e.g.
    /// with `--scale` alone.
    #[arg(long, value_delimiter = ',', default_value = "so-titles,cooking")]
    datasets: Vec<String>,
    /// The large CSV made by `../shared/tools/make-scale-csv` (trained with a 20% test hold-out).
    #[arg(long)]
    scale: Option<PathBuf>,
    /// Skip the single-question and batch prediction figures.
    #[arg(long)]
    no_predict: bool,
    /// Repetitions for the training figures (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// Seconds for a fixed, dependency-free workload (a float recurrence the optimiser cannot skip).
fn baseline() -> f64 {
    let run = || {
        let t = Instant::now();
        let mut acc = [0.0f32; 8];
        for i in 0..40_000_000u32 {
            let k = (i & 7) as usize;
            acc[k] = acc[k].mul_add(0.999_9, (i & 255) as f32);
        }
        black_box(acc);
        t.elapsed().as_secs_f64()
    };
    median(&mut (0..3).map(|_| run()).collect::<Vec<_>>())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident set size of this process so far, from /proc (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn fmt_time(secs: f64, base: f64) -> String {
    let t = if secs < 1e-3 {
        format!("{:.2} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    };
    format!("{t} ({:.3} × base)", secs / base)
}

/// The dataset names to train on: blanks dropped, `none` means no dataset.
fn dataset_names(raw: &[String]) -> Vec<&str> {
    raw.iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("none"))
        .collect()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let datasets = dataset_names(&args.datasets);
    if datasets.is_empty() && args.scale.is_none() {
        anyhow::bail!("nothing to measure: name datasets with --datasets or a CSV with --scale");
    }
    let base = baseline();
    println!(
        "baseline workload: {:.1} ms (all figures also as multiples of it)",
        base * 1e3
    );
    let settings = Settings::default();
    let mut last_model: Option<(String, Predictor, Vec<String>)> = None;
    for &name in &datasets {
        let dir = args.data_dir.join(name);
        let (train_path, test_path) = (dir.join("train.csv"), dir.join("test.csv"));
        if let Some(missing) = [&train_path, &test_path].into_iter().find(|p| !p.exists()) {
            println!("{name}: skipped ({} not found)", missing.display());
            continue;
        }
        let mut times = Vec::new();
        let mut fit_times = Vec::new();
        let mut trained = None;
        for _ in 0..args.repeat.max(1) {
            let t = Instant::now();
            let (data, test) = load_pair(&train_path, &test_path, &settings)?;
            let run = pipeline::train(
                data,
                Some(test),
                &settings,
                "1970-01-01T00:00:00Z",
                &mut |_| {},
            )?;
            times.push(t.elapsed().as_secs_f64());
            fit_times.push(run.report.timings.fit_seconds);
            trained = Some(run);
        }
        let Some(run) = trained else { continue };
        println!(
            "{name}: train wall (read CSV + prepare + fit + calibrate + evaluate), median of {}: {}",
            times.len(),
            fmt_time(median(&mut times), base),
        );
        println!(
            "  fit alone {}; {}; {} test rows, {} tags, {} features, {} epochs",
            fmt_time(median(&mut fit_times), base),
            metrics_line(run.report.metrics.as_ref()),
            run.report.rows.test,
            run.report.labels,
            run.report.features,
            run.report.history.len(),
        );
        let texts = run.test_examples.iter().map(|e| e.text.clone()).collect();
        last_model = Some((name.to_owned(), Predictor::new(run.artifact), texts));
    }
    if !args.no_predict {
        match &last_model {
            Some((name, artifact, texts)) => predict_figures(name, artifact, texts, base)?,
            None => println!("predict figures: skipped (no dataset was trained)"),
        }
    }
    if let Some(scale) = &args.scale {
        let t = Instant::now();
        let (examples, load, sha256) = dataset::read_path(scale, &settings.csv)
            .with_context(|| format!("cannot read {}", scale.display()))?;
        let read = t.elapsed().as_secs_f64();
        let data = TrainData {
            examples,
            load,
            source: scale.display().to_string(),
            sha256,
        };
        let run = pipeline::train(data, None, &settings, "1970-01-01T00:00:00Z", &mut |_| {})?;
        let total = t.elapsed().as_secs_f64();
        let rows = &run.report.rows;
        println!(
            "scale ({} rows: {} train, {} validation, {} test; {} tags, {} features): end to end {}",
            rows.train + rows.validation + rows.test,
            rows.train,
            rows.validation,
            rows.test,
            run.report.labels,
            run.report.features,
            fmt_time(total, base),
        );
        println!(
            "  read + hash CSV {}; fit {}; {}",
            fmt_time(read, base),
            fmt_time(run.report.timings.fit_seconds, base),
            metrics_line(run.report.metrics.as_ref()),
        );
        // VmHWM is per process: it includes any dataset trained above.
        match peak_rss_mib() {
            Some(mib) if datasets.is_empty() => println!("  peak RSS {mib:.0} MiB"),
            Some(mib) => {
                println!("  peak RSS of the whole run (datasets above included) {mib:.0} MiB")
            }
            None => println!("  peak RSS unavailable (no /proc/self/status)"),
        }
    }
    Ok(())
}

/// Test-set quality, or why there is none.
fn metrics_line(m: Option<&tagger_train::metrics::Report>) -> String {
    match m {
        Some(m) => format!(
            "P@1 {:.3} micro-F1 {:.3} macro-F1 {:.3}",
            m.p_at_1, m.micro_f1, m.macro_f1
        ),
        None => "no test metrics (no test rows)".to_owned(),
    }
}

fn load_pair(train: &Path, test: &Path, settings: &Settings) -> Result<(TrainData, TestData)> {
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (examples, load, sha256) = dataset::read_path(train, &settings.csv)
        .with_context(|| format!("cannot read {}", train.display()))?;
    let (test_examples, test_load) = dataset::read_csv(open(test)?, &settings.csv)
        .with_context(|| format!("cannot read {}", test.display()))?;
    Ok((
        TrainData {
            examples,
            load,
            source: train.display().to_string(),
            sha256,
        },
        TestData {
            examples: test_examples,
            load: test_load,
        },
    ))
}

fn predict_figures(name: &str, artifact: &Predictor, texts: &[String], base: f64) -> Result<()> {
    let opts = PredictOptions::default();
    let title = texts
        .first()
        .cloned()
        .unwrap_or_else(|| "How do I parse JSON in Python?".into());
    let mut long = String::new();
    for t in texts.iter().cycle().take(200) {
        if long.len() >= 1024 {
            break;
        }
        long.push_str(t);
        long.push(' ');
    }
    let time_one = |q: &str| -> Result<f64> {
        let mut samples = Vec::with_capacity(101);
        for _ in 0..101 {
            let t = Instant::now();
            let reps = 200;
            for _ in 0..reps {
                black_box(artifact.predict(black_box(q), &opts)?);
            }
            samples.push(t.elapsed().as_secs_f64() / reps as f64);
        }
        Ok(median(&mut samples))
    };
    println!("predict ({name} model), single question, normalise + tokenize + forward + thresholds, median:");
    println!(
        "  title ({} bytes): {}",
        title.len(),
        fmt_time(time_one(&title)?, base)
    );
    println!(
        "  question ({} bytes): {}",
        long.len(),
        fmt_time(time_one(&long)?, base)
    );
    let t = Instant::now();
    let mut n = 0usize;
    // Every test question, as a client would send them; the few that are empty once normalised
    // (all punctuation, say) are answered with an error, which is part of the work too.
    for q in texts {
        let _ = black_box(artifact.predict(q, &opts));
        n += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  batch: {n} questions in {} = {:.0} questions/s",
        fmt_time(secs, base),
        n as f64 / secs
    );
    Ok(())
}
