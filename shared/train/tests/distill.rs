//! Knowledge distillation through the pipeline: the teacher's probabilities become the targets
//! of the rows it knows, its other texts become unlabelled training rows, and test texts never
//! train anything.

use tagger_train::config::Settings;
use tagger_train::dataset::{read_csv, CsvOptions, Example};
use tagger_train::pipeline::{self, TestData, TrainData, Trained};
use tagger_train::teacher::Teacher;
use tagger_train::Error;

/// `apple ...` rows tagged `fruit`, `carrot ...` rows tagged `veg`, with filler words.
fn rows() -> Vec<Example> {
    let mut csv = String::from("tags,text\n");
    for i in 0..60 {
        csv += &format!("fruit,apple pie number{}\n", i % 7);
        csv += &format!("veg,carrot soup number{}\n", i % 7);
    }
    read_csv(csv.as_bytes(), &CsvOptions::default()).unwrap().0
}

fn data(examples: Vec<Example>) -> TrainData {
    TrainData {
        examples,
        load: Default::default(),
        source: "mem".into(),
        sha256: "0".into(),
    }
}

fn train(teacher: Option<&Teacher>, distill: f32, test: Vec<Example>) -> Trained {
    try_train(teacher, distill, test).unwrap()
}

fn try_train(
    teacher: Option<&Teacher>,
    distill: f32,
    test: Vec<Example>,
) -> tagger_train::Result<Trained> {
    train_from(Settings::default(), teacher, distill, test)
}

/// [`train`] with words alone, taught or not (sub-words pinned off).
fn train_words_only(teacher: Option<&Teacher>, distill: f32, test: Vec<Example>) -> Trained {
    let words_only = Settings::default()
        .apply(&tagger_train::config::Overrides {
            subwords: Some(0),
            ..Default::default()
        })
        .unwrap();
    train_from(words_only, teacher, distill, test).unwrap()
}

fn train_from(
    s: Settings,
    teacher: Option<&Teacher>,
    distill: f32,
    test: Vec<Example>,
) -> tagger_train::Result<Trained> {
    let mut s = Settings { refit: false, ..s };
    s.train.distill = distill;
    s.train.hidden = vec![16];
    s.train.epochs = 40;
    s.train.batch_size = 16;
    s.train.lr_decay = 1.0;
    s.train.dropout = 0.0;
    s.train.early_stopping_patience = 0;
    pipeline::train_taught(
        data(rows()),
        Some(TestData {
            examples: test,
            load: Default::default(),
        }),
        teacher,
        &s,
        "2026-01-01T00:00:00Z",
        &mut |_| true,
    )
}

/// Trains on `examples`, tested on `test` or else on the pipeline's own held-out split.
fn train_all(
    examples: Vec<Example>,
    test: Option<Vec<Example>>,
    teacher: Option<&Teacher>,
    s: &Settings,
) -> Trained {
    pipeline::train_taught(
        data(examples),
        test.map(|examples| TestData {
            examples,
            load: Default::default(),
        }),
        teacher,
        s,
        "2026-01-01T00:00:00Z",
        &mut |_| true,
    )
    .unwrap()
}

fn p(trained: &Trained, text: &str, tag: &str) -> f32 {
    let model = tagger_core::Predictor::new(trained.artifact.clone());
    let options = tagger_core::PredictOptions {
        scores: true,
        ..Default::default()
    };
    model.predict(text, &options).unwrap().scores.unwrap()[tag]
}

fn test_rows() -> Vec<Example> {
    rows().into_iter().take(4).collect()
}

/// A teacher that swaps the tags of every training text.
fn swapping_teacher(extra: &str) -> Teacher {
    let mut csv = String::from("text,teacher\n");
    for i in 0..7 {
        csv += &format!("apple pie number{i},veg=1\ncarrot soup number{i},fruit=1\n");
    }
    csv += extra;
    Teacher::from_reader(csv.as_bytes()).unwrap()
}

