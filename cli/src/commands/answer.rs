//! Answering questions with a trained model: predictions, evaluation on a CSV, model details.

use std::io::BufRead;

use anyhow::{bail, Result};
use tagger_core::predictor::PredictOptions;

use super::{load_model, safe};
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
        top_k: args.top_k.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        scores: args.scores,
    };
    let mut failures = 0usize;
    // One answer line per input line, blank lines included, so answers line up with questions.
    for (n, question) in questions(&args.text).enumerate() {
        let question = question?;
        let line = n + 1;
        let answer = match artifact.predict(&question, &opts) {
            Ok(p) => Ok(p),
            // A blank line, or one with nothing the model reads: no tags, not a failure.
            Err(tagger_core::Error::EmptyQuestion) => Ok(tagger_core::predictor::Prediction {
                tags: Vec::new(),
                probabilities: Vec::new(),
                scores: None,
            }),
            Err(e) => Err(e),
        };
        match answer {
            Ok(p) if args.json => {
                let mut v = serde_json::to_value(&p)?;
                v["line"] = serde_json::json!(line);
                super::outln!("{v}")?;
            }
            Ok(p) => {
                let tags: Vec<String> = p
                    .tags
                    .iter()
                    .zip(&p.probabilities)
                    .map(|(t, pr)| format!("{} ({pr:.2})", safe(t)))
                    .collect();
                if tags.is_empty() && question.trim().is_empty() {
                    super::outln!()?;
                } else if tags.is_empty() {
                    super::outln!("(no confident tag)")?;
                } else {
                    super::outln!("{}", tags.join(", "))?;
                }
                if let Some(scores) = &p.scores {
                    let mut all: Vec<_> = scores.iter().collect();
                    all.sort_by(|a, b| b.1.total_cmp(a.1));
                    for (tag, s) in all.iter().take(10) {
                        super::outln!("    {:<24} {s:.3}", safe(tag))?;
                    }
                }
            }
            Err(e) => {
                failures += 1;
                if args.json {
                    super::outln!(
                        "{}",
                        serde_json::json!({ "error": e.to_string(), "line": line })
                    )?;
                } else {
                    super::outln!()?;
                    eprintln!("question {line}: {}", safe(&e.to_string()));
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
    if args.json {
        super::outln!("{}", serde_json::to_string_pretty(&model.summary())?)?;
        return Ok(());
    }
    super::describe::print_model(&model)?;
    Ok(())
}
