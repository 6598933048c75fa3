//! Time to explain one question against the 200 background rows of the golden so-titles model
//! (../shared/golden/shap/so-titles, the origin's 400-50-25-100 network); shap 0.51's
//! DeepExplainer needs 13.1 s for 25 questions x 100 outputs there (README.md beside the files).
//!
//! `cargo bench -p tagger-shared --bench explain`; medians land in target/criterion/*/new/estimates.json.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{Array1, Array2};
use std::sync::Arc;

use ndarray_npy::read_npy;
use tagger_core::explain::{shap_values, Explainer};
use tagger_core::model::{Dense, Mlp};
use tagger_core::sparse::SparseRows;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/golden/shap");

fn sparse(dense: &Array2<f32>) -> SparseRows {
    let mut rows = SparseRows::new();
    for row in dense.rows() {
        let ones: Vec<u32> = row
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v != 0.0)
            .map(|(i, _)| i as u32)
            .collect();
        rows.push_row(&ones);
    }
    rows
}

fn load(name: &str) -> Option<(Mlp, SparseRows, SparseRows)> {
    let dir = Path::new(GOLDEN).join(name);
    if !dir.join("dense_kernel.npy").exists() {
        eprintln!("skipping {name}: {} is absent", dir.display());
        return None;
    }
    let layer = |n: &str| Dense {
        weights: read_npy::<_, Array2<f32>>(dir.join(format!("{n}_kernel.npy"))).expect("kernel"),
        bias: read_npy::<_, Array1<f32>>(dir.join(format!("{n}_bias.npy"))).expect("bias"),
    };
    let model = Mlp::from_layers(vec![layer("dense"), layer("dense_1"), layer("dense_2")])
        .expect("layers chain");
    let background = sparse(&read_npy(dir.join("background.npy")).expect("background"));
    let inputs = sparse(&read_npy(dir.join("explain_inputs.npy")).expect("inputs"));
    Some((model, background, inputs))
}

/// The origin's prediction: tags above 0.8, or the top tag when none is (so there is always one).
fn predicted(model: &Mlp, x: &[u32]) -> Vec<usize> {
    let p = model.predict_proba(x);
    let above: Vec<usize> = (0..p.len()).filter(|&j| p[j] > 0.8).collect();
    if above.is_empty() {
        (0..p.len())
            .max_by(|&a, &b| p[a].total_cmp(&p[b]))
            .into_iter()
            .collect()
    } else {
        above
    }
}

fn bench(c: &mut Criterion) {
    for name in ["so-titles", "synthetic"] {
        let Some((model, background, inputs)) = load(name) else {
            continue;
        };
        let questions: Vec<(Vec<u32>, Vec<usize>)> = inputs
            .iter()
            .map(|x| (x.to_vec(), predicted(&model, x)))
            .collect();
        let all: Vec<usize> = (0..model.n_outputs()).collect();
        let n_predicted: usize = questions.iter().map(|(_, o)| o.len()).sum();
        eprintln!(
            "{name}: {} questions, {n_predicted} predicted tags in all",
            questions.len()
        );

        let mut group = c.benchmark_group(format!("explain-{name}"));
        let mut i = 0;
        group.bench_function("predicted-tags-one-shot", |b| {
            b.iter(|| {
                let (x, outputs) = &questions[i % questions.len()];
                i += 1;
                black_box(shap_values(&model, &background, x, outputs).expect("explains"))
            })
        });
        let explainer = Explainer::new(Arc::new(model.clone()), &background).expect("background");
        group.bench_function("predicted-tags-prepared", |b| {
            b.iter(|| {
                let (x, outputs) = &questions[i % questions.len()];
                i += 1;
                black_box(explainer.shap_values(x, outputs).expect("explains"))
            })
        });
        group.bench_function("all-outputs-prepared", |b| {
            b.iter(|| {
                let (x, _) = &questions[i % questions.len()];
                i += 1;
                black_box(explainer.shap_values(x, &all).expect("explains"))
            })
        });
        group.bench_function("background-forward", |b| {
            b.iter(|| {
                black_box(Explainer::new(Arc::new(model.clone()), &background).expect("background"))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
