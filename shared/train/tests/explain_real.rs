//! DeepSHAP additivity on a real model: the default preset trained on so-titles
//! (`../shared/data/so-titles`, skipped when absent), explained for every tag it predicts on 50
//! test questions. The attributions of one tag must add up to its probability minus the
//! background's mean probability.

use std::path::PathBuf;

use tagger_core::explain::WordOptions;
use tagger_core::predictor::PredictOptions;
use tagger_train::config::{Preset, Settings};
use tagger_train::dataset::read_csv_path;
use tagger_train::pipeline::{self, TrainData};

const QUESTIONS: usize = 50;

fn so_titles() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/so-titles"
    ));
    if dir.join("train.csv").exists() && dir.join("test.csv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} not found (the shared datasets sit beside the repo)",
            dir.display()
        );
        None
    }
}

#[test]
fn attributions_add_up_to_probability_minus_expected_value_on_so_titles() {
    let Some(dir) = so_titles() else {
        return;
    };
    let settings = Settings::preset(Preset::Default);
    let (examples, load) = read_csv_path(&dir.join("train.csv"), &settings.csv).unwrap();
    let (test, _) = read_csv_path(&dir.join("test.csv"), &settings.csv).unwrap();
    let data = TrainData {
        examples,
        load,
        source: "so-titles".into(),
        sha256: "so-titles".into(),
    };
    let artifact = pipeline::train(data, None, &settings, "2026-01-01T00:00:00Z", &mut |_| {})
        .unwrap()
        .artifact;
    assert!(!artifact.background.is_empty());
    let model = tagger_core::Predictor::new(artifact);

    let mut checked = 0usize;
    for example in test.iter().take(QUESTIONS) {
        let prediction = model
            .predict(&example.text, &PredictOptions::default())
            .unwrap();
        let features = model.features(&example.text).unwrap();
        let outputs: Vec<usize> = prediction
            .tags
            .iter()
            .map(|t| model.labels().index(t).unwrap() as usize)
            .collect();
        let attributions = model
            .explainer()
            .unwrap()
            .shap_values(&features, &outputs)
            .unwrap();
        assert_eq!(attributions.len(), outputs.len());
        for (attr, (tag, &p)) in attributions
            .iter()
            .zip(prediction.tags.iter().zip(&prediction.probabilities))
        {
            let sum: f64 = attr.features.iter().map(|&(_, v)| v).sum();
            let gap = (sum - (attr.probability - attr.expected_value)).abs();
            assert!(
                gap <= 1e-6,
                "{tag} on {:?}: sum {sum} vs p {} - E {} (gap {gap:e})",
                example.text,
                attr.probability,
                attr.expected_value
            );
            // The explained probability is the one the model predicted (f64 vs f32 forward).
            assert!(
                (attr.probability - f64::from(p)).abs() <= 1e-4,
                "{tag}: explained {} vs predicted {p}",
                attr.probability
            );
            checked += 1;
        }
        // The word-level answer reports the same probabilities and baselines.
        let explained = model
            .explain(&example.text, &prediction.tags, &WordOptions::default())
            .unwrap();
        for (t, attr) in explained.tags.iter().zip(&attributions) {
            assert_eq!(t.probability, attr.probability);
            assert_eq!(t.expected_value, attr.expected_value);
        }
    }
    eprintln!("checked additivity for {checked} (question, tag) pairs");
    assert!(
        checked >= QUESTIONS / 2,
        "only {checked} predicted tags over {QUESTIONS} questions: the check saw too little"
    );
}
