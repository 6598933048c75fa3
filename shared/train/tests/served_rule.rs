//! The metrics count exactly the tags the predictor serves: one decision rule for both.

use tagger_core::Predictor;
use tagger_train::dataset::{read_csv, CsvOptions};
use tagger_train::pipeline;

#[test]
fn tags_served_for_the_test_rows_are_the_ones_the_metrics_count() {
    let csv = tagger_testkit::tiny_csv();
    let (rows, _) = read_csv(csv.as_bytes(), &CsvOptions::default()).unwrap();
    let mut artifact = tagger_testkit::tiny_artifact(1);
    let model = Predictor::new(artifact.clone());
    // Put one tag's threshold exactly on a probability the model gives: `>=` must count it
    // served and predicted alike.
    let probs = model
        .predict(
            &rows[0].text,
            &tagger_core::PredictOptions {
                scores: true,
                ..Default::default()
            },
        )
        .unwrap()
        .scores
        .unwrap();
    let (tag, &p) = probs.iter().next().unwrap();
    let index = model.labels().index(tag).unwrap() as usize;
    artifact.thresholds.per_tag[index] = p;
    let model = Predictor::new(artifact);

    let report = pipeline::evaluate(&model, &rows);
    let mut predicted = vec![0u64; model.labels().len()];
    for row in &rows {
        for t in model.predict(&row.text, &Default::default()).unwrap().tags {
            predicted[model.labels().index(&t).unwrap() as usize] += 1;
        }
    }
    let counted: Vec<u64> = report.per_tag.iter().map(|t| t.predicted).collect();
    assert_eq!(counted, predicted);
    assert!(predicted[index] >= 1, "the row at the threshold is served");
}
