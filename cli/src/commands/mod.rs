//! The one-step commands. Each reads its inputs, calls the library, and prints a table or JSON.

mod answer;
pub mod describe;
mod job;
pub mod models;
mod train;

pub use answer::{eval, explain, info, predict};
pub use job::{job, run_job};
pub use models::models;
pub use train::{quickstart, train};

use std::path::Path;

use anyhow::{bail, Context, Result};
use tagger_core::artifact::Artifact;
use tagger_core::Predictor;
use tagger_registry::registry::Registry;
use tagger_registry::store::LocalStore;
use tagger_train::config::{Overrides, Settings, Sidecar};

use crate::TrainSettingsArgs;

/// `println!` that returns the write's error instead of panicking, so a reader that stops early
/// (`tagger predict ... | head -1`) ends the command quietly (see `main`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}
pub(crate) use outln;

/// The sample questions `quickstart` trains on (written for this project; see assets/README.md).
pub const SAMPLE_CSV: &str = include_str!("../../assets/questions.csv");

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

/// A model folder (with `latest.json`) or a `model.bin` file, ready to answer.
pub fn load_model(path: &Path) -> Result<Predictor> {
    load_artifact(path).map(Predictor::new)
}

/// The artifact in a model folder (with `latest.json`) or a `model.bin` file.
pub fn load_artifact(path: &Path) -> Result<Artifact> {
    if path.is_file() {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        // latest.json / previous.json: a pointer to a model, not one.
        if bytes.trim_ascii_start().starts_with(b"{") {
            bail!(
                "{} is a JSON file (a model pointer such as latest.json?), not a model: pass the \
                 folder that holds latest.json ({}) or a model.bin file",
                path.display(),
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or(".".into(), |p| p.display().to_string())
            );
        }
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
