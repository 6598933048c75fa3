//! One logging set-up for both Lambda functions and the CLI, and their metrics ([`emf`]).
//!
//! - Level: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), then `RUST_LOG`, then
//!   the caller's default; a value that does not parse falls back to the default.
//! - Format: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, or inside Lambda when it is unset
//!   (Lambda stamps each line itself, so no time); text elsewhere.
//! - Whatever the level, the AWS SDK's crates (`aws_*`, which trace the signed canonical request,
//!   session token included) and the HTTP/TLS stack (`hyper`, `h2`, `rustls`) log at `info` at
//!   most: a second filter keeps the quieter of the two.
//!
//! ```
//! assert_eq!(tagger_telemetry::level_spec(|_| None, "warn"), "warn");
//! let env = |k: &str| (k == "AWS_LAMBDA_LOG_LEVEL").then(|| "DEBUG".to_owned());
//! assert_eq!(tagger_telemetry::level_spec(env, "warn"), "debug");
//! ```

pub mod emf;

use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Crates whose own logs are capped at `info`.
pub const CAPPED: [&str; 5] = ["aws", "hyper", "h2", "rustls", "tower"];

/// The filter directive in force, by the precedence in the module docs.
pub fn level_spec(env: impl Fn(&str) -> Option<String>, default: &str) -> String {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    get("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.trim().to_ascii_lowercase())
        .or_else(|| get("RUST_LOG"))
        .filter(|spec| EnvFilter::try_new(spec).is_ok())
        .unwrap_or_else(|| default.to_owned())
}

/// The cap on [`CAPPED`] crates: everything else passes.
pub fn caps() -> Targets {
    CAPPED.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, name| targets.with_target(*name, LevelFilter::INFO),
    )
}

/// Installs the global subscriber (once; later calls are no-ops). Logs go to stderr outside
/// Lambda so that command output on stdout stays clean.
pub fn init(default_level: &str) {
    let env = |k: &str| std::env::var(k).ok();
    let filter = EnvFilter::new(level_spec(env, default_level));
    let in_lambda = env("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = match env("AWS_LAMBDA_LOG_FORMAT").filter(|v| !v.is_empty()) {
        Some(format) => format.eq_ignore_ascii_case("json"),
        None => in_lambda,
    };
    let registry = tracing_subscriber::registry().with(filter).with(caps());
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .without_time()
                    .with_current_span(false)
                    .with_target(false),
            )
            .try_init()
    } else if in_lambda {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .without_time()
                    .with_target(false),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(stderr_colours(env)),
            )
            .try_init()
    };
    // Already installed (a test harness, a second call): keep the first.
    let _ = result;
}

/// Colour on stderr only for a terminal, and never with `NO_COLOR` set (no-color.org).
fn stderr_colours(env: impl Fn(&str) -> Option<String>) -> bool {
    use std::io::IsTerminal;
    env("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn lambda_level_wins_over_rust_log_and_bad_values_fall_back() {
        assert_eq!(
            level_spec(
                env(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "warn")]),
                "info"
            ),
            "trace"
        );
        assert_eq!(
            level_spec(env(&[("RUST_LOG", "predict=debug")]), "info"),
            "predict=debug"
        );
        assert_eq!(level_spec(env(&[("RUST_LOG", "=[bad")]), "info"), "info");
        assert_eq!(
            level_spec(env(&[("AWS_LAMBDA_LOG_LEVEL", " ")]), "warn"),
            "warn"
        );
    }

    #[test]
    fn sdk_and_http_crates_never_log_below_info() {
        let caps = caps();
        for target in [
            "aws_sigv4::http_request",
            "aws_smithy_runtime",
            "hyper_util::client",
            "h2::codec",
            "rustls::conn",
        ] {
            assert!(!caps.would_enable(target, &Level::TRACE), "{target} trace");
            assert!(!caps.would_enable(target, &Level::DEBUG), "{target} debug");
            assert!(caps.would_enable(target, &Level::INFO), "{target} info");
        }
        assert!(caps.would_enable("predict::app", &Level::TRACE));
    }
}
