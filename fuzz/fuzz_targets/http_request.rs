//! An HTTP request built from the input, answered by the predict function with a tiny model.
//!
//! Input layout (text, so seeds are readable): line 1 is `METHOD PATH[?QUERY]`, line 2 the
//! content type (empty: no header), the rest the body. Inputs whose method, URI or header value
//! `http` rejects are skipped: no client can send those. Every answer must be a JSON body with a
//! 2xx or 4xx status, or a 5xx other than 500: with a model loaded from memory, a 500 means the
//! input reached an internal fault.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use predict::{Config, State};
use tagger_registry::store::MemoryStore;
use tokio::runtime::Runtime;

struct Harness {
    runtime: Runtime,
    app: axum::Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = Arc::new(MemoryStore::new());
        // Small limits, so that the 413 answers are reachable within libFuzzer's input sizes.
        let config = Config {
            refresh: Duration::from_secs(24 * 3600),
            max_body_bytes: 4096,
            max_instances: 8,
            ..Config::for_local("memory://")
        };
        let state = runtime.block_on(async {
            let artifact = tagger_testkit::tiny_artifact(1);
            tagger_testkit::publish(store.as_ref(), "models", &artifact).await;
            State::new(store, "models", config).await
        });
        assert!(state.models().current().is_some(), "tiny model loaded");
        Harness {
            runtime,
            app: predict::app(Arc::new(state)),
        }
    })
}

/// The one place that knows the handler's signature: a request in, (status, content type,
/// body) out. Serving through another front (an axum `Router`) changes only this function.
fn respond(
    h: &Harness,
    method: http::Method,
    uri: http::Uri,
    content_type: Option<http::HeaderValue>,
    body: &[u8],
) -> (u16, Option<String>, Vec<u8>) {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    let request = builder
        .body(axum::body::Body::from(body.to_vec()))
        .expect("parts were validated");
    let response = h
        .runtime
        .block_on(h.app.clone().oneshot(request))
        .expect("the router is infallible");
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = response.status().as_u16();
    let bytes = h
        .runtime
        .block_on(response.into_body().collect())
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (status, content_type, bytes)
}

/// Splits off the first line (without its `\n`).
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (request_line, rest) = line(data);
    let (content_type, body) = line(rest);
    let (method, target) = match request_line.iter().position(|&b| b == b' ') {
        Some(i) => (&request_line[..i], &request_line[i + 1..]),
        None => (request_line, &b"/predict"[..]),
    };
    let Ok(method) = http::Method::from_bytes(method) else {
        return;
    };
    if !target.starts_with(b"/") {
        return;
    }
    let mut uri = b"https://abc.lambda-url.us-east-1.on.aws".to_vec();
    uri.extend_from_slice(target);
    let Ok(uri) = http::Uri::try_from(uri) else {
        return;
    };
    let content_type = if content_type.is_empty() {
        None
    } else {
        match http::HeaderValue::from_bytes(content_type) {
            Ok(v) => Some(v),
            Err(_) => return,
        }
    };

    let (status, response_type, bytes) = respond(harness(), method, uri, content_type, body);
    assert!(
        matches!(status, 200..=299 | 400..=499 | 501..=599),
        "status {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(response_type.as_deref(), Some("application/json"));
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).expect("every answer is a JSON body");
    if status >= 400 {
        assert!(
            json["error"]["code"].is_string() && json["error"]["message"].is_string(),
            "{json}"
        );
    }
});
