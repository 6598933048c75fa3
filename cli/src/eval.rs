//! `tagger eval`: one model's figures on a labelled file (P@k and R@k, the headline table, a
//! threshold sweep, the precision-recall plot), or two models side by side on exactly the same
//! rows (`--compare A B`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tagger_core::Predictor;
use tagger_train::dataset::{self, CsvOptions, Example, LoadReport};
use tagger_train::metrics::Report;
use tagger_train::pipeline::{self, TrainingRecord};

use crate::commands::{load_model, safe, safe_report};
use crate::{plot, EvalArgs};

/// One scored model.
struct Scored {
    path: String,
    version: String,
    report: Report,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    // TAGGER_MODEL stands in for --model only when no model is named at all, so that it never
    // clashes with --compare.
    let from_env = std::env::var_os("TAGGER_MODEL").map(PathBuf::from);
    let paths: Vec<&Path> = match (&args.model, args.compare.as_slice(), &from_env) {
        (Some(m), [], _) => vec![m.as_path()],
        (None, [a, b], _) => vec![a.as_path(), b.as_path()],
        (None, [], Some(m)) => vec![m.as_path()],
        _ => bail!("give --model MODEL (or set TAGGER_MODEL), or --compare A B"),
    };
    let models = paths
        .iter()
        .map(|p| load_model(p))
        .collect::<Result<Vec<Predictor>>>()?;
    // The first model's reading settings, then the flags: both models see the same rows.
    let csv = args.read.apply(
        TrainingRecord::of(models[0].info())
            .settings
            .map(|s| s.csv)
            .unwrap_or_default(),
    );
    let (examples, load, _) = dataset::read_path(&args.data, &csv)
        .with_context(|| format!("cannot use {}", args.data.display()))?;
    let scored: Vec<Scored> = models
        .iter()
        .zip(&paths)
        .map(|(m, p)| Scored {
            path: p.display().to_string(),
            version: m.info().version.clone(),
            report: pipeline::evaluate(m, &examples),
        })
        .collect();
    write_plots(args, &scored)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_of(&scored, &load))?
        );
        return Ok(());
    }
    print_load(&load, &examples);
    match scored.as_slice() {
        [one] => print!("{}", single_text(&one.report)),
        [a, b] => print!("{}", compare_text(a, b)),
        _ => {}
    }
    Ok(())
}

fn write_plots(args: &EvalArgs, scored: &[Scored]) -> Result<()> {
    if args.svg.is_none() && args.png.is_none() {
        return Ok(());
    }
    let curves: Vec<plot::PrCurve> = scored
        .iter()
        .map(|s| plot::PrCurve {
            name: if scored.len() == 1 {
                s.version.clone()
            } else {
                format!("{} ({})", s.version, s.path)
            },
            // A threshold no probability reaches predicts nothing: no precision to draw.
            points: s
                .report
                .pr_curve
                .iter()
                .filter(|p| p.tags_per_row > 0.0)
                .map(|p| (p.recall, p.precision))
                .collect(),
            served: (s.report.micro_recall, s.report.micro_precision),
        })
        .collect();
    let rows = scored.first().map_or(0, |s| s.report.examples);
    if let Some(path) = &args.svg {
        plot::write_pr_svg(&curves, rows, path)?;
    }
    if let Some(path) = &args.png {
        plot::write_pr_png(&curves, rows, path)?;
    }
    Ok(())
}

fn print_load(load: &LoadReport, examples: &[Example]) {
    println!("rows: {} scored", examples.len());
    if let Some(f) = &load.format {
        println!("read as: {}", safe(&f.to_string()));
    }
    for w in &load.warnings {
        println!("warning: {}", safe(w));
    }
    if !load.skipped.is_empty() {
        println!("skipped rows: {}", load.summary());
    }
}

/// P@k / R@k, the headline table and the threshold sweep of one model.
fn single_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n k   P@k     R@k");
    for (k, (p, rc)) in r.p_at_k.iter().zip(&r.r_at_k).enumerate() {
        let _ = writeln!(out, " {}   {p:.4}  {rc:.4}", k + 1);
    }
    let _ = writeln!(out, "\n{}", safe_report(r).table(20));
    out.push_str(&sweep_text(r));
    out
}

