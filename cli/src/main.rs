//! `tagger`: the whole job on one machine, with a local folder in place of the bucket.
//!
//! `tagger quickstart` trains on the embedded sample questions and serves them; `train`, `eval`,
//! `predict`, `explain`, `info`, `serve` and `bench` do one step each; `models` manages published
//! versions. Models live in a folder laid out like the bucket's `models/` prefix
//! (`<version>/model.bin`, `latest.json`), or for `serve` and `models` in `s3://bucket/prefix`.

// Training's multi-megabyte buffers come and go every epoch; glibc's malloc returns them to the
// kernel and faults them back in (benchmarks/quality.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod commands;
mod eval;
mod explain;
mod plot;
mod serve;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tagger_train::config::Overrides;

#[derive(Parser, Debug)]
#[command(
    name = "tagger",
    version,
    about = "Stack Overflow tag prediction: train, evaluate, predict, explain, serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train on a CSV (`tags,text`) and publish the model into a folder.
    Train(Box<TrainArgs>),
    /// Score a published model on a labelled CSV.
    Eval(EvalArgs),
    /// Predict tags for questions given as arguments or one per stdin line.
    Predict(PredictArgs),
    /// Which words drove each predicted tag (DeepSHAP), or a summary over a CSV.
    Explain(ExplainArgs),
    /// Describe a published model: version, labels, thresholds, metrics.
    Info(InfoArgs),
    /// Serve the prediction API (the same handler as the Lambda function) over HTTP.
    Serve(ServeArgs),
    /// List, show, promote, roll back and compare published versions (a folder or s3://).
    Models(commands::models::ModelsArgs),
    /// Run uploads through the retraining job (as the `train` function does) with a local folder as the bucket.
    Job(JobArgs),
    /// Measure training and prediction speed on the real datasets.
    Bench(bench::BenchArgs),
    /// Train on the embedded sample questions, evaluate, answer a few questions, then serve.
    Quickstart(QuickstartArgs),
}

/// The training settings: every field of [`Overrides`] is a flag (`batch_size` is
/// `--batch-size`), the same names as the sidecar's keys and the train function's `TRAIN_*`
/// variables.
#[derive(Args, Debug)]
pub struct TrainSettingsArgs {
    /// A JSON file of settings (the format of a bucket sidecar `data/<name>.json`; its `force`
    /// is the retraining job's and is ignored here). Flags override it.
    #[arg(long)]
    settings: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training CSV.
    #[arg(long)]
    data: PathBuf,
    /// Separate test CSV (otherwise a seeded 20% of the training rows is held out).
    #[arg(long)]
    test: Option<PathBuf>,
    /// A teacher's probabilities (CSV `text,teacher`, `teacher` = `tag=p;tag=p`, e.g. from
    /// benchmarks/minilm/reference.py) for knowledge distillation; used with `--distill`.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Model folder to publish into (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    settings: TrainSettingsArgs,
    /// Print the run report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model folder (with latest.json) or a model.bin file [env: TAGGER_MODEL when neither this nor
    /// --compare is given].
    #[arg(long, conflicts_with = "compare")]
    model: Option<PathBuf>,
    /// Score two models (folders or model.bin files) on exactly the same rows, side by side
    /// with the difference B - A.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    compare: Vec<PathBuf>,
    /// Labelled questions: a CSV / TSV, or a Kaggle StackSample folder or Questions.csv.
    #[arg(long)]
    data: PathBuf,
    /// Print the figures as JSON (the `metrics.json` report's `metrics`).
    #[arg(long)]
    json: bool,
    /// Write the precision-recall curve (global thresholds 0.01 to 0.99) as SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write the precision-recall curve as PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    #[command(flatten)]
    read: eval::ReadArgs,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Model folder (holding latest.json) or a model.bin file.
    #[arg(long, env = "TAGGER_MODEL")]
    model: PathBuf,
    /// Questions; when none are given, one question per stdin line (one answer line each).
    text: Vec<String>,
    /// One JSON object per question, with its line number.
    #[arg(long)]
    json: bool,
    /// Include every tag's probability.
    #[arg(long)]
    scores: bool,
    /// Override every tag's threshold: a number in [0, 1], as the API's `threshold`.
    #[arg(long, value_parser = parse_threshold)]
    threshold: Option<f32>,
    /// At most this many tags per question (1 or more), as the API's `top_k`.
    #[arg(long, value_parser = parse_top_k)]
    top_k: Option<u64>,
}

/// The API's top_k rule: a whole number >= 1.
fn parse_top_k(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(0) => Err("top_k must be >= 1, got 0".into()),
        Ok(k) => Ok(k),
        Err(_) => Err(format!("top_k must be a whole number >= 1, got {raw:?}")),
    }
}

