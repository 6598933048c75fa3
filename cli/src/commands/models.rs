//! `tagger models`: the published versions in a models folder or `s3://bucket/prefix`, through
//! the same registry code as the retraining job: `latest.json` moves only by a conditional write
//! against the pointer that was read, the old pointer is kept as `previous.json`, and a version
//! is fully loaded before it may become live.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tagger_core::artifact::Artifact;
use tagger_core::Predictor;
use tagger_registry::registry::{Pointer, Registry};
use tagger_registry::store::{Location, ObjectStore};
use tagger_train::pipeline::TrainingRecord;

use super::{describe, runtime, safe};

mod compare;
use compare::*;

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: ModelsAction,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Every published version, newest first; the live one and the rollback target are marked.
    List(StoreArgs),
    /// One version: data, settings, network, tags and thresholds, test metrics.
    Show(ShowArgs),
    /// Make a version live (after loading it fully); the live one becomes the rollback target.
    Promote(ShowArgs),
    /// Make the rollback target (`previous.json`) live again, after loading it fully.
    Rollback(StoreArgs),
    /// What differs between two versions: data, settings, metrics, tags and thresholds.
    Diff(DiffArgs),
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Models folder (holding latest.json and one folder per version) or s3://bucket/prefix
    /// (credentials, region and endpoint from the AWS environment).
    #[arg(long, env = "TAGGER_MODEL", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The version id (as `tagger models list` prints it).
    pub version: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The version to compare from.
    pub a: String,
    /// The version to compare to.
    pub b: String,
}

pub fn models(args: &ModelsArgs) -> Result<()> {
    runtime()?.block_on(async {
        match &args.action {
            ModelsAction::List(a) => list(a).await,
            ModelsAction::Show(a) => show(a).await,
            ModelsAction::Promote(a) => promote(a).await,
            ModelsAction::Rollback(a) => rollback(a).await,
            ModelsAction::Diff(a) => diff(a).await,
        }
    })
}

/// The store a `--model` names; a local folder must exist (a typo should not list nothing).
async fn open(uri: &str) -> Result<Box<dyn ObjectStore>> {
    if let Location::Local(path) = Location::parse(uri)? {
        if path.file_name().is_some_and(|n| n == "latest.json") && path.is_file() {
            bail!(
                "{} is a pointer file: pass the folder that holds it ({})",
                path.display(),
                path.parent()
                    .map_or(".".into(), |p| p.display().to_string())
            );
        }
        if !path.is_dir() {
            bail!(
                "no model folder at {}: pass the folder that holds latest.json (or s3://bucket/prefix)",
                path.display()
            );
        }
    }
    Ok(tagger_s3::open(uri).await?)
}

/// A version's artifact, loaded and checked as the predict function would before serving it.
async fn load(registry: &Registry<'_>, version: &str) -> Result<(Pointer, Predictor)> {
    let (pointer, artifact) = registry
        .load_version(version)
        .await
        .with_context(|| format!("version {} does not load", safe(version)))?;
    Ok((pointer, Predictor::new(artifact)))
}

async fn list(args: &StoreArgs) -> Result<()> {
    let store = open(&args.model).await?;
    let registry = Registry::new(store.as_ref(), "");
    let latest = registry.latest().await?.map(|(p, _)| p.version);
    let previous = registry.previous().await?.map(|(p, _)| p.version);
    let mut rows = Vec::new();
    for version in registry.versions().await? {
        let mut row = json!({
            "version": version,
            "live": latest.as_deref() == Some(version.as_str()),
            "previous": previous.as_deref() == Some(version.as_str()),
        });
        match registry.load_version(&version).await {
            Ok((pointer, artifact)) => {
                row["created_at"] = json!(pointer.created_at);
                row["source"] = json!(pointer.source);
                row["tags"] = json!(artifact.labels.len());
                row["metrics"] = json!(pointer.metrics);
            }
            Err(e) => row["error"] = json!(e.to_string()),
        }
        rows.push(row);
    }
    // Newest first; versions that do not load (no date) last.
    rows.sort_by(|a, b| {
        let date = |v: &Value| v["created_at"].as_str().unwrap_or("").to_owned();
        date(b).cmp(&date(a)).then_with(|| {
            a["version"]
                .as_str()
                .unwrap_or("")
                .cmp(b["version"].as_str().unwrap_or(""))
        })
    });
    if args.json {
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "store": store.describe(),
                "latest": latest,
                "previous": previous,
                "versions": rows,
            }))?
        )?;
        return Ok(());
    }
    super::outln!("{} version(s) in {}", rows.len(), safe(&store.describe()))?;
    if rows.is_empty() {
        return Ok(());
    }
    super::outln!(
        "  {:<24} {:<20} {:>8} {:>6} {:>5}  source",
        "version",
        "created at",
        "micro-F1",
        "P@1",
        "tags"
    )?;
    for row in &rows {
        let mark = if row["live"] == true { "*" } else { " " };
        let note = match (row["live"] == true, row["previous"] == true) {
            (true, _) => "  (live)",
            (_, true) => "  (previous: rollback target)",
            _ => "",
        };
        let version = safe(row["version"].as_str().unwrap_or(""));
        if let Some(e) = row["error"].as_str() {
            super::outln!("{mark} {version:<24} does not load: {}{note}", safe(e))?;
            continue;
        }
        let metric = |k: &str| {
            row["metrics"][k]
                .as_f64()
                .map_or("-".to_owned(), |x| format!("{x:.3}"))
        };
        super::outln!(
            "{mark} {version:<24} {:<20} {:>8} {:>6} {:>5}  {}{note}",
            safe(&to_seconds(row["created_at"].as_str().unwrap_or(""))),
            metric("micro_f1"),
            metric("p_at_1"),
            row["tags"].as_u64().map_or("-".into(), |n| n.to_string()),
            safe(row["source"].as_str().unwrap_or("")),
        )?;
    }
    if let Some(live) = &latest {
        if !rows.iter().any(|r| r["version"] == live.as_str()) {
            super::outln!(
                "latest.json names {}, which is not among the versions",
                safe(live)
            )?;
        }
    }
    Ok(())
}

