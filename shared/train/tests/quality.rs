//! Quality bars on the real datasets beside the repo (`../shared/data`), default and seed presets.
//! The peers' figures are the ones measured on this machine and quoted in the foundation issue.

use std::path::PathBuf;

use tagger_train::config::{Preset, Settings};
use tagger_train::dataset::read_csv_path;
use tagger_train::metrics::Report;
use tagger_train::nn::Training;
use tagger_train::pipeline::{self, TestData, TrainData, Trained};

fn data_dir(name: &str) -> Option<PathBuf> {
    let dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(name);
    if dir.join("train.csv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} not found (the shared datasets sit beside the repo)",
            dir.display()
        );
        None
    }
}

/// A set committed in the repo under `benchmarks/data`.
fn repo_data_dir(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../benchmarks/data"
    ))
    .join(name);
    if dir.join("train.csv").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} not found", dir.display());
        None
    }
}

fn train_on(name: &str, settings: &Settings) -> Option<Trained> {
    train_in(data_dir(name)?, name, settings)
}

fn train_in(dir: PathBuf, name: &str, settings: &Settings) -> Option<Trained> {
    let (examples, load) = read_csv_path(&dir.join("train.csv"), &settings.csv).unwrap();
    let (test, test_load) = read_csv_path(&dir.join("test.csv"), &settings.csv).unwrap();
    let data = TrainData {
        examples,
        load,
        source: name.into(),
        sha256: name.into(),
    };
    let trained = pipeline::train(
        data,
        Some(TestData {
            examples: test,
            load: test_load,
        }),
        settings,
        "2026-01-01T00:00:00Z",
        &mut |_| {},
    )
    .unwrap();
    let m = trained.report.metrics.as_ref().unwrap();
    eprintln!(
        "{name} {:?}: P@1 {:.3} micro-F1 {:.3} macro-F1 {:.3} exact {:.3} binary-acc {:.4} ({} epochs, fit {:.2}s)",
        settings.preset,
        m.p_at_1,
        m.micro_f1,
        m.macro_f1,
        m.exact_match,
        m.binary_accuracy,
        trained.report.history.len(),
        trained.report.timings.fit_seconds
    );
    Some(trained)
}

fn metrics(t: &Trained) -> &Report {
    t.report.metrics.as_ref().unwrap()
}

#[test]
fn default_preset_beats_peers_on_cooking() {
    let Some(t) = train_on("cooking", &Settings::preset(Preset::Default)) else {
        return;
    };
    let m = metrics(&t);
    // Best peer here: TF-IDF bigrams + one-vs-rest LR 0.667 / 0.392 / 0.159. Measured with the
    // tune example (benchmarks/quality.md): 0.694 / 0.533 / 0.338.
    assert!(m.p_at_1 >= 0.68, "P@1 {}", m.p_at_1);
    assert!(m.micro_f1 >= 0.52, "micro-F1 {}", m.micro_f1);
    assert!(m.macro_f1 >= 0.32, "macro-F1 {}", m.macro_f1);
}

#[test]
fn default_preset_beats_peers_on_so_titles() {
    let Some(t) = train_on("so-titles", &Settings::preset(Preset::Default)) else {
        return;
    };
    let m = metrics(&t);
    // Best peer here: fastText one-vs-all 0.789 / 0.639 / 0.459. Measured with the tune example
    // (benchmarks/quality.md): 0.805 / 0.675 / 0.532.
    assert!(m.p_at_1 >= 0.80, "P@1 {}", m.p_at_1);
    assert!(m.micro_f1 >= 0.66, "micro-F1 {}", m.micro_f1);
    assert!(m.macro_f1 >= 0.52, "macro-F1 {}", m.macro_f1);
}

