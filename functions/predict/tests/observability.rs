//! What operators see of each request through a real socket: the metrics documents, read back
//! and checked against the Embedded Metric Format's rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{send, serve};
use predict::{Config, State};
use serde_json::{json, Value};
use tagger_registry::store::LocalStore;
use tagger_telemetry::emf::{self, Captured, Metrics};

/// A folder store whose pointer is not JSON: every load fails, the handler answers 5xx.
fn broken_store(dir: &std::path::Path) -> Arc<LocalStore> {
    std::fs::write(dir.join("latest.json"), b"{not json").expect("write pointer");
    Arc::new(LocalStore::new(dir))
}

async fn state_with_metrics(store: Arc<LocalStore>) -> (Arc<State>, Captured) {
    let (metrics, captured) = Metrics::memory("TaggerTest", "predict-test");
    let config = Config {
        refresh: Duration::ZERO,
        metrics,
        ..Config::for_local("memory://")
    };
    (Arc::new(State::new(store, "", config).await), captured)
}

/// The only document written since `seen` documents, checked against the format's rules.
fn next_doc(captured: &Captured, seen: &mut usize) -> Value {
    let docs = captured.documents();
    assert_eq!(docs.len(), *seen + 1, "one document per request: {docs:#?}");
    *seen += 1;
    let doc = docs[*seen - 1].clone();
    emf::validate(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    doc
}

/// The dimension sets a metric is published under in `doc`.
fn dimension_sets(doc: &Value, metric: &str) -> Vec<Value> {
    doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == metric)
        })
        .flat_map(|d| d["Dimensions"].as_array().unwrap().clone())
        .collect()
}

const QUESTION: &str = "How do I merge two pandas DataFrames on a column?";

#[tokio::test]
async fn a_handler_5xx_is_counted_and_every_request_writes_one_valid_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = broken_store(dir.path());
    let (state, captured) = state_with_metrics(store.clone()).await;
    let addr = serve(state).await;
    let mut seen = 0;

    // The store is broken: the handler answers 503, a normal response to Lambda.
    let body = json!({ "question": QUESTION }).to_string();
    let (status, answer) = send(addr, "POST", "/predict", &body).await;
    assert_eq!(status, 503, "{answer}");
    let doc = next_doc(&captured, &mut seen);
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "TaggerTest"
    );
    assert_eq!(
        (
            &doc["Http5xx"],
            &doc["Http4xx"],
            &doc["Requests"],
            &doc["Status"]
        ),
        (&json!(1.0), &json!(0.0), &json!(1.0), &json!(503))
    );
    assert_eq!(
        (&doc["Function"], &doc["Route"], &doc["StatusClass"]),
        (&json!("predict-test"), &json!("/predict"), &json!("5xx"))
    );
    assert_eq!(dimension_sets(&doc, "Http5xx"), vec![json!(["Function"])]);
    assert_eq!(
        dimension_sets(&doc, "Requests"),
        vec![
            json!(["Function"]),
            json!(["Function", "Route", "StatusClass"])
        ]
    );
    assert!(doc["Latency"].as_f64().unwrap() > 0.0, "{doc}");
    assert!(doc["RequestId"].is_string(), "{doc}");
    // The load at init and the one this request tried both failed; this is the cold start.
    assert_eq!(doc["ModelReloadFailures"], 2.0, "{doc}");
    assert_eq!(doc["ColdStart"], 1.0, "{doc}");
    assert!(doc.get("Answers").is_none(), "no answer was given: {doc}");

    // The store is repaired and a model published: the next request loads it and answers 200.
    std::fs::remove_file(dir.path().join("latest.json")).unwrap();
    let artifact = tagger_testkit::tiny_artifact(1);
    tagger_testkit::publish(store.as_ref(), "", &artifact).await;
    let (status, answer) = send(addr, "POST", "/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    let doc = next_doc(&captured, &mut seen);
    let version = artifact.info.version.as_str();
    assert_eq!(
        (&doc["Http5xx"], &doc["StatusClass"], &doc["ModelVersion"]),
        (&json!(0.0), &json!("2xx"), &json!(version))
    );
    assert_eq!(doc["ModelReloads"], 1.0, "{doc}");
    assert!(doc.get("ColdStart").is_none(), "{doc}");
    let tags = answer["tags"].as_array().unwrap().len() as f64;
    assert_eq!(
        (&doc["Answers"], &doc["TagsPerAnswer"], &doc["NoTagAnswers"]),
        (
            &json!(1.0),
            &json!(tags),
            &json!(if tags == 0.0 { 1.0 } else { 0.0 })
        )
    );
    assert_eq!(
        dimension_sets(&doc, "TagsPerAnswer"),
        vec![json!(["Function"]), json!(["Function", "ModelVersion"])]
    );

    // A batch with a question no tag passes, explained: per-answer figures and the explain ones.
    let batch = json!({ "instances": [QUESTION, "zzzz qqqq"], "explain": true }).to_string();
    let (status, answer) = send(addr, "POST", "/predict", &batch).await;
    assert_eq!(status, 200, "{answer}");
    let doc = next_doc(&captured, &mut seen);
    let per: Vec<usize> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tags"].as_array().unwrap().len())
        .collect();
    assert_eq!(doc["Answers"], 2.0, "{doc}");
    assert_eq!(
        doc["NoTagAnswers"],
        per.iter().filter(|&&n| n == 0).count() as f64
    );
    assert_eq!(doc["TagsPerAnswer"], per.iter().sum::<usize>() as f64 / 2.0);
    assert_eq!(doc["ExplainRequests"], 1.0, "{doc}");
    assert_eq!(doc["ExplainLatency"], doc["Latency"]);

    // A client error: counted as 4xx under the `other` route.
    let (status, _) = send(addr, "GET", "/nowhere", "").await;
    assert_eq!(status, 404);
    let doc = next_doc(&captured, &mut seen);
    assert_eq!(
        (&doc["Http4xx"], &doc["Http5xx"], &doc["Route"]),
        (&json!(1.0), &json!(0.0), &json!("other"))
    );
}
