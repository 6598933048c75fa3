//! A tiny trained model for this crate's unit tests (artifact round trips, predictor options,
//! explain paths). Trained once per process; cloned per test.

use std::sync::OnceLock;

use crate::artifact::Artifact;
use crate::config::{Overrides, Settings};
use crate::dataset::{read_csv, CsvOptions};
use crate::pipeline::{self, TrainData};

/// Three topics whose tag names and typical words appear in their questions, plus a few
/// two-tag rows, so a small network learns them in milliseconds.
pub fn tiny_csv() -> String {
    let topics: [(&str, [&str; 4]); 3] = [
        (
            "python",
            [
                "pandas dataframe",
                "pip install",
                "numpy array",
                "django view",
            ],
        ),
        (
            "rust",
            [
                "borrow checker",
                "cargo build",
                "lifetime error",
                "trait object",
            ],
        ),
        (
            "javascript",
            [
                "react component",
                "npm package",
                "promise chain",
                "dom event",
            ],
        ),
    ];
    let mut csv = String::from("tags,text\n");
    for i in 0..20 {
        for (tag, words) in &topics {
            let (a, b) = (words[i % 4], words[(i + 1) % 4]);
            csv.push_str(&format!(
                "{tag},How do I fix the {a} and {b} problem in my {tag} code? (case {i})\n"
            ));
        }
        if i % 4 == 0 {
            csv.push_str(&format!(
                "\"python,rust\",Calling rust from python: {} with {} (case {i})\n",
                topics[1].1[i % 4],
                topics[0].1[i % 4]
            ));
        }
    }
    csv
}

/// A model trained on [`tiny_csv`] with a fixed seed and creation time.
pub fn tiny_artifact() -> Artifact {
    static MODEL: OnceLock<Artifact> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let settings = Settings::default()
                .apply(&Overrides {
                    hidden: Some(vec![16]),
                    epochs: Some(30),
                    batch_size: Some(16),
                    learning_rate: Some(0.01),
                    dropout: Some(0.0),
                    patience: Some(0),
                    min_count: Some(1),
                    seed: Some(7),
                    background_rows: Some(20),
                    ..Overrides::default()
                })
                .expect("tiny settings are valid");
            let csv = tiny_csv();
            let (examples, load) =
                read_csv(csv.as_bytes(), &CsvOptions::default()).expect("tiny csv reads");
            let data = TrainData {
                examples,
                load,
                source: "memory://tiny.csv".into(),
                sha256: pipeline::sha256_hex(csv.as_bytes()),
            };
            pipeline::train(data, None, &settings, "2024-01-01T00:00:00Z", &mut |_| {})
                .expect("tiny model trains")
                .artifact
        })
        .clone()
}
