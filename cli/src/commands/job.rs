//! The retraining job on a local folder standing in for the bucket.

use std::path::Path;

use anyhow::{bail, Context, Result};
use tagger_job::{self as job, JobConfig, JobReport, Upload};
use tagger_registry::store::{LocalStore, ObjectStore};

use super::{runtime, safe};
use crate::JobArgs;

/// Runs uploads through the same retraining job as the `train` function, with a local folder as
/// the bucket; returns the reports.
pub fn run_job(bucket: &Path, keys: &[String]) -> Result<Vec<JobReport>> {
    let store = LocalStore::new(bucket);
    let cfg = JobConfig::default();
    runtime()?.block_on(async {
        let mut reports = Vec::new();
        for key in keys {
            let upload = Upload {
                key: key.clone(),
                etag: None,
                version_id: None,
                sequencer: None,
                size: None,
            };
            let outcome = job::retrain(&store, &upload, &cfg).await;
            let report_key = cfg.report_key(key);
            let report: Option<JobReport> = match store.get(&report_key).await? {
                Some(obj) => Some(serde_json::from_slice(&obj.body)?),
                None => None,
            };
            match (outcome, report) {
                (Ok(job::Outcome::Ignored { reason }), _) => {
                    println!("{}: ignored ({})", safe(key), safe(&reason))
                }
                (_, Some(report)) => {
                    println!(
                        "{}: {} - {} (report: {})",
                        safe(key),
                        safe(&report.outcome),
                        safe(&report.reason),
                        safe(&bucket.join(&report_key).display().to_string())
                    );
                    reports.push(report);
                }
                (Ok(outcome), None) => println!("{}: {outcome:?}", safe(key)),
                (Err(e), None) => bail!("{}: {}", safe(key), safe(&e.message)),
            }
        }
        Ok(reports)
    })
}

#[cfg(unix)]
fn reject_non_utf8(bucket: &Path, name: &std::ffi::OsStr) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let key = [b"data/".as_slice(), name.as_bytes()].concat();
    let store = LocalStore::new(bucket);
    let cfg = JobConfig::default();
    let upload = Upload {
        key: job::escape_key_bytes(&key),
        ..Upload::default()
    };
    match runtime()?.block_on(job::reject_invalid_key(&store, &key, &upload, &cfg)) {
        Ok(_) => {}
        Err(e) => println!("{}: failed - {}", safe(&upload.key), safe(&e.message)),
    }
    Ok(())
}

#[cfg(not(unix))]
fn reject_non_utf8(_bucket: &Path, name: &std::ffi::OsStr) -> Result<()> {
    println!(
        "{}: ignored (not a UTF-8 name)",
        safe(&name.to_string_lossy())
    );
    Ok(())
}

pub fn job(args: &JobArgs) -> Result<()> {
    let mut bad_names = 0usize;
    let keys = if args.keys.is_empty() {
        let data = args.bucket.join("data");
        let mut keys: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(&data)
            .with_context(|| format!("cannot list {}", data.display()))?
            .filter_map(|e| e.ok())
        {
            let name = entry.file_name();
            match name.to_str() {
                Some(name) if name.ends_with(".csv") => keys.push(format!("data/{name}")),
                Some(_) => {}
                // A name that is not UTF-8 cannot be a key: reported, never read under a
                // look-alike name.
                None => {
                    reject_non_utf8(&args.bucket, &name)?;
                    bad_names += 1;
                }
            }
        }
        keys.sort();
        keys
    } else {
        args.keys.clone()
    };
    if keys.is_empty() && bad_names > 0 {
        bail!("{bad_names} upload(s) with a name that is not UTF-8: see their reports");
    }
    if keys.is_empty() {
        bail!(
            "no uploads: put CSV files under {}/data/ or name keys",
            args.bucket.display()
        );
    }
    let reports = run_job(&args.bucket, &keys)?;
    let failed = reports.iter().filter(|r| r.outcome == "failed").count() + bad_names;
    if failed > 0 {
        bail!("{failed} upload(s) failed: see their reports");
    }
    Ok(())
}
