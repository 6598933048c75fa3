//! Trains the default preset on `../shared/data/<name>/train.csv` (scored on its `test.csv`) and
//! writes the artifact as a model folder (`<out>/latest.json`, `<out>/<version>/model.bin`), the
//! layout `MODEL_URI=file://<out>` serves: the models the cold-start benchmark loads.
//!
//! `cargo run --release -p tagger-train --example publish_default -- <name> <out>`

use std::path::PathBuf;

use tagger_core::Artifact;
use tagger_train::config::{Preset, Settings};
use tagger_train::dataset::read_csv_path;
use tagger_train::pipeline::{self, TestData, TrainData};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, out) = (&args[0], PathBuf::from(&args[1]));
    let dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(name);
    let settings = Settings::preset(Preset::Default);
    let (examples, load) = read_csv_path(&dir.join("train.csv"), &settings.csv).expect("train csv");
    let (test, test_load) = read_csv_path(&dir.join("test.csv"), &settings.csv).expect("test csv");
    let trained = pipeline::train(
        TrainData {
            examples,
            load,
            source: name.clone(),
            sha256: name.clone(),
        },
        Some(TestData {
            examples: test,
            load: test_load,
        }),
        &settings,
        "2026-01-01T00:00:00Z",
        &mut |_| {},
    )
    .expect("training");
    let m = trained.report.metrics.as_ref().expect("test metrics");
    let bytes = trained.artifact.to_bytes().expect("encode");
    let version = &trained.artifact.info.version;
    std::fs::create_dir_all(out.join(version)).expect("out folder");
    std::fs::write(out.join(version).join("model.bin"), &bytes).expect("write model");
    let pointer = serde_json::json!({
        "version": version,
        "key": format!("{version}/model.bin"),
        "sha256": Artifact::sha256_hex(&bytes),
        "created_at": trained.artifact.info.created_at,
        "source": name,
        "metrics": trained.artifact.info.metrics,
    });
    std::fs::write(
        out.join("latest.json"),
        serde_json::to_vec_pretty(&pointer).unwrap(),
    )
    .expect("write pointer");
    println!(
        "{name}: {} bytes, {} features, P@1 {:.4} micro {:.4} macro {:.4}",
        bytes.len(),
        trained.artifact.tokenizer.n_features(),
        m.p_at_1,
        m.micro_f1,
        m.macro_f1
    );
}
