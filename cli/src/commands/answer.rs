//! Answering questions with a trained model: predictions, evaluation on a CSV, model details.

use std::io::BufRead;

use anyhow::{bail, Result};
use tagger_core::predictor::PredictOptions;
use tagger_train::pipeline::TrainingRecord;

use super::{load_model, safe, safe_report};
use crate::{EvalArgs, ExplainArgs, InfoArgs, PredictArgs};

pub fn eval(args: &EvalArgs) -> Result<()> {
    crate::eval::run(args)
}

fn questions(args_text: &[String]) -> Box<dyn Iterator<Item = std::io::Result<String>> + '_> {
    if args_text.is_empty() {
        Box::new(std::io::BufReader::new(std::io::stdin()).lines())
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