#[test]
fn default_preset_beats_peers_on_so_nlp() {
    let Some(t) = train_on("so-nlp", &Settings::preset(Preset::Default)) else {
        return;
    };
    let m = metrics(&t);
    // Peers (../shared/data/so-nlp/README.md): TF-IDF uni+bigrams + one-vs-rest LR 0.865 / 0.583
    // / 0.037, fastText one-vs-all 0.843 / 0.560 / 0.056. Measured with the tune example
    // (benchmarks/quality.md): 0.877 / 0.621 / 0.089 with repeat features (0.862 / 0.617 /
    // 0.095 without): ahead of both on every figure. Those micro-F1s left out test tags unknown
    // to training (293 of 10,301), which the peers count as missed; counted, release 0.5.1's
    // CLI measures 0.876 / 0.614 / 0.093 (seed 22).
    assert!(m.p_at_1 >= 0.870, "P@1 {}", m.p_at_1);
    assert!(m.micro_f1 >= 0.60, "micro-F1 {}", m.micro_f1);
    assert!(m.macro_f1 >= 0.08, "macro-F1 {}", m.macro_f1);
}

#[test]
fn default_preset_beats_peers_on_so_html() {
    let Some(dir) = repo_data_dir("so-html") else {
        return;
    };
    let settings = Settings::preset(Preset::Default);
    let Some(t) = train_in(dir.clone(), "so-html", &settings) else {
        return;
    };
    let m = metrics(&t);
    // 796 real questions with raw HTML bodies (benchmarks/data/so-html). Peers on its fixed split
    // (benchmarks/peers.py): TF-IDF uni+bigrams + one-vs-rest LR 0.219 / 0.000 / 0.000, fastText
    // one-vs-all 0.206 / 0.029 / 0.007. Measured: 0.406 / 0.181 / 0.090 with auto-size's
    // small-data regime and its tags on one training row left untrained (327 of the 754 test
    // tags are on no training row and count as missed, as the peers count them; before release
    // 0.5.1 they were left out, and micro-F1 read 0.274); with the old count, 0.375 / 0.240 /
    // 0.079 with them trained, 0.244 / 0.151 / 0.034 with the preset's batch, width and decay,
    // and 0.013 / 0.029 / 0.003 before small sets got a patience of 100+ steps
    // (benchmarks/quality.md).
    assert!(m.p_at_1 >= 0.39, "P@1 {}", m.p_at_1);
    assert!(m.micro_f1 >= 0.17, "micro-F1 {}", m.micro_f1);
    assert!(m.macro_f1 >= 0.08, "macro-F1 {}", m.macro_f1);

    // The tags on a single training row, counted from the file: no output unit trained, yet
    // every one is in the model (and in the metrics above), never predicted.
    let (rows, _) = read_csv_path(&dir.join("train.csv"), &settings.csv).unwrap();
    let mut count = std::collections::HashMap::<&str, usize>::new();
    for e in &rows {
        for tag in &e.tags {
            *count.entry(tag.as_str()).or_default() += 1;
        }
    }
    let single: Vec<&str> = count
        .iter()
        .filter(|(_, &n)| n == 1)
        .map(|(&t, _)| t)
        .collect();
    assert!(
        single.len() > count.len() / 2,
        "{} of {}",
        single.len(),
        count.len()
    );
    assert_eq!(t.report.untrained_tags, single.len());
    let labels = &t.artifact.labels;
    assert_eq!(labels.len(), count.len(), "every training tag is a label");
    assert_eq!(t.artifact.model.n_outputs(), labels.len());
    let output = &t.artifact.model.layers().last().unwrap().weights;
    for tag in &single {
        let i = labels.encode(&[tag.to_string()])[0] as usize;
        assert!(
            output.column(i).iter().all(|&w| w == 0.0),
            "{tag} has weights"
        );
        let per_tag = m.per_tag.iter().find(|p| p.tag == *tag).unwrap();
        assert_eq!(per_tag.predicted, 0, "{tag} was predicted");
    }
}