/// The API's threshold rule: a number in [0, 1].
fn parse_threshold(raw: &str) -> Result<f32, String> {
    match raw.trim().parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t as f32),
        Ok(t) => Err(format!("threshold must be in [0, 1], got {t}")),
        Err(_) => Err(format!("threshold must be a number in [0, 1], got {raw:?}")),
    }
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Model folder (holding latest.json) or a model.bin file.
    #[arg(long, env = "TAGGER_MODEL")]
    model: PathBuf,
    /// Questions to explain.
    text: Vec<String>,
    /// Print the explanations (or the summary) as JSON.
    #[arg(long)]
    json: bool,
    /// Write the question(s) with coloured words as HTML.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Words per direction and tag.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Rank every vocabulary word, not only those present in the question (the origin's view).
    #[arg(long)]
    all_words: bool,
    /// Summarise mean |attribution| per word and tag over a CSV instead.
    #[arg(long)]
    summary: bool,
    /// Labelled CSV whose questions the summary averages over.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Questions sampled from --data for the summary.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    /// Draw the summary as an SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Draw the summary as a PNG file.
    #[arg(long)]
    png: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model folder (holding latest.json) or a model.bin file.
    #[arg(long, env = "TAGGER_MODEL")]
    model: PathBuf,
    /// Print the model's summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Models folder holding latest.json (a path or file:// URI; it must exist), or
    /// s3://bucket/prefix (credentials, region and endpoint from the AWS environment).
    #[arg(long, env = "TAGGER_MODEL")]
    model: String,
    /// Serve only this version and never reload (as MODEL_VERSION does for the function).
    #[arg(long, value_name = "VERSION")]
    model_version: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Let pages from this origin call the API (CORS); repeat for several, `*` for any.
    /// Default: none (same-origin pages only). Overrides CORS_ALLOW_ORIGINS.
    #[arg(long = "cors", value_name = "ORIGIN")]
    cors: Vec<String>,
    /// Most connections open at once; more wait in the kernel's backlog.
    #[arg(long, default_value_t = serve::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds a connection may take to send a request head (and may stay idle between
    /// requests) before it is closed.
    #[arg(long, default_value_t = serve::DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,
}

impl ServeArgs {
    fn serve(&self) -> serve::Serve {
        serve::Serve {
            cors: self.cors.clone(),
            max_connections: self.max_connections,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            model_version: self.model_version.clone(),
            ..serve::Serve::new(&self.model, &self.host, self.port)
        }
    }
}

#[derive(Args, Debug)]
pub struct JobArgs {
    /// The local folder standing in for the bucket (`data/`, `models/`, `reports/`).
    #[arg(long)]
    bucket: PathBuf,
    /// Upload keys such as `data/questions.csv` (default: every CSV under `data/`). A sidecar
    /// `data/<name>.json` holds per-dataset settings.
    keys: Vec<String>,
}

#[derive(Args, Debug)]
pub struct QuickstartArgs {
    /// Working folder (the local "bucket" goes in `<dir>/bucket`).
    #[arg(long, default_value = "target/tagger-quickstart")]
    dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to serve on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Stop after training and the sample answers.
    #[arg(long)]
    no_serve: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A server's access log (one line per request) is worth seeing by default.
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Quickstart(_) => "warn,predict=info",
        _ => "warn",
    };
    tagger_telemetry::init(default_filter);
    let result = match cli.command {
        Command::Train(a) => commands::train(&a),
        Command::Eval(a) => commands::eval(&a),
        Command::Predict(a) => commands::predict(&a),
        Command::Explain(a) => commands::explain(&a),
        Command::Info(a) => commands::info(&a),
        Command::Serve(a) => serve::run(&a.serve()),
        Command::Models(a) => commands::models(&a),
        Command::Job(a) => commands::job(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Quickstart(a) => commands::quickstart(&a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output went away (`| head -1`): nothing is wrong.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // Line by line: the messages' own line breaks stay, anything else is escaped.
            let message = format!("{e:#}");
            let lines: Vec<_> = message.lines().map(commands::safe).collect();
            eprintln!("error: {}", lines.join("\n"));
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no description",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "tagger", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    /// Choices are enumerated values, so `--help` and a wrong value list them.
    #[test]
    fn choices_are_enumerated_values() {
        let cli = super::Cli::command();
        let train = cli.find_subcommand("train").unwrap();
        for (flag, value) in [
            ("preset", "seed"),
            ("thresholds", "per-tag"),
            ("background_mode", "first"),
        ] {
            let arg = train
                .get_arguments()
                .find(|a| a.get_id() == flag)
                .unwrap_or_else(|| panic!("train --{flag}"));
            let names: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            assert!(names.iter().any(|n| n == value), "--{flag}: {names:?}");
        }
    }

    #[test]
    fn threshold_and_top_k_follow_the_api_rules() {
        assert_eq!(super::parse_threshold("0.5"), Ok(0.5));
        assert_eq!(super::parse_threshold("1"), Ok(1.0));
        assert!(super::parse_threshold("5").unwrap_err().contains("[0, 1]"));
        assert!(super::parse_threshold("NaN").is_err());
        assert_eq!(super::parse_top_k("3"), Ok(3));
        assert!(super::parse_top_k("0").unwrap_err().contains(">= 1"));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
