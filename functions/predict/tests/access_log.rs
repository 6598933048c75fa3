//! The access log through a real socket, in its own test binary: a test-local `tracing`
//! subscriber only sees callsites reliably when no other test thread logs meanwhile.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{send, serve};
use predict::{Config, State};
use serde_json::{json, Value};
use tagger_registry::store::LocalStore;

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_info_line_per_request_names_it_without_the_question() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // Lambda's format: JSON lines (the runtime stamps the time).
    let subscriber = tracing_subscriber::fmt()
        .json()
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path()));
    let artifact = tagger_testkit::tiny_artifact(1);
    tagger_testkit::publish(store.as_ref(), "", &artifact).await;
    let config = Config {
        refresh: Duration::ZERO,
        ..Config::for_local("memory://")
    };
    let state = Arc::new(State::new(store, "", config).await);
    let addr = serve(state).await;
    let secret = "How do I merge two pandas DataFrames on a column named xylophone?";
    let (status, answer) = send(
        addr,
        "POST",
        "/predict",
        &json!({ "question": secret }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        !text.contains("xylophone"),
        "the question reached the log: {text}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .filter(|l: &Value| l["fields"]["message"] == "answered")
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["level"], "INFO");
    let f = &line["fields"];
    assert!(
        f["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("local-")),
        "{line}"
    );
    assert_eq!(
        (&f["route"], &f["status"], &f["model_version"]),
        (
            &json!("/predict"),
            &json!(200),
            &json!(artifact.info.version)
        )
    );
    assert_eq!(f["tags"], json!(answer["tags"].as_array().unwrap().len()));
    assert!(
        f["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
}
