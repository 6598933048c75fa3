//! One CloudWatch Embedded Metric Format document per request (see the README's metrics table),
//! written when the response leaves the router, so handler-returned 5xx count even though a
//! Lambda that returns one has not failed (its `Errors` metric stays at zero).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use tagger_telemetry::emf::{Metrics, Unit};

use crate::routes::{Answered, RouteName};
use crate::State;

/// The request metrics of one application (one per process on Lambda).
pub(crate) struct RequestMetrics {
    metrics: Metrics,
    state: Arc<State>,
    /// Cleared by the first document: the process's first request follows its cold start.
    cold: AtomicBool,
}

impl RequestMetrics {
    pub(crate) fn new(state: Arc<State>) -> Self {
        RequestMetrics {
            metrics: state.config().metrics.clone(),
            state,
            cold: AtomicBool::new(true),
        }
    }

    /// Writes the document for one answered request.
    pub(crate) fn record(&self, resp: &Response, latency: Duration) {
        if !self.metrics.enabled() {
            return;
        }
        let status = resp.status().as_u16();
        let class = match status {
            500.. => "5xx",
            400..=499 => "4xx",
            300..=399 => "3xx",
            200..=299 => "2xx",
            _ => "1xx",
        };
        let route = match resp.extensions().get::<RouteName>() {
            Some(RouteName(name)) if *name != "-" => *name,
            _ => "other",
        };
        let ms = latency.as_secs_f64() * 1e3;
        let mut doc = self.metrics.document();
        doc.dimension("Route", route)
            .dimension("StatusClass", class)
            .property("Status", status)
            .metric(
                "Requests",
                Unit::Count,
                1.0,
                &[&[], &["Route", "StatusClass"]],
            )
            .metric("Http4xx", Unit::Count, f64::from(class == "4xx"), &[&[]])
            .metric("Http5xx", Unit::Count, f64::from(class == "5xx"), &[&[]])
            .metric("Latency", Unit::Milliseconds, ms, &[&[], &["Route"]]);
        if let Some(id) = header(resp, "x-request-id") {
            doc.property("RequestId", id);
        }
        let version = header(resp, "x-model-version");
        if let Some(v) = version {
            doc.dimension("ModelVersion", v);
        }
        if let Some(a) = resp.extensions().get::<Answered>() {
            let by_version: &'static [&'static [&'static str]] = if version.is_some() {
                &[&[], &["ModelVersion"]]
            } else {
                &[&[]]
            };
            let tags = resp
                .extensions()
                .get::<crate::routes::TagCount>()
                .map_or(0, |t| t.0);
            doc.metric("Answers", Unit::Count, a.answers as f64, by_version)
                .metric(
                    "TagsPerAnswer",
                    Unit::Count,
                    tags as f64 / a.answers.max(1) as f64,
                    by_version,
                )
                .metric("NoTagAnswers", Unit::Count, a.no_tags as f64, by_version);
            if a.explain {
                doc.metric("ExplainRequests", Unit::Count, 1.0, &[&[]])
                    .metric("ExplainLatency", Unit::Milliseconds, ms, &[&[]]);
            }
        }
        if self.cold.swap(false, Ordering::Relaxed) {
            doc.metric("ColdStart", Unit::Count, 1.0, &[&[]]);
        }
        let (loads, failures) = self.state.models().take_load_counts();
        if loads > 0 {
            doc.metric("ModelReloads", Unit::Count, loads as f64, &[&[]]);
        }
        if failures > 0 {
            doc.metric("ModelReloadFailures", Unit::Count, failures as f64, &[&[]]);
        }
        self.metrics.emit(&doc);
    }
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}