#[test]
fn the_teacher_sets_the_targets_by_its_weight() {
    let teacher = swapping_teacher("");
    let labels_only = train(Some(&teacher), 0.0, test_rows());
    let fruit = p(&labels_only, "apple pie", "fruit");
    assert!(fruit > 0.9, "{fruit}");
    let taught = train(Some(&teacher), 1.0, test_rows());
    let (veg, fruit) = (
        p(&taught, "apple pie", "veg"),
        p(&taught, "carrot soup", "fruit"),
    );
    assert!(veg > 0.9 && fruit > 0.9, "{veg} {fruit}");
    // Half and half: both tags about equally likely.
    let half = train(Some(&teacher), 0.5, test_rows());
    let (fruit, veg) = (p(&half, "apple pie", "fruit"), p(&half, "apple pie", "veg"));
    assert!(
        (fruit - 0.5).abs() < 0.15 && (veg - 0.5).abs() < 0.15,
        "{fruit} {veg}"
    );
}

#[test]
fn extra_teacher_texts_train_but_test_texts_never_do() {
    // Many extra texts say `pie` means `veg` (their other word is unknown to the vocabulary);
    // labelled rows never tie `pie` to a tag alone.
    let extra: Vec<String> = (0..200).map(|i| format!("pie pie zz{i}")).collect();
    let file: String = extra.iter().map(|t| format!("{t},veg=1\n")).collect();
    let teacher = Teacher::from_reader(format!("text,teacher\n{file}").as_bytes()).unwrap();
    let without = train(None, 0.0, test_rows());
    let with = train(Some(&teacher), 0.5, test_rows());
    assert!(
        p(&with, "pie", "veg") > p(&without, "pie", "veg") + 0.2,
        "{} vs {}",
        p(&with, "pie", "veg"),
        p(&without, "pie", "veg")
    );
    // The same extra texts, now also test rows: left out of training.
    let mut test = test_rows();
    test.extend(extra.iter().map(|t| Example {
        tags: vec!["veg".into()],
        text: t.clone(),
    }));
    // Compared with words alone on both sides: a teacher also brings sub-words (below).
    let held_out = train_words_only(Some(&teacher), 0.5, test);
    assert_eq!(
        p(&held_out, "pie", "veg"),
        p(&train_words_only(None, 0.0, test_rows()), "pie", "veg"),
        "a test text must not train"
    );
}

#[test]
fn distill_without_a_teacher_is_a_setting_error_not_a_silent_no_op() {
    // A `distill` with nothing to learn from (a CLI run without `--teacher`, an upload without
    // its teacher file) must not train as if unset.
    let err = try_train(None, 0.5, test_rows()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "distill",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("teacher"), "{err}");
}

