//! A test tag no training row carried is a tag the question has: the report counts it as missed,
//! as the retraining gate, `benchmarks/peers.py` and `benchmarks/minilm/reference.py` do.
//! Leaving it out scored the model on its own tags only (so-nlp: 293 of 10,301 test tags).

use tagger_core::Predictor;
use tagger_train::config::Settings;
use tagger_train::dataset::{read_csv, CsvOptions, Example};
use tagger_train::metrics::Report;
use tagger_train::pipeline::{self, TestData, TrainData};

fn examples(csv: &str) -> Vec<Example> {
    read_csv(csv.as_bytes(), &CsvOptions::default()).unwrap().0
}

fn training_rows() -> Vec<Example> {
    let mut csv = String::from("tags,text\n");
    for i in 0..60 {
        csv += &format!("fruit,apple pie number{}\n", i % 7);
        csv += &format!("veg,carrot soup number{}\n", i % 7);
    }
    examples(&csv)
}

/// Test rows: every one carries a tag the training rows never had (`nut` twice on one row
/// counts once, as a known tag repeated does).
fn test_rows() -> Vec<Example> {
    examples(
        "tags,text\n\
         \"fruit,nut\",apple pie number1\n\
         \"veg,nut,nut\",carrot soup number2\n\
         \"fruit,seed\",apple pie number3\n",
    )
}

/// Micro recall and F1 from what the model serves for each row, every distinct test tag
/// counted: the figures the report must give.
fn served_micro(model: &Predictor, rows: &[Example]) -> (f64, f64) {
    let (mut tp, mut predicted, mut actual) = (0u64, 0u64, 0u64);
    for row in rows {
        let mut truth: Vec<&str> = row.tags.iter().map(String::as_str).collect();
        truth.sort_unstable();
        truth.dedup();
        let served = model.predict(&row.text, &Default::default()).unwrap().tags;
        tp += served
            .iter()
            .filter(|t| truth.contains(&t.as_str()))
            .count() as u64;
        predicted += served.len() as u64;
        actual += truth.len() as u64;
    }
    (
        tp as f64 / actual as f64,
        2.0 * tp as f64 / (predicted + actual) as f64,
    )
}

fn assert_counts_unknown_tags(report: &Report, model: &Predictor, rows: &[Example]) {
    let (recall, f1) = served_micro(model, rows);
    // The model learns the two known tags: without the unknown ones recall would be 1.
    assert!(recall > 0.0 && recall < 0.7, "recall {recall}");
    assert!((report.micro_recall - recall).abs() < 1e-12, "{report:?}");
    assert!((report.micro_f1 - f1).abs() < 1e-12, "{report:?}");
    // Macro-F1 stays over the tags the model knows; P@1 over every row.
    assert_eq!(report.per_tag.len(), model.labels().len());
    assert_eq!(report.examples, rows.len());
}

#[test]
fn the_training_report_counts_test_tags_unknown_to_training_as_missed() {
    let mut s = Settings {
        refit: false,
        ..Settings::default()
    };
    s.train.hidden = vec![16];
    s.train.epochs = 40;
    s.train.batch_size = 16;
    s.train.dropout = 0.0;
    s.train.early_stopping_patience = 0;
    let trained = pipeline::train(
        TrainData {
            examples: training_rows(),
            load: Default::default(),
            source: "mem".into(),
            sha256: "0".into(),
        },
        Some(TestData {
            examples: test_rows(),
            load: Default::default(),
        }),
        &s,
        "2026-01-01T00:00:00Z",
        &mut |_| {},
    )
    .unwrap();
    // `nut` (once per row), `seed`.
    assert_eq!(trained.report.unknown_test_tags, 3);
    let model = Predictor::new(trained.artifact);
    let report = trained.report.metrics.as_ref().unwrap();
    assert_counts_unknown_tags(report, &model, &test_rows());
    // `tagger eval` scores a published model the same way.
    let again = pipeline::evaluate(&model, &test_rows());
    assert_counts_unknown_tags(&again, &model, &test_rows());
    assert_eq!(&again, report);
}
