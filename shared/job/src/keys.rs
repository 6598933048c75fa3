//! Object keys that are not UTF-8: refused, with a report under a name that maps back to them.

use super::*;

/// Reports of uploads whose key is not UTF-8 live in this folder under the report prefix.
pub const INVALID_KEY_FOLDER: &str = "_invalid-utf8";

/// A key's bytes with every byte other than unreserved ASCII (`A-Z a-z 0-9 - . _ ~`) and `/`
/// written `%XX` (uppercase hex): percent-decoding the result gives the bytes back exactly.
pub fn escape_key_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An upload whose key is not valid UTF-8 (possible in a local folder, or from a producer that
/// percent-encodes raw bytes): it cannot be named, so it is neither read nor trained on. Inside
/// the data prefix (compared bytewise) it fails as [`FailureKind::BadKey`] and its report goes
/// to `reports/_invalid-utf8/<escape_key_bytes(key)>.json`, a name no UTF-8 upload's report can
/// take (those live under `reports/<data prefix>`) and that maps back to the exact bytes.
pub async fn reject_invalid_key(
    store: &dyn ObjectStore,
    key: &[u8],
    upload: &Upload,
    cfg: &JobConfig,
) -> Result<Outcome, JobError> {
    let escaped = escape_key_bytes(key);
    let prefix = cfg.data_prefix.trim_start_matches('/').as_bytes();
    if !key.starts_with(prefix) || !key.to_ascii_lowercase().ends_with(b".csv") {
        return Ok(Outcome::Ignored {
            reason: format!("key {escaped} (not UTF-8) is not a .csv file under the data prefix"),
        });
    }
    let err = JobError::new(
        FailureKind::BadKey,
        false,
        format!(
            "object key {escaped} (percent-encoded bytes) is not valid UTF-8, so it cannot be named in storage requests; rename the object with a UTF-8 key"
        ),
    );
    let report_key = join(
        &cfg.report_prefix,
        &format!("{INVALID_KEY_FOLDER}/{escaped}.json"),
    );
    let report = JobReport {
        outcome: "failed".into(),
        reason: err.message.clone(),
        failure: Some(err.kind),
        finished_at: tagger_registry::clock::now_rfc3339(),
        ..JobReport::new(
            Upload {
                key: escaped,
                ..upload.clone()
            },
            store.describe(),
            cfg,
        )
    };
    if let Err(e) = write_report(store, &report_key, &report).await {
        tracing::error!(key = %report_key, error = %e, "cannot write the failure report");
    }
    Err(err)
}
