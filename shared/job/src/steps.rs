//! The steps around a run: an earlier verdict, the report, the gate's measurements and decision.

use bytes::Bytes;
use tagger_core::Predictor;
use tagger_registry::registry::{Pointer, ReferenceRow, Registry};
use tagger_registry::store::{ObjectStore, PutMode};

use crate::gate::{self, Gate};
use crate::{FailureKind, Incumbent, JobError, JobReport, Upload};

pub(crate) async fn earlier_verdict(
    store: &dyn ObjectStore,
    report_key: &str,
    upload: &Upload,
) -> Option<JobError> {
    upload.sequencer.as_ref()?;
    let obj = store.get(report_key).await.ok()??;
    let old: JobReport = serde_json::from_slice(&obj.body).ok()?;
    let same_upload = old.upload.sequencer == upload.sequencer && old.upload.etag == upload.etag;
    match (same_upload, old.failure) {
        (true, Some(kind)) if !old.retryable => Some(JobError::new(kind, false, old.reason)),
        _ => None,
    }
}

pub(crate) async fn write_report(
    store: &dyn ObjectStore,
    key: &str,
    report: &JobReport,
) -> Result<(), tagger_registry::Error> {
    let body = serde_json::to_vec_pretty(report).expect("a report serialises to json");
    store
        .put(key, Bytes::from(body), PutMode::Overwrite)
        .await
        .map(|_| ())
}

pub(crate) fn lost_race(e: tagger_registry::Error) -> JobError {
    match e {
        // Twice in a row: let the platform retry the whole (idempotent) run later.
        tagger_registry::Error::PreconditionFailed { key } => JobError::new(
            FailureKind::Storage,
            true,
            format!("pointer {key} kept changing during promotion; retry"),
        ),
        other => other.into(),
    }
}

/// Applies the gate's checks to what was measured (see [`gate`]); `force` publishes anyway.
pub(crate) fn judge(gate: &mut Gate, forced: bool) -> Result<(), JobError> {
    gate.decide();
    match gate.failures() {
        Some(why) if !forced => Err(JobError::gate(format!(
            "quality gate: {why} (set \"force\": true in the sidecar to publish anyway)"
        ))),
        _ => Ok(()),
    }
}

/// Scores the live model on the candidate's test rows, both models on the live version's
/// reference set, and the candidate's cover of the live model's tags, into `gate`.
pub(crate) async fn score_incumbent(
    registry: &Registry<'_>,
    cur: &Pointer,
    candidate: &Predictor,
    test: &[ReferenceRow],
    gate: &mut Gate,
) -> Result<Incumbent, JobError> {
    let mut out = Incumbent {
        version: cur.version.clone(),
        sequencer: cur.sequencer.clone(),
        micro_f1: None,
        note: None,
    };
    (gate.live, gate.reference, gate.label_mass) = (None, None, None);
    let live = match registry.load(cur).await {
        Ok(artifact) => Predictor::new(artifact),
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => {
            tracing::warn!(version = %cur.version, error = %e, "live model cannot be loaded; it will not block the new one");
            out.note = Some(format!("live model cannot be loaded: {e}"));
            return Ok(out);
        }
    };
    let on_test = gate::score(&live, test);
    out.micro_f1 = Some(on_test.micro_f1);
    gate.live = Some(on_test);
    // Tags the candidate trained no output unit for are named but never predicted: not kept.
    let constant = candidate.model().constant_outputs();
    gate.label_mass = Some(gate::label_mass(live.labels(), candidate.labels(), |t| {
        !constant.get(t as usize).copied().unwrap_or(true)
    }));
    match registry.reference(&cur.version).await {
        Ok(Some(reference)) if !reference.rows.is_empty() => {
            gate.reference = Some(gate::ReferenceScores {
                version: cur.version.clone(),
                rows: reference.rows.len(),
                candidate: gate::score(candidate, &reference.rows),
                live: gate::score(&live, &reference.rows),
            });
        }
        Ok(_) => {
            out.note = Some(format!(
                "live version {} has no reference set; the reference check was skipped",
                cur.version
            ))
        }
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => {
            tracing::warn!(version = %cur.version, error = %e, "live reference set unusable");
            out.note = Some(format!("live reference set unusable: {e}"));
        }
    }
    Ok(out)
}