#[test]
fn seed_preset_lands_near_the_keras_origin_on_so_titles() {
    let Some(t) = train_on("so-titles", &Settings::preset(Preset::Seed)) else {
        return;
    };
    let m = metrics(&t);
    let test = &t.test_examples;
    let texts: Vec<String> = test
        .iter()
        .map(|e| tagger_core::text::normalise(&e.text).into_owned())
        .collect();
    let x = t
        .artifact
        .tokenizer
        .encode_all(texts.iter().map(String::as_str));
    let probs = t.artifact.model.predict_proba_batch(&x);
    let (above, mean_max) = confidence(&probs);
    let labels = &t.artifact.labels;
    let y_rows: Vec<Vec<u32>> = test.iter().map(|e| labels.encode(&e.tags)).collect();
    let y: tagger_core::sparse::SparseRows = y_rows.iter().map(Vec::as_slice).collect();
    let at_half = tagger_train::metrics::evaluate(
        &probs,
        &y,
        &tagger_core::thresholds::Thresholds::fixed(0.5, labels.len()),
        labels.names(),
    );
    eprintln!(
        "seed preset: {above} outputs > 0.8, mean max prob {mean_max:.3}, micro-F1 at 0.5 {:.3}",
        at_half.micro_f1
    );
    // The Keras origin pipeline run on this machine: P@1 0.423, micro-F1 0.067. The real Keras
    // model of the golden folder reproduces both only with micro-F1 taken at 0.5 (at 0.8 it
    // scores 0.004, see `keras_golden_model_scores_like_the_origin_run`): compare there.
    assert!((m.p_at_1 - 0.423).abs() <= 0.03, "P@1 {}", m.p_at_1);
    assert!(
        (at_half.micro_f1 - 0.067).abs() <= 0.03,
        "micro-F1 at 0.5 {}",
        at_half.micro_f1
    );
    // At the origin's serving threshold both models return almost nothing.
    assert!(m.micro_f1 < 0.03, "micro-F1 at 0.8 {}", m.micro_f1);
}

#[test]
fn same_data_and_seed_give_byte_identical_artifacts() {
    let settings = Settings::preset(Preset::Default);
    let Some(a) = train_on("so-titles", &settings) else {
        return;
    };
    let b = train_on("so-titles", &settings).unwrap();
    assert_eq!(
        a.artifact.to_bytes().unwrap(),
        b.artifact.to_bytes().unwrap()
    );
}

/// Output-probability summary: how many (row, tag) cells exceed 0.8, and the mean top probability.
fn confidence(probs: &ndarray::Array2<f32>) -> (usize, f64) {
    let above = probs.iter().filter(|&&p| p > 0.8).count();
    let mean_max = probs
        .outer_iter()
        .map(|r| f64::from(r.iter().fold(0.0f32, |a, &p| a.max(p))))
        .sum::<f64>()
        / probs.nrows().max(1) as f64;
    (above, mean_max)
}