/// `2026-11-30T00:47:29.607755116Z` as `2026-11-30T00:47:29Z`: the list's column, to the second.
fn to_seconds(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(head) if rfc3339.len() > 19 && rfc3339.is_char_boundary(19) => format!("{head}Z"),
        _ => rfc3339.to_owned(),
    }
}

async fn show(args: &ShowArgs) -> Result<()> {
    let store = open(&args.store.model).await?;
    let registry = Registry::new(store.as_ref(), "");
    let (pointer, predictor) = load(&registry, &args.version).await?;
    let live = registry.latest().await?.map(|(p, _)| p.version);
    let previous = registry.previous().await?.map(|(p, _)| p.version);
    let status = if live.as_deref() == Some(pointer.version.as_str()) {
        "live"
    } else if previous.as_deref() == Some(pointer.version.as_str()) {
        "previous (rollback target)"
    } else {
        "published, not live"
    };
    if args.store.json {
        let mut summary = serde_json::to_value(predictor.summary())?;
        summary["status"] = json!(status);
        summary["sha256"] = json!(pointer.sha256);
        summary["key"] = json!(pointer.key);
        super::outln!("{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    super::outln!("status:      {status}")?;
    super::outln!("sha256:      {}", safe(&pointer.sha256))?;
    describe::print_model(&predictor)?;
    Ok(())
}

/// What a promotion or rollback did.
fn report(args: &StoreArgs, action: &str, to: &str, from: Option<&str>, store: &str) -> Result<()> {
    if args.json {
        super::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "action": action,
                "store": store,
                "version": to,
                "replaced": from,
            }))?
        )?;
    } else {
        super::outln!(
            "{action}: {} is live (was {}); `tagger models rollback --model {}` undoes it",
            safe(to),
            from.map_or("nothing".into(), safe),
            safe(&args.model)
        )?;
    }
    Ok(())
}

/// Moves `latest.json` from the pointer read (`current`, with its ETag) to `pointer`.
async fn move_pointer(
    registry: &Registry<'_>,
    pointer: &Pointer,
    current: Option<&(Pointer, String)>,
) -> Result<()> {
    match registry
        .promote(pointer, current.map(|(_, etag)| etag.as_str()))
        .await
    {
        Ok(_) => Ok(()),
        Err(tagger_registry::Error::PreconditionFailed { .. }) => bail!(
            "latest.json changed while this ran (a training run or another promotion moved it): \
             nothing was changed; look again with `tagger models list` and retry"
        ),
        Err(e) => Err(e.into()),
    }
}

async fn promote(args: &ShowArgs) -> Result<()> {
    let store = open(&args.store.model).await?;
    let registry = Registry::new(store.as_ref(), "");
    let current = registry.latest().await?;
    let (pointer, _) = load(&registry, &args.version)
        .await
        .context("not promoted; latest.json is unchanged")?;
    let from = current.as_ref().map(|(p, _)| p.version.clone());
    if from.as_deref() == Some(pointer.version.as_str()) {
        bail!("{} is already live: nothing to do", safe(&pointer.version));
    }
    move_pointer(&registry, &pointer, current.as_ref()).await?;
    report(
        &args.store,
        "promoted",
        &pointer.version,
        from.as_deref(),
        &store.describe(),
    )
}

async fn rollback(args: &StoreArgs) -> Result<()> {
    let store = open(&args.model).await?;
    let registry = Registry::new(store.as_ref(), "");
    let current = registry.latest().await?;
    let Some((target, _)) = registry.previous().await? else {
        bail!("no previous.json in {}: nothing to roll back to (it is written when a promotion replaces a live version)", safe(&store.describe()));
    };
    let from = current.as_ref().map(|(p, _)| p.version.clone());
    if from.as_deref() == Some(target.version.as_str()) {
        bail!(
            "previous.json names the live version {}: nothing to roll back to",
            safe(&target.version)
        );
    }
    // The pointer as it was, checked against its own digest, then decoded in full.
    let artifact: Artifact = registry.load(&target).await.with_context(|| {
        format!(
            "the rollback target {} does not load: not rolled back; latest.json is unchanged",
            safe(&target.version)
        )
    })?;
    drop(Predictor::new(artifact));
    move_pointer(&registry, &target, current.as_ref()).await?;
    report(
        args,
        "rolled back",
        &target.version,
        from.as_deref(),
        &store.describe(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_listed_to_the_second() {
        assert_eq!(
            to_seconds("2026-11-30T00:47:29.607755116Z"),
            "2026-11-30T00:47:29Z"
        );
        assert_eq!(to_seconds("2024-01-01T00:00:00Z"), "2024-01-01T00:00:00Z");
        assert_eq!(to_seconds("soon"), "soon");
    }

    #[test]
    fn changed_lists_differing_leaves_only() {
        let a = json!({"train": {"epochs": 3, "hidden": [256]}, "preset": "default"});
        let b = json!({"train": {"epochs": 5, "hidden": [256]}, "seed": 1});
        let d = changed(&a, &b);
        assert_eq!(
            d.keys().collect::<Vec<_>>(),
            ["preset", "seed", "train.epochs"]
        );
        assert_eq!(d["train.epochs"], [json!(3), json!(5)]);
        assert_eq!(d["seed"], [Value::Null, json!(1)]);
    }
}
