//! Test fixtures shared by every crate's tests and benchmarks: the one tiny corpus, tiny trained
//! models, and publishing helpers.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use tagger_core::artifact::Artifact;
use tagger_core::Predictor;
use tagger_registry::registry::{Pointer, Registry};
use tagger_registry::store::{join, ObjectStore, PutMode};
use tagger_train::config::{Overrides, Settings};
use tagger_train::dataset::{read_csv, CsvOptions};
use tagger_train::pipeline::{self, TrainData};

/// A small three-topic CSV (`tags,text`) where each tag's name and typical words appear in its
/// questions, so even a tiny model learns it in milliseconds.
pub fn tiny_csv() -> String {
    let topics: [(&str, [&str; 6]); 3] = [
        (
            "python",
            [
                "pandas dataframe",
                "list comprehension",
                "pip install",
                "django view",
                "numpy array",
                "virtualenv",
            ],
        ),
        (
            "rust",
            [
                "borrow checker",
                "cargo build",
                "lifetime error",
                "trait object",
                "tokio runtime",
                "match arm",
            ],
        ),
        (
            "javascript",
            [
                "react component",
                "npm package",
                "promise chain",
                "dom event",
                "node server",
                "webpack config",
            ],
        ),
    ];
    let mut csv = String::from("tags,text\n");
    for i in 0..30 {
        for (tag, words) in &topics {
            let (a, b) = (words[i % 6], words[(i + 3) % 6]);
            csv.push_str(&format!(
                "{tag},How do I fix the {a} and {b} problem in my {tag} code? (case {i})\n"
            ));
        }
        if i % 3 == 0 {
            csv.push_str(&format!(
                "\"python,rust\",Calling rust from python: {} with {} (case {i})\n",
                topics[1].1[i % 6],
                topics[0].1[i % 6]
            ));
        }
    }
    csv
}

/// Settings that train [`tiny_csv`] in milliseconds; `seed` changes the version.
pub fn tiny_settings(seed: u64) -> Settings {
    let overrides = Overrides {
        hidden: Some(vec![16]),
        epochs: Some(30),
        batch_size: Some(16),
        learning_rate: Some(0.01),
        dropout: Some(0.0),
        patience: Some(0),
        min_count: Some(1),
        seed: Some(seed),
        background_rows: Some(20),
        ..Overrides::default()
    };
    Settings::default()
        .apply(&overrides)
        .expect("tiny settings are valid")
}

/// A model trained on `csv` with `settings` (panics on failure: test helper).
pub fn train(csv: &str, settings: &Settings, source: &str) -> Artifact {
    let (examples, load) =
        read_csv(csv.as_bytes(), &CsvOptions::default()).expect("test csv reads");
    let data = TrainData {
        examples,
        load,
        source: source.to_owned(),
        sha256: pipeline::sha256_hex(csv.as_bytes()),
    };
    pipeline::train(data, None, settings, "2024-01-01T00:00:00Z", &mut |_| {})
        .expect("test model trains")
        .artifact
}

/// A tiny model; different seeds give different versions. Trained once per seed and process.
pub fn tiny_artifact(seed: u64) -> Artifact {
    static CACHE: OnceLock<Mutex<BTreeMap<u64, Artifact>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(seed)
        .or_insert_with(|| train(&tiny_csv(), &tiny_settings(seed), "memory://tiny.csv"))
        .clone()
}

/// Writes `artifact` as a version under `prefix` and moves `latest.json` to it.
pub async fn publish(store: &dyn ObjectStore, prefix: &str, artifact: &Artifact) -> Pointer {
    Registry::new(store, prefix)
        .publish(artifact, b"{}", b"{}")
        .await
        .expect("version published")
}

/// Publishes a pointer to a version whose `model.bin` is garbage (with a matching checksum, so
/// the artifact decoder, not the checksum check, is what rejects it).
pub async fn publish_corrupt(store: &dyn ObjectStore, prefix: &str, version: &str) -> Pointer {
    let body = b"TAGGERMD this is not a model".to_vec();
    let key = format!("{version}/model.bin");
    store
        .put(
            &join(prefix, &key),
            Bytes::from(body.clone()),
            PutMode::Overwrite,
        )
        .await
        .expect("corrupt artifact written");
    let pointer = Pointer {
        version: version.to_owned(),
        key,
        sha256: Artifact::sha256_hex(&body),
        created_at: "2024-01-02T00:00:00Z".into(),
        source: "corrupt".into(),
        sequencer: None,
        metrics: None,
    };
    let registry = Registry::new(store, prefix);
    let current = registry.latest().await.ok().flatten().map(|(_, etag)| etag);
    registry
        .promote(&pointer, current.as_deref())
        .await
        .expect("pointer moved");
    pointer
}

/// [`tiny_artifact`] ready to answer.
pub fn tiny_predictor(seed: u64) -> Predictor {
    Predictor::new(tiny_artifact(seed))
}
