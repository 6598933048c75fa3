//! Where an artifact's load time goes: SHA-256 of the file alone, then the whole streaming
//! decode as a download feeds it (16 KiB pieces, both digests checked), then building the
//! predictor and answering one question; best of 20 in-process runs each. Then the latency of
//! one question (median over 2,000 answers of each question given) as loaded (first layer kept
//! coded) and with the network expanded to `f32` weights.
//!
//! `cargo run --release -p tagger-core --example loadtime -- MODEL.bin ["question"...]`

use std::time::Instant;

use tagger_core::artifact::{Artifact, Decoder};
use tagger_core::Predictor;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: loadtime MODEL.bin [QUESTION...]");
    let mut questions: Vec<String> = args.collect();
    if questions.is_empty() {
        questions.push("How do I keep chicken stock?".into());
    }
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
            .predict(&questions[0], &Default::default())
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
    let loaded = Artifact::from_bytes(&bytes).expect("decodes");
    let mut expanded = loaded.clone();
    expanded.model = loaded.model.expanded().into_owned();
    for (name, artifact) in [("loaded", loaded), ("expanded", expanded)] {
        let predictor = Predictor::new(artifact);
        for q in &questions {
            let mut times: Vec<f64> = (0..2000)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(
                        predictor
                            .predict(std::hint::black_box(q), &Default::default())
                            .expect("predicts"),
                    );
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "{name}: {:.2} µs median ({:.2}-{:.2} µs, 10th-90th percentile) for {} B: {q:?}",
                times[1000],
                times[200],
                times[1800],
                q.len()
            );
        }
    }
}