/// The sweep over global thresholds, then the served (per-tag) thresholds' row.
fn sweep_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "threshold  precision  recall  micro-F1  tags/row");
    let best = r
        .sweep
        .iter()
        .map(|p| p.f1)
        .fold(f64::NEG_INFINITY, f64::max);
    for p in &r.sweep {
        let _ = writeln!(
            out,
            "{:>9.2}  {:>9.4}  {:>6.4}  {:>8.4}  {:>8.2}{}",
            p.threshold,
            p.precision,
            p.recall,
            p.f1,
            p.tags_per_row,
            if p.f1 == best { "  <- best global" } else { "" }
        );
    }
    let predicted: u64 = r.per_tag.iter().map(|t| t.predicted).sum();
    let _ = writeln!(
        out,
        "{:>9}  {:>9.4}  {:>6.4}  {:>8.4}  {:>8.2}",
        "served",
        r.micro_precision,
        r.micro_recall,
        r.micro_f1,
        predicted as f64 / r.examples.max(1) as f64
    );
    out
}

/// The figures compared, by name.
fn figures(r: &Report) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (k, p) in r.p_at_k.iter().enumerate() {
        out.push((format!("P@{}", k + 1), *p));
    }
    for (k, x) in r.r_at_k.iter().enumerate() {
        out.push((format!("R@{}", k + 1), *x));
    }
    out.extend([
        ("micro precision".to_owned(), r.micro_precision),
        ("micro recall".to_owned(), r.micro_recall),
        ("micro-F1".to_owned(), r.micro_f1),
        ("macro-F1".to_owned(), r.macro_f1),
        ("exact match".to_owned(), r.exact_match),
        (
            "best global micro-F1".to_owned(),
            r.sweep.iter().map(|p| p.f1).fold(0.0, f64::max),
        ),
    ]);
    out
}

/// (name, A's, B's) for the figures both reports have.
fn paired(a: &Report, b: &Report) -> Vec<(String, f64, f64)> {
    let b = figures(b);
    figures(a)
        .into_iter()
        .filter_map(|(name, x)| {
            let y = b.iter().find(|(n, _)| *n == name)?.1;
            Some((name, x, y))
        })
        .collect()
}

fn compare_text(a: &Scored, b: &Scored) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {} ({})", safe(&a.version), safe(&a.path));
    let _ = writeln!(out, "B: {} ({})", safe(&b.version), safe(&b.path));
    let _ = writeln!(
        out,
        "\n{:<22}  {:>8}  {:>8}  {:>8}",
        "figure", "A", "B", "B - A"
    );
    for (name, x, y) in paired(&a.report, &b.report) {
        let _ = writeln!(out, "{name:<22}  {x:>8.4}  {y:>8.4}  {:>+8.4}", y - x);
    }
    let _ = writeln!(out, "\nA's threshold sweep:\n{}", sweep_text(&a.report));
    let _ = writeln!(out, "B's threshold sweep:\n{}", sweep_text(&b.report));
    out
}

fn json_of(scored: &[Scored], load: &LoadReport) -> serde_json::Value {
    let model = |s: &Scored| json!({ "model": s.path, "version": s.version, "metrics": s.report });
    match scored {
        [a, b] => {
            let difference: serde_json::Map<String, serde_json::Value> =
                paired(&a.report, &b.report)
                    .into_iter()
                    .map(|(name, x, y)| (name, json!(y - x)))
                    .collect();
            json!({
                "load": load,
                "rows": a.report.examples,
                "a": model(a),
                "b": model(b),
                "difference": difference,
            })
        }
        [one, ..] => json!({ "load": load, "version": one.version, "metrics": one.report }),
        [] => json!({ "load": load }),
    }
}

/// Reading flags for the evaluated file, over the model's own reading settings.
#[derive(clap::Args, Debug, Default)]
pub struct ReadArgs {
    /// How tag cells list tags (default: as the model was trained, which detects it).
    #[arg(long, value_enum)]
    pub tag_format: Option<dataset::TagFormat>,
    /// Field delimiter (default: detected).
    #[arg(long, value_enum)]
    pub delimiter: Option<dataset::Delimiter>,
    /// The file has no header row (its columns: --columns, else tags,text).
    #[arg(long)]
    pub no_header: bool,
    /// Which column is which: `tags,text` in file order, or `tags=2,text=1`.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
}

impl ReadArgs {
    fn apply(&self, mut csv: CsvOptions) -> CsvOptions {
        if let Some(f) = self.tag_format {
            csv.tag_format = f;
            csv.tag_separator = ',';
        }
        if let Some(d) = self.delimiter {
            csv.delimiter = d;
        }
        if self.no_header {
            csv.no_header = true;
        }
        if let Some(c) = &self.columns {
            csv.columns = c.clone();
        }
        csv
    }
}
