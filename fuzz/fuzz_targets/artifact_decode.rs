//! Artifact decoding, then prediction and explanation with whatever decoded.
//!
//! Each input is decoded twice: as given (header checks: magic, version, length, digest) and,
//! when it starts with the magic, with its length field and payload digest rewritten to match,
//! so that mutations of the payload reach the payload decoders (bincode, format 3's inflate and
//! weight unpacking) and the consistency checks instead of stopping at the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagger_core::artifact::{HEADER_LEN, MAGIC};
use tagger_core::explain::WordOptions;
use tagger_core::{Artifact, PredictOptions, Predictor};

const QUESTION: &str =
    "<p>How do I parse JSON in <b>JavaScript</b>?</p><pre><code>JSON.parse(s)</code></pre>";

fn exercise(bytes: &[u8]) {
    let Ok(artifact) = Artifact::from_bytes(bytes) else {
        return;
    };
    // Whatever decodes must be usable: no panic from here on.
    let predictor = Predictor::new(artifact);
    let _ = predictor.summary();
    let opts = PredictOptions {
        scores: true,
        ..PredictOptions::default()
    };
    if let Ok(prediction) = predictor.predict(QUESTION, &opts) {
        let _ = predictor.predict_features(&[], &PredictOptions::default());
        let mut tags = prediction.tags;
        tags.extend(predictor.labels().names().iter().take(4).cloned());
        let _ = predictor.explain(QUESTION, &tags, &WordOptions::default());
    }
}

/// `bytes` with the header's payload length and SHA-256 made to match the payload.
fn resealed(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < HEADER_LEN || !bytes.starts_with(MAGIC) {
        return None;
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    Some(tagger_core::artifact::seal(version, &bytes[HEADER_LEN..]))
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if let Some(fixed) = resealed(data) {
        if fixed != data {
            exercise(&fixed);
        }
    }
});
