//! Quality of a trained model with its weights rounded to `bits` per weight (per-row scales),
//! against the f32 model, on a test CSV: how far artifacts can shrink.
//!
//! `cargo run --release -p tagger-train --example quantize -- MODEL.bin TEST.csv [bits...]`

use tagger_core::{Artifact, Predictor};
use tagger_train::dataset::{read_csv_path, CsvOptions};
use tagger_train::pipeline;

fn quantize_rows(w: &mut ndarray::Array2<f32>, bits: u32) {
    let levels = ((1u32 << (bits - 1)) - 1) as f32;
    for mut row in w.rows_mut() {
        let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
        if max == 0.0 {
            continue;
        }
        let scale = max / levels;
        row.mapv_inplace(|v| (v / scale).round().clamp(-levels, levels) * scale);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bytes = std::fs::read(&args[0]).expect("model file");
    let artifact = Artifact::from_bytes(&bytes).expect("model");
    let (rows, _) = read_csv_path(args[1].as_ref(), &CsvOptions::default()).expect("test csv");
    let base = pipeline::evaluate(&Predictor::new(artifact.clone()), &rows);
    println!(
        "f32: P@1 {:.4} micro {:.4} macro {:.4}",
        base.p_at_1, base.micro_f1, base.macro_f1
    );
    for bits in args[2..].iter().map(|b| b.parse::<u32>().expect("bits")) {
        for first_only in [true, false] {
            let mut a = artifact.clone();
            let n = a.model.layers().len();
            for l in 0..n {
                if l == 0 || !first_only {
                    quantize_rows(&mut a.model.layers_mut()[l].weights, bits);
                }
            }
            let m = pipeline::evaluate(&Predictor::new(a), &rows);
            println!(
                "{bits} bits ({}): P@1 {:+.4} micro {:+.4} macro {:+.4}",
                if first_only {
                    "first layer"
                } else {
                    "all layers"
                },
                m.p_at_1 - base.p_at_1,
                m.micro_f1 - base.micro_f1,
                m.macro_f1 - base.macro_f1
            );
        }
    }
}
