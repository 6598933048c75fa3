//! Timestamps the registry, the job and the functions record.

/// RFC 3339 UTC time now, or `SOURCE_DATE_EPOCH` when it is set (reproducible artifacts and
/// reports, as reproducible-builds tooling expects).
pub fn now_rfc3339() -> String {
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
