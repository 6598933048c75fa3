//! DeepSHAP attributions agree with shap itself.
//!
//! Golden files: ../shared/golden/shap/{so-titles,synthetic}/ (see its README.md): Keras models in
//! the origin's architecture, attributions from shap 0.51.0 `DeepExplainer(model, X_train[:200])`
//! `.shap_values(X_test[:25])`, TensorFlow 2.21 (float32 forward pass).

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Axis};
use ndarray_npy::read_npy;
use tagger_core::explain::Explainer;
use tagger_core::model::{Dense, Mlp};
use tagger_core::sparse::SparseRows;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/golden/shap");

/// shap's float32 forward pass against our f64 one (README: NumPy reproduces to 8.2e-6).
const SHAP_TOLERANCE: f64 = 1e-4;
const OUTPUT_TOLERANCE: f64 = 1e-5;

fn folder(name: &str) -> Option<PathBuf> {
    let dir = Path::new(GOLDEN).join(name);
    if dir.join("shap_values.npy").exists() {
        Some(dir)
    } else {
        eprintln!("skipping: golden folder {} is absent", dir.display());
        None
    }
}

fn load_model(dir: &Path) -> Mlp {
    let layer = |name: &str| Dense {
        weights: read_npy::<_, Array2<f32>>(dir.join(format!("{name}_kernel.npy")))
            .expect("kernel"),
        bias: read_npy::<_, Array1<f32>>(dir.join(format!("{name}_bias.npy"))).expect("bias"),
    };
    Mlp::from_layers(vec![layer("dense"), layer("dense_1"), layer("dense_2")])
        .expect("golden layers chain")
}

/// Binary float rows -> indices of their ones.
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

struct Errors {
    output: f64,
    expected: f64,
    shap: f64,
    additivity: f64,
}

fn compare(name: &str) -> Option<Errors> {
    let dir = folder(name)?;
    let model = load_model(&dir);
    let background = sparse(&read_npy(dir.join("background.npy")).expect("background"));
    let inputs = sparse(&read_npy(dir.join("explain_inputs.npy")).expect("inputs"));
    let model_output: Array2<f64> = read_npy(dir.join("model_output.npy")).expect("model_output");
    let expected_value: Array1<f64> =
        read_npy(dir.join("expected_value.npy")).expect("expected_value");
    let golden: Array3<f64> = read_npy(dir.join("shap_values.npy")).expect("shap_values");
    let n_out = model.n_outputs();
    assert_eq!(golden.shape(), &[inputs.len(), model.n_inputs(), n_out]);

    let explainer =
        Explainer::new(std::sync::Arc::new(model.clone()), &background).expect("background rows");
    let mut e = Errors {
        output: 0.0,
        expected: 0.0,
        shap: 0.0,
        additivity: 0.0,
    };
    for (j, (&ours, &theirs)) in explainer
        .expected_values()
        .iter()
        .zip(&expected_value)
        .enumerate()
    {
        let d = (ours - theirs).abs();
        assert!(
            d <= OUTPUT_TOLERANCE,
            "{name}: expected_value[{j}] {ours} vs shap {theirs}"
        );
        e.expected = e.expected.max(d);
    }
    let outputs: Vec<usize> = (0..n_out).collect();
    for (row, x) in inputs.iter().enumerate() {
        let attrs = explainer.shap_values(x, &outputs).expect("valid outputs");
        let golden_row = golden.index_axis(Axis(0), row);
        for (j, attr) in attrs.iter().enumerate() {
            assert_eq!(attr.output, j);
            let d = (attr.probability - model_output[[row, j]]).abs();
            assert!(
                d <= OUTPUT_TOLERANCE,
                "{name}: row {row} output {j}: p {} vs {}",
                attr.probability,
                model_output[[row, j]]
            );
            e.output = e.output.max(d);
            let total: f64 = attr.features.iter().map(|&(_, v)| v).sum();
            e.additivity = e
                .additivity
                .max((total - (attr.probability - attr.expected_value)).abs());
            // Every feature, including those we report as zero.
            for i in 0..model.n_inputs() {
                let ours = attr.value(i as u32);
                let theirs = golden_row[[i, j]];
                let d = (ours - theirs).abs();
                assert!(
                    d <= SHAP_TOLERANCE,
                    "{name}: row {row} feature {i} output {j}: {ours} vs shap {theirs}"
                );
                e.shap = e.shap.max(d);
            }
        }
    }
    eprintln!(
        "{name}: max |diff| vs shap: model_output {:.2e}, expected_value {:.2e}, shap_values {:.2e}; additivity {:.2e}",
        e.output, e.expected, e.shap, e.additivity
    );
    Some(e)
}

#[test]
fn matches_shap_deep_explainer_on_so_titles() {
    if let Some(e) = compare("so-titles") {
        assert!(e.additivity < 1e-9, "additivity {}", e.additivity);
    }
}

#[test]
fn matches_shap_deep_explainer_on_synthetic() {
    if let Some(e) = compare("synthetic") {
        assert!(e.additivity < 1e-9, "additivity {}", e.additivity);
    }
}

/// The vocabulary behind the golden model's columns (column i = vocab[i - 1]; column 0 unused).
fn vocab(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("tokenizer_vocab.json")).expect("vocab");
    let json: serde_json::Value = serde_json::from_str(&text).expect("vocab json");
    json["vocab"]
        .as_array()
        .expect("vocab array")
        .iter()
        .map(|w| w.as_str().expect("word").to_string())
        .collect()
}

#[test]
fn summary_of_so_titles_ranks_words_by_total_attribution() {
    let Some(dir) = folder("so-titles") else {
        return;
    };
    let model = load_model(&dir);
    let background = sparse(&read_npy(dir.join("background.npy")).expect("background"));
    let inputs = sparse(&read_npy(dir.join("explain_inputs.npy")).expect("inputs"));
    let words = vocab(&dir);
    let name = |f: u32| {
        (f as usize)
            .checked_sub(1)
            .and_then(|i| words.get(i))
            .cloned()
    };
    let outputs = [0, 1, 2, 3, 4];
    let explainer = Explainer::new(std::sync::Arc::new(model), &background).expect("background");
    let summary = tagger_core::explain::summary(
        &explainer,
        &inputs,
        &outputs,
        |o| format!("tag {o}"),
        name,
        20,
    )
    .expect("summary");
    assert_eq!(summary.features.len(), 20);
    assert!(summary
        .features
        .windows(2)
        .all(|w| w[0].total() >= w[1].total()));
    // Every named word carries a positive mean attribution to some tag.
    assert!(summary
        .features
        .iter()
        .all(|f| f.mean_abs.iter().any(|&v| v > 0.0)));
}
