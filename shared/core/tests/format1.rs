//! Format-1 artifacts (the first release's layout) still load and predict exactly as the
//! release that wrote them did.
//!
//! `fixtures/format1/tiny.bin` and `tiny-predictions.json` were written by tagger 0.1.0 at
//! commit 66a63b4 (its `test_support::tiny_artifact()`, `Artifact::to_bytes`, and
//! `Artifact::predict` with scores); the JSON's `made_by` field says so.

use std::collections::BTreeMap;

use tagger_core::artifact::{Artifact, BASE_FORMAT_VERSION};
use tagger_core::predictor::{PredictOptions, Predictor};

const BIN: &[u8] = include_bytes!("fixtures/format1/tiny.bin");
const EXPECTED: &str = include_str!("fixtures/format1/tiny-predictions.json");

#[test]
fn a_format1_artifact_loads_and_predicts_as_its_writer_did() {
    assert_eq!(u32::from_le_bytes(BIN[8..12].try_into().unwrap()), 1);
    let artifact = Artifact::from_bytes(BIN).expect("format 1 still loads");
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(artifact.info.version, expected["version"].as_str().unwrap());
    // The training record carried over: settings and test metrics as the writer stored them.
    let training = artifact.info.training();
    assert!(
        training["settings"]["train"]["hidden"].is_array(),
        "{training}"
    );
    assert_eq!(
        artifact.info.metrics.as_ref().map(|m| m.micro_f1),
        training["metrics"]["micro_f1"].as_f64()
    );

    let model = Predictor::new(artifact.clone());
    let opts = PredictOptions {
        scores: true,
        ..PredictOptions::default()
    };
    let questions = expected["questions"].as_array().unwrap();
    let predictions = expected["predictions"].as_array().unwrap();
    assert_eq!(questions.len(), predictions.len());
    for (q, want) in questions.iter().zip(predictions) {
        let got = model.predict(q.as_str().unwrap(), &opts).unwrap();
        let want_scores: BTreeMap<String, f32> =
            serde_json::from_value(want["scores"].clone()).unwrap();
        assert_eq!(got.scores.as_ref().unwrap(), &want_scores, "{q}");
        let want_tags: Vec<String> = serde_json::from_value(want["tags"].clone()).unwrap();
        assert_eq!(got.tags, want_tags, "{q}");
    }

    // Saving writes the current format (quantised weights): the same tags, and from then on
    // save/load cycles are byte-identical.
    let resaved = artifact.to_bytes().unwrap();
    assert_eq!(
        u32::from_le_bytes(resaved[8..12].try_into().unwrap()),
        BASE_FORMAT_VERSION
    );
    let reloaded = Artifact::from_bytes(&resaved).unwrap();
    assert_eq!(reloaded.to_bytes().unwrap(), resaved);
    let requantised = Predictor::new(reloaded);
    for q in questions {
        let q = q.as_str().unwrap();
        assert_eq!(
            requantised.predict(q, &opts).unwrap().tags,
            model.predict(q, &opts).unwrap().tags,
            "{q}"
        );
    }
}