#[test]
fn distill_with_class_balance_is_a_setting_error() {
    let mut s = Settings::default();
    s.train.distill = 0.5;
    s.train.class_balance = 0.3;
    let err = s.validate().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "distill",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_teacher_in_use_is_part_of_the_version() {
    let teacher = swapping_teacher("");
    let plain = train(None, 0.0, test_rows());
    let unused = train(Some(&teacher), 0.0, test_rows());
    let taught = train(Some(&teacher), 0.5, test_rows());
    let other = train(Some(&swapping_teacher("pie,veg=1\n")), 0.5, test_rows());
    let v = |t: &Trained| t.report.version.clone();
    assert_ne!(v(&plain), v(&taught));
    assert_ne!(v(&taught), v(&other));
    // distill 0 ignores the teacher: same version as a run with the same settings and none.
    assert_eq!(v(&unused), v(&train(None, 0.0, test_rows())));
}

/// A teacher brings sub-words to short texts (auto-size), recorded in the run's settings; an
/// untaught run, a long-text run or one that set `subwords` keeps words alone. (Whether
/// sub-words then enter the vocabulary is the tokenizer's rule: in a corpus this small every
/// word is kept, so none do, and the fitted tokenizer records them off.)
#[test]
fn a_teacher_brings_sub_words_to_short_texts_only() {
    let teacher = swapping_teacher("");
    let taught = train(Some(&teacher), 0.3, test_rows());
    assert_eq!(taught.report.settings.tokenizer.subwords(), 3);
    assert_eq!(taught.artifact.tokenizer.config().subwords(), 0);
    let untaught = train(None, 0.0, test_rows());
    assert_eq!(untaught.report.settings.tokenizer.subwords(), 0);
    assert_eq!(untaught.artifact.tokenizer.config().subwords(), 0);

    // The same rows with 20+ words each: posts, not titles.
    let long: Vec<Example> = rows()
        .into_iter()
        .map(|mut e| {
            e.text = format!("{} {}", e.text, "and some more words about it ".repeat(4));
            e
        })
        .collect();
    let mut csv = String::from("text,teacher\n");
    for e in &long {
        csv += &format!("\"{}\",{}=1\n", e.text, e.tags[0]);
    }
    let long_teacher = Teacher::from_reader(csv.as_bytes()).unwrap();
    let mut s = Settings::default();
    s.train.distill = 0.3;
    s.train.hidden = vec![8];
    s.train.epochs = 2;
    let posts = pipeline::train_taught(
        data(long),
        None,
        Some(&long_teacher),
        &s,
        "2026-01-01T00:00:00Z",
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(posts.report.settings.tokenizer.subwords(), 0);

    let pinned = Settings::default()
        .apply(&tagger_train::config::Overrides {
            subwords: Some(0),
            distill: Some(0.3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pinned.tokenizer_for(true, || 5.0).subwords(), 0);
}

#[test]
fn a_teacher_brings_a_patience_of_two_epochs() {
    let teacher = swapping_teacher("");
    // One row a step (set, so auto-size keeps it): 100+ steps an epoch, so the small-set
    // patience rule leaves the preset's 1.
    let run = |teacher: Option<&Teacher>, distill: f64| {
        let s = Settings::default()
            .apply(&tagger_train::config::Overrides {
                batch_size: Some(1),
                epochs: Some(2),
                hidden: Some(vec![8]),
                distill: Some(distill),
                ..Default::default()
            })
            .unwrap();
        train_all(rows(), None, teacher, &s)
    };
    let untaught = run(None, 0.0);
    assert_eq!(untaught.report.settings.train.early_stopping_patience, 1);
    let taught = run(Some(&teacher), 0.3);
    assert_eq!(taught.report.settings.train.early_stopping_patience, 2);
}

#[test]
fn words_the_unlabelled_texts_share_join_the_vocabulary_in_a_first_layer_of_the_same_size() {
    // `kiwi` is in no training row but in many unlabelled teacher texts; `mango` is in one
    // training row and in one word-dropped copy of it: two texts, but the copy adds no word.
    let mut examples = rows();
    examples.extend(
        read_csv(
            &b"tags,text\nfruit,mango tart\n"[..],
            &CsvOptions::default(),
        )
        .unwrap()
        .0,
    );
    let mut file = String::from("text,teacher\nmango,fruit=0.8\n");
    for i in 0..50 {
        file += &format!("kiwi smoothie{i},fruit=0.9\n");
    }
    let teacher = Teacher::from_reader(file.as_bytes()).unwrap();
    let run = |teacher: Option<&Teacher>, hidden: Option<Vec<usize>>| {
        let s = Settings::default()
            .apply(&tagger_train::config::Overrides {
                subwords: Some(0),
                epochs: Some(3),
                hidden,
                distill: Some(if teacher.is_some() { 0.5 } else { 0.0 }),
                ..Default::default()
            })
            .unwrap();
        // A test file, so every row, `mango tart` included, trains.
        train_all(examples.clone(), Some(test_rows()), teacher, &s)
    };
    let untaught = run(None, None);
    let taught = run(Some(&teacher), None);
    let vocab = |t: &Trained| t.artifact.tokenizer.vocabulary().to_vec();
    let (own, joined) = (vocab(&untaught), vocab(&taught));
    assert!(!own.contains(&"kiwi".to_string()));
    assert!(joined.contains(&"kiwi".to_string()), "{joined:?}");
    assert!(!joined.contains(&"mango".to_string()), "{joined:?}");
    assert!(own.iter().all(|w| joined.contains(w)), "{own:?} {joined:?}");
    assert_eq!(joined.len(), own.len() + 1, "{joined:?}");
    assert!(
        p(&taught, "kiwi", "fruit") > p(&untaught, "kiwi", "fruit") + 0.1,
        "{} vs {}",
        p(&taught, "kiwi", "fruit"),
        p(&untaught, "kiwi", "fruit")
    );
    // The first layer holds the weights of the training words' vocabulary.
    let (own_features, features) = (own.len() + 1, joined.len() + 1);
    let hidden = untaught.report.settings.train.hidden[0];
    assert_eq!(
        taught.report.settings.train.hidden,
        vec![hidden * own_features / features]
    );
    assert!(taught.report.settings.train.hidden[0] < hidden);
    // Unless the hidden size is set.
    let pinned = run(Some(&teacher), Some(vec![hidden]));
    assert_eq!(pinned.report.settings.train.hidden, vec![hidden]);
    assert_eq!(vocab(&pinned), joined);
}
