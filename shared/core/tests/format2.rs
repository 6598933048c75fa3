//! Format-2 artifacts (8-bit-or-narrower weights in one bincode payload, before format 3 moved
//! the weight codes behind a deflated meta block) still load and predict exactly as the build
//! that wrote them did.
//!
//! `fixtures/format2/tiny.bin` and `tiny-predictions.json` were written at commit 35e0df4 (the
//! last to write format 2) by `tagger_testkit::tiny_artifact(1)`, `Artifact::to_bytes` and
//! `Predictor::predict` with scores; the JSON's `made_by` field says so.

use std::collections::BTreeMap;

use tagger_core::artifact::{Artifact, BASE_FORMAT_VERSION};
use tagger_core::predictor::{PredictOptions, Predictor};

const BIN: &[u8] = include_bytes!("fixtures/format2/tiny.bin");
const EXPECTED: &str = include_str!("fixtures/format2/tiny-predictions.json");

fn scores() -> PredictOptions {
    PredictOptions {
        scores: true,
        ..PredictOptions::default()
    }
}

#[test]
fn a_format2_artifact_loads_and_predicts_as_its_writer_did() {
    assert_eq!(u32::from_le_bytes(BIN[8..12].try_into().unwrap()), 2);
    let artifact = Artifact::from_bytes(BIN).expect("format 2 still loads");
    let digest = Artifact::sha256_hex(BIN);
    assert_eq!(
        Artifact::from_bytes_with_digest(BIN, &digest).unwrap(),
        artifact
    );
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(artifact.info.version, expected["version"].as_str().unwrap());

    let model = Predictor::new(artifact.clone());
    let questions = expected["questions"].as_array().unwrap();
    let predictions = expected["predictions"].as_array().unwrap();
    assert_eq!(questions.len(), predictions.len());
    for (q, want) in questions.iter().zip(predictions) {
        let got = model.predict(q.as_str().unwrap(), &scores()).unwrap();
        let want_scores: BTreeMap<String, f32> =
            serde_json::from_value(want["scores"].clone()).unwrap();
        assert_eq!(got.scores.as_ref().unwrap(), &want_scores, "{q}");
        let want_tags: Vec<String> = serde_json::from_value(want["tags"].clone()).unwrap();
        assert_eq!(got.tags, want_tags, "{q}");
    }

    // Saving writes the current format, smaller, with the same tags (the scales move onto
    // format 3's grid by at most 2^-8 of a step); from then on save/load cycles are
    // byte-identical.
    let resaved = artifact.to_bytes().unwrap();
    assert_eq!(
        u32::from_le_bytes(resaved[8..12].try_into().unwrap()),
        BASE_FORMAT_VERSION
    );
    assert!(
        resaved.len() < BIN.len(),
        "{} vs {}",
        resaved.len(),
        BIN.len()
    );
    let reloaded = Artifact::from_bytes(&resaved).unwrap();
    assert_eq!(reloaded.to_bytes().unwrap(), resaved);
    let resaved_model = Predictor::new(reloaded);
    for q in questions {
        let q = q.as_str().unwrap();
        let (before, after) = (
            model.predict(q, &scores()).unwrap(),
            resaved_model.predict(q, &scores()).unwrap(),
        );
        assert_eq!(after.tags, before.tags, "{q}");
        for (tag, p) in before.scores.unwrap() {
            let q2 = after.scores.as_ref().unwrap()[&tag];
            assert!((p - q2).abs() < 1e-3, "{q}: {tag} {p} -> {q2}");
        }
    }
}
