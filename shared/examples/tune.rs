//! Training experiment harness: quality and wall time of one configuration on one data set.
//!
//! ```text
//! cargo run --release -p tagger-shared --example tune -- <cooking|so-titles|path.csv> [key=value ...]
//! ```
//! keys: hidden=256[,128] epochs= batch= lr= dropout= patience= seed= min_count= max_features=
//! thresholds=global|fixed:0.8|pertag:<min_support>:<floor> origin=1 (start from TrainConfig::origin())
//!
//! A named data set trains on `../shared/data/<name>/train.csv` and is scored on its `test.csv`;
//! a path is split 90/10 (in file order) into train and test. 10% of the training rows
//! (seeded shuffle) are held out for validation: early stopping and threshold calibration.
//!
//! The tokenizer here is a stand-in for the project's `Words` tokenizer: lowercase, split on
//! characters that are neither alphanumeric nor one of `#+.-`, trailing dots stripped, words
//! seen fewer than `min_count` times dropped, the `max_features` most frequent kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tagger_shared::metrics::evaluate;
use tagger_shared::sparse::SparseRows;
use tagger_shared::thresholds::{calibrate, ThresholdStrategy};
use tagger_shared::train::{fit, TrainConfig};

type Rows = Vec<(Vec<String>, String)>;

fn read(path: &Path) -> Rows {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            let r = r.expect("csv record");
            let tags = r[0].split(',').filter(|t| !t.is_empty()).map(str::to_string).collect();
            (tags, r[1].to_string())
        })
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || "#+.-".contains(c)))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
}

struct Vocab {
    index: HashMap<String, u32>,
}

impl Vocab {
    fn fit(texts: &[&str], min_count: usize, max_features: usize) -> Vocab {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in texts {
            for w in words(&t.to_lowercase()) {
                *counts.entry(w.to_string()).or_default() += 1;
            }
        }
        let mut kept: Vec<(String, usize)> = counts.into_iter().filter(|(_, c)| *c >= min_count).collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        kept.truncate(max_features);
        Vocab { index: kept.into_iter().enumerate().map(|(i, (w, _))| (w, i as u32)).collect() }
    }

    fn encode(&self, texts: &[&str]) -> SparseRows {
        let mut rows = SparseRows::with_capacity(texts.len(), 0);
        let mut buf = Vec::new();
        for t in texts {
            buf.clear();
            let lower = t.to_lowercase();
            buf.extend(words(&lower).filter_map(|w| self.index.get(w).copied()));
            rows.push_row(&buf);
        }
        rows
    }
}