/// The real Keras model of the origin's architecture (../shared/golden/shap/so-titles: tf_keras
/// 2.21, seed 42, trained on so-titles/train.csv) scored through our tokenizer and metrics lands
/// where the Keras origin run did (P@1 0.423, micro-F1 0.067), with that micro-F1 taken at 0.5:
/// the reference the seed preset is held to, read through this pipeline's tokenizer and metrics.
#[test]
fn keras_golden_model_scores_like_the_origin_run() {
    use ndarray::{Array1, Array2};
    use ndarray_npy::read_npy;
    use tagger_core::labels::LabelSet;
    use tagger_core::model::{Dense, Mlp};
    use tagger_core::sparse::SparseRows;
    use tagger_core::thresholds::Thresholds;
    use tagger_core::tokenizer::Tokenizer;

    let golden = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden/shap/so-titles"
    ));
    let Some(dir) = data_dir("so-titles") else {
        return;
    };
    if !golden.join("dense_kernel.npy").exists() {
        eprintln!("skipped: {} not found", golden.display());
        return;
    }
    let settings = Settings::preset(Preset::Seed);
    let (train, _) = read_csv_path(&dir.join("train.csv"), &settings.csv).unwrap();
    let (test, _) = read_csv_path(&dir.join("test.csv"), &settings.csv).unwrap();
    let norm = |t: &str| tagger_core::text::normalise(t).into_owned();
    let train_texts: Vec<String> = train.iter().map(|e| norm(&e.text)).collect();
    let tokenizer =
        Tokenizer::fit(&settings.tokenizer, train_texts.iter().map(String::as_str)).unwrap();
    let vocab: serde_json::Value =
        serde_json::from_slice(&std::fs::read(golden.join("tokenizer_vocab.json")).unwrap())
            .unwrap();
    let keras_vocab: Vec<&str> = vocab["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // Same 399 words; ties in count may be ranked differently (Keras breaks them by first
    // sight, and the golden run saw the rows in another order), so encode with its columns.
    let mut ours: Vec<&str> = tokenizer.vocabulary()[..keras_vocab.len()]
        .iter()
        .map(String::as_str)
        .collect();
    let mut theirs = keras_vocab.clone();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
    let column: std::collections::HashMap<&str, u32> = keras_vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (*w, i as u32 + 1))
        .collect();

    let layer = |name: &str| Dense {
        weights: read_npy::<_, Array2<f32>>(golden.join(format!("{name}_kernel.npy"))).unwrap(),
        bias: read_npy::<_, Array1<f32>>(golden.join(format!("{name}_bias.npy"))).unwrap(),
    };
    let model = Mlp::from_layers(vec![layer("dense"), layer("dense_1"), layer("dense_2")]).unwrap();
    // Keras' MultiLabelBinarizer columns are the sorted tag names, as LabelSet's.
    let labels = LabelSet::fit(train.iter().map(|e| e.tags.as_slice()));
    assert_eq!(labels.len(), model.n_outputs());
    let x_rows: Vec<Vec<u32>> = test
        .iter()
        .map(|e| {
            let text = norm(&e.text);
            let mut row: Vec<u32> = tokenizer
                .tokens(&text)
                .iter()
                .filter_map(|t| column.get(t.as_ref()).copied())
                .collect();
            row.sort_unstable();
            row.dedup();
            row
        })
        .collect();
    let x: SparseRows = x_rows.iter().map(Vec::as_slice).collect();
    let y_rows: Vec<Vec<u32>> = test.iter().map(|e| labels.encode(&e.tags)).collect();
    let y: SparseRows = y_rows.iter().map(Vec::as_slice).collect();
    let probs = model.predict_proba_batch(&x);
    let m = tagger_train::metrics::evaluate(
        &probs,
        &y,
        &Thresholds::fixed(0.8, labels.len()),
        labels.names(),
    );
    let (above, mean_max) = confidence(&probs);

    let at_half = tagger_train::metrics::evaluate(
        &probs,
        &y,
        &Thresholds::fixed(0.5, labels.len()),
        labels.names(),
    );
    eprintln!(
        "keras golden model on so-titles test: P@1 {:.3} micro-F1 {:.3} at 0.8, {:.3} at 0.5; {above} outputs > 0.8, mean max prob {mean_max:.3}",
        m.p_at_1, m.micro_f1, at_half.micro_f1
    );
    assert!((m.p_at_1 - 0.423).abs() <= 0.03, "P@1 {}", m.p_at_1);
    // The origin's 0.067 is micro-F1 at 0.5; at the 0.8 serving threshold almost nothing fires.
    assert!(
        (at_half.micro_f1 - 0.067).abs() <= 0.03,
        "micro-F1 at 0.5 {}",
        at_half.micro_f1
    );
    assert!(m.micro_f1 < 0.03, "micro-F1 at 0.8 {}", m.micro_f1);
}
