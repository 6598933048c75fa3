//! `tagger`: the whole job on one machine, with a local folder in place of the bucket.
//!
//! `tagger quickstart` trains on the embedded sample questions and serves them; `train`, `eval`,
//! `predict`, `explain`, `info`, `serve` and `bench` do one step each. Models live in a folder laid
//! out like the bucket's `models/` prefix (`<version>/model.bin`, `latest.json`).

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
    /// Model folder (with latest.json) or a model.bin file.
    #[arg(long, required_unless_present = "compare", conflicts_with = "compare")]
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
    #[arg(long)]
    model: PathBuf,
    /// Questions; when none are given, one question per stdin line.
    text: Vec<String>,
    /// One JSON object per question.
    #[arg(long)]
    json: bool,
    /// Include every tag's probability.
    #[arg(long)]
    scores: bool,
    /// Override every tag's threshold.
    #[arg(long)]
    threshold: Option<f32>,
    #[arg(long)]
    top_k: Option<usize>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long)]
    model: PathBuf,
    text: Vec<String>,
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
    #[arg(long)]
    data: Option<PathBuf>,
    /// Questions sampled from --data for the summary.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    #[arg(long)]
    svg: Option<PathBuf>,
    #[arg(long)]
    png: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model folder (file path or file:// URI) holding latest.json; it must exist.
    #[arg(long)]
    model: String,
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
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
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
        Command::Job(a) => commands::job(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Quickstart(a) => commands::quickstart(&a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Line by line: the messages' own line breaks stay, anything else is escaped.
            let message = format!("{e:#}");
            let lines: Vec<_> = message.lines().map(commands::safe).collect();
            eprintln!("error: {}", lines.join("\n"));
            std::process::ExitCode::FAILURE
        }
    }
}