fn texts<'a>(rows: &[&'a (Vec<String>, String)]) -> Vec<&'a str> {
    rows.iter().map(|(_, t)| t.as_str()).collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dataset = args.next().unwrap_or_else(|| "so-titles".into());
    let opts: HashMap<String, String> = args
        .filter_map(|a| a.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let get = |k: &str| opts.get(k).map(String::as_str);
    let mut cfg = if get("origin").is_some() { TrainConfig::origin() } else { TrainConfig::default() };
    if let Some(h) = get("hidden") {
        cfg.hidden = h.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().expect("hidden")).collect();
    }
    let parse = |k: &str| get(k).map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("bad {k}={v}")));
    if let Some(v) = parse("epochs") {
        cfg.epochs = v as usize;
    }
    if let Some(v) = parse("batch") {
        cfg.batch_size = v as usize;
    }
    if let Some(v) = parse("lr") {
        cfg.learning_rate = v as f32;
    }
    if let Some(v) = parse("dropout") {
        cfg.dropout = v as f32;
    }
    if let Some(v) = parse("patience") {
        cfg.early_stopping_patience = v as usize;
    }
    if let Some(v) = parse("seed") {
        cfg.seed = v as u64;
    }
    let min_count = parse("min_count").unwrap_or(2.0) as usize;
    let max_features = parse("max_features").unwrap_or(1e9) as usize;
    let strategy = match get("thresholds").unwrap_or("global") {
        "global" => ThresholdStrategy::Global,
        s if s.starts_with("fixed:") => ThresholdStrategy::Fixed(s[6..].parse().expect("fixed:<t>")),
        s if s.starts_with("pertag:") => {
            let mut p = s[7..].split(':');
            ThresholdStrategy::PerTag {
                min_support: p.next().and_then(|v| v.parse().ok()).unwrap_or(20),
                floor: p.next().and_then(|v| v.parse().ok()).unwrap_or(0.1),
            }
        }
        other => panic!("unknown thresholds={other}"),
    };

    let started = Instant::now();
    let data_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data")).join(&dataset);
    let (train_rows, test_rows) = if data_dir.is_dir() {
        (read(&data_dir.join("train.csv")), read(&data_dir.join("test.csv")))
    } else {
        let mut all = read(Path::new(&dataset));
        let test = all.split_off(all.len() * 9 / 10);
        (all, test)
    };
    let read_s = started.elapsed().as_secs_f64();

    // Labels sorted by name; tags absent from training are unknown at test time.
    let mut names: Vec<String> = train_rows.iter().flat_map(|(t, _)| t.iter().cloned()).collect();
    names.sort();
    names.dedup();
    let label_index: HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let encode_labels = |rows: &[&(Vec<String>, String)]| -> SparseRows {
        rows.iter()
            .map(|(tags, _)| tags.iter().filter_map(|t| label_index.get(t.as_str()).copied()).collect::<Vec<u32>>())
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice)
            .collect()
    };

    let mut order: Vec<usize> = (0..train_rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    let n_val = train_rows.len() / 10;
    let (val_ids, fit_ids) = order.split_at(n_val);
    let fit_rows: Vec<&(Vec<String>, String)> = fit_ids.iter().map(|&i| &train_rows[i]).collect();
    let val_rows: Vec<&(Vec<String>, String)> = val_ids.iter().map(|&i| &train_rows[i]).collect();
    let test_refs: Vec<&(Vec<String>, String)> = test_rows.iter().collect();

    let tok_started = Instant::now();
    let all_texts: Vec<&str> = train_rows.iter().map(|(_, t)| t.as_str()).collect();
    let vocab = Vocab::fit(&all_texts, min_count, max_features);
    let (x, vx, tx) = (vocab.encode(&texts(&fit_rows)), vocab.encode(&texts(&val_rows)), vocab.encode(&texts(&test_refs)));
    let (y, vy, ty) = (encode_labels(&fit_rows), encode_labels(&val_rows), encode_labels(&test_refs));
    let tok_s = tok_started.elapsed().as_secs_f64();

    println!(
        "{dataset}: {} train / {} val / {} test rows, {} features, {} tags, {:.1} features/row; read {read_s:.2}s, tokenize {tok_s:.2}s",
        x.len(),
        vx.len(),
        tx.len(),
        vocab.index.len(),
        names.len(),
        x.nnz() as f64 / x.len() as f64
    );
    println!("{cfg:?}");
    let fit_started = Instant::now();
    let result = fit(&x, &y, vocab.index.len(), names.len(), &cfg, Some((&vx, &vy)), &mut |s| {
        println!(
            "  epoch {:>2}  loss {:.5}  val_loss {:.5}  val_micro_f1 {:.4}  {:.3}s",
            s.epoch,
            s.train_loss,
            s.val_loss.unwrap_or(f32::NAN),
            s.val_micro_f1.unwrap_or(f32::NAN),
            s.seconds
        )
    })
    .expect("training");
    let fit_s = fit_started.elapsed().as_secs_f64();
    let eval_started = Instant::now();
    let thresholds = calibrate(&result.model.predict_proba_batch(&vx), &vy, &strategy);
    let report = evaluate(&result.model.predict_proba_batch(&tx), &ty, &thresholds, &names);
    let eval_s = eval_started.elapsed().as_secs_f64();
    println!("{}", report.table(8));
    println!(
        "RESULT {dataset} P@1 {:.4} microF1 {:.4} macroF1 {:.4} | thr {:.2} best_epoch {} | fit {fit_s:.2}s (tokenize {tok_s:.2}s, calibrate+eval {eval_s:.2}s)",
        report.p_at_1, report.micro_f1, report.macro_f1, thresholds.global, result.best_epoch
    );
}
