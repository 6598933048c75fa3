//! Where an artifact's load time goes: SHA-256 of the file alone, then the whole streaming
//! decode as a download feeds it (16 KiB pieces, both digests checked), then building the
//! predictor and answering one question; best of 20 in-process runs each.
//!
//! `cargo run --release -p tagger-core --example loadtime -- MODEL.bin`

use std::time::Instant;

use tagger_core::artifact::{Artifact, Decoder};
use tagger_core::Predictor;

fn main() {
    let path = std::env::args().nth(1).expect("usage: loadtime MODEL.bin");
    let bytes = std::fs::read(&path).expect("readable artifact");
    let digest = Artifact::sha256_hex(&bytes);
    let mut best = [f64::MAX; 3];
    for _ in 0..20 {
        let t = Instant::now();
        let _ = Artifact::sha256_hex(&bytes);
        let sha = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let mut decoder = Decoder::expecting_sha256(&digest);
        for piece in bytes.chunks(16 << 10) {
            decoder.update(piece).expect("decodes");
        }
        let artifact = decoder.finish().expect("decodes");
        let decode = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let predictor = Predictor::new(artifact);
        let _ = predictor
            .predict("How do I keep chicken stock?", &Default::default())
            .expect("predicts");
        let first = t.elapsed().as_secs_f64() * 1e3;
        for (b, v) in best.iter_mut().zip([sha, decode, first]) {
            *b = b.min(v);
        }
    }
    println!(
        "{path}: {} bytes; best of 20: SHA-256 {:.2} ms, streaming decode {:.2} ms, predictor + first answer {:.2} ms",
        bytes.len(),
        best[0],
        best[1],
        best[2]
    );
}
