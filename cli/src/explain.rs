//! `tagger explain`: which words drove each predicted tag, in the terminal, as JSON or HTML, and
//! a per-tag summary over a CSV drawn like shap's summary plot.

use anyhow::{bail, Context, Result};
use tagger_core::explain::{self, TagExplanation, WordOptions};
use tagger_core::predictor::PredictOptions;
use tagger_core::sparse::SparseRows;
use tagger_core::Predictor;
use tagger_train::dataset;
use tagger_train::pipeline::TrainingRecord;

use crate::commands::{load_model, safe};
use crate::plot;
use crate::ExplainArgs;

/// Tags the summary covers by default: the most frequent in training (explaining every output
/// of a 700-tag model over hundreds of questions is slow and unreadable).
const SUMMARY_TAGS: usize = 10;

pub fn run(args: &ExplainArgs) -> Result<()> {
    let artifact = load_model(&args.model)?;
    if args.summary {
        return summary(args, &artifact);
    }
    if args.text.is_empty() {
        bail!("give one or more questions to explain (or --summary --data CSV)");
    }
    let opts = WordOptions {
        k: args.top,
        present_only: !args.all_words,
    };
    // Shaded words only where colour shows: a terminal, and not under NO_COLOR; elsewhere the
    // words and their values above say the same.
    let colour = anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let mut html = String::new();
    let mut json = Vec::new();
    for question in &args.text {
        let prediction = artifact.predict(
            question,
            &PredictOptions {
                top_k: None,
                threshold: None,
                scores: true,
            },
        )?;
        // With no confident tag, explain the most probable one so the answer still says why.
        let (tags, confident) = if prediction.tags.is_empty() {
            let best = prediction.scores.as_ref().and_then(|s| {
                s.iter()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(t, _)| t.clone())
            });
            (best.into_iter().collect::<Vec<_>>(), false)
        } else {
            (prediction.tags.clone(), true)
        };
        let explained = artifact.explain(question, &tags, &opts)?;
        if args.json {
            json.push(serde_json::json!({
                "question": question,
                "tags": prediction.tags,
                "explanations": explain::explanations_json(&explained.tags),
            }));
        } else {
            println!("{}", safe(question));
            if !confident {
                println!("  no confident tag; explaining the most probable one");
            }
            for (tag, tokens) in explained.tags.iter().zip(&explained.tokens) {
                print_tag(tag);
                if colour {
                    println!("    {}", plot::ansi_question(tokens));
                }
            }
            println!();
        }
        for (tag, tokens) in explained.tags.iter().zip(&explained.tokens) {
            html.push_str(&format!(
                "<h3>{} <small>p={:.2}, base {:.2}</small></h3>\n<p>{}</p>\n",
                html_escape::encode_text(&tag.tag),
                tag.probability,
                tag.expected_value,
                plot::html_question(tokens)
            ));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    if let Some(path) = &args.html {
        let page = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>tagger explanations</title>\n<body style=\"font-family:sans-serif;max-width:60em\">\n<p>Red words pushed the tag up, blue words pushed it down (DeepSHAP).</p>\n{html}</body>\n"
        );
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_tag(t: &TagExplanation) {
    let words = |ws: &[explain::WordAttribution]| {
        ws.iter()
            .map(|w| format!("{} {:+.3}", safe(&w.word), w.value))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "  {} (probability {:.3}, base {:.3})",
        safe(&t.tag),
        t.probability,
        t.expected_value
    );
    println!(
        "    + {}",
        if t.positive.is_empty() {
            "(none)".into()
        } else {
            words(&t.positive)
        }
    );
    println!(
        "    - {}",
        if t.negative.is_empty() {
            "(none)".into()
        } else {
            words(&t.negative)
        }
    );
}

fn summary(args: &ExplainArgs, artifact: &Predictor) -> Result<()> {
    let path = args
        .data
        .as_ref()
        .context("--summary needs --data CSV (questions to average over)")?;
    let csv = TrainingRecord::of(artifact.info())
        .settings
        .map(|s| s.csv)
        .unwrap_or_default();
    let (examples, _) = dataset::read_csv_path(path, &csv)
        .with_context(|| format!("cannot use {}", path.display()))?;
    // Evenly spaced rows: deterministic, and not just the head of a sorted file.
    let step = (examples.len() / args.sample.max(1)).max(1);
    let mut rows = SparseRows::new();
    for e in examples.iter().step_by(step).take(args.sample) {
        if let Ok(features) = artifact.features(&e.text) {
            rows.push_row(&features);
        }
    }
    let labels = artifact.labels();
    let mut by_count: Vec<usize> = (0..labels.len()).collect();
    by_count.sort_by_key(|&i| std::cmp::Reverse(labels.counts().get(i).copied().unwrap_or(0)));
    by_count.truncate(SUMMARY_TAGS);
    let summary = explain::summary(
        artifact.explainer()?,
        &rows,
        &by_count,
        |o| labels.name(o).to_owned(),
        |f| artifact.tokenizer().feature_name(f).map(str::to_owned),
        20,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "mean |attribution| over {} questions, top words per tag:",
            summary.questions
        );
        for t in &summary.per_tag {
            let words: Vec<String> = t
                .words
                .iter()
                .take(8)
                .map(|w| format!("{} {:.3}", safe(&w.word), w.value))
                .collect();
            println!("  {:<24} {}", safe(&t.tag), words.join(", "));
        }
    }
    if let Some(svg) = &args.svg {
        plot::write_summary_svg(&summary, svg)?;
        eprintln!("wrote {}", svg.display());
    }
    if let Some(png) = &args.png {
        plot::write_summary_png(&summary, png)?;
        eprintln!("wrote {}", png.display());
    }
    Ok(())
}
