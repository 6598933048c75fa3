//! Training experiment harness: quality and time of one configuration on one data set, through
//! the real pipeline (`pipeline::train`: normalisation, tokenizer, split, fit, calibration).
//!
//! ```text
//! cargo run --release -p tagger-train --example tune -- <cooking|so-titles|path.csv> [key=value ...]
//! ```
//! keys: preset=default|seed, hidden=256[,128], epochs=, batch=, lr=, dropout=, patience=, seed=,
//! min_count=, max_features=, bigrams=0|1, repeats=0|1, subwords=0|2..4, num_words= (Keras tokenizer), thresholds=global|fixed:0.8|pertag:<min_support>:<floor>|shrunk:<strength>|frequency,
//! lr_decay=, class_balance=, activity_l1=, min_tag_rows=, distill=<weight> with teacher=<file> (tagger_train::teacher), sparse_adam=0|1, shuffle=0|1, refit=0|1, resplit=<seed> (pool train + test, shuffle,
//! cut again at the same sizes), init=<word vectors file> (first-layer rows of the vocabulary's
//! words start from those vectors: `benchmarks/minilm/word_vectors.py`, `tagger_train::train::WordVectors`)
//! with init_alpha=1 (share of the start's variance from the vector), init_scale=1 (x Glorot's
//! std), init_proj=random|leading.
//!
//! A named data set trains on `../shared/data/<name>/train.csv` and is scored on its `test.csv`;
//! a path is scored on `test=<path>` when given (`resplit` then works as for a named set), else
//! split by the pipeline's `test_split` (seeded).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tagger_core::tokenizer::TokenizerConfig;
use tagger_train::calibrate::ThresholdStrategy;
use tagger_train::config::{Preset, Settings};
use tagger_train::dataset::read_csv_path;
use tagger_train::pipeline::{self, TestData, TrainData};
use tagger_train::teacher::Teacher;
use tagger_train::train::{Projection, WordVectors};

/// Seconds this process has run on a CPU, all threads (Linux `/proc/self/stat` utime + stime):
/// on a shared, overloaded machine wall time says little, CPU time still measures the work.
fn cpu_seconds() -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / ticks)
        })
        .unwrap_or(f64::NAN)
}

/// Peak resident set size in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dataset = args.next().unwrap_or_else(|| "so-titles".into());
    let opts: HashMap<String, String> = args
        .filter_map(|a| {
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str| opts.get(k).map(String::as_str);
    let preset: Preset = get("preset").unwrap_or("default").parse().expect("preset");
    let mut s = Settings::preset(preset);
    let parse =
        |k: &str| get(k).map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("bad {k}={v}")));
    if let Some(h) = get("hidden") {
        s.train.hidden = h
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("hidden"))
            .collect();
        s.pinned.hidden = true;
    }
    if let Some(v) = parse("epochs") {
        s.train.epochs = v as usize;
        s.pinned.epochs = true;
    }
    if let Some(v) = parse("batch") {
        s.train.batch_size = v as usize;
        s.pinned.batch_size = true;
    }
    if let Some(v) = parse("lr") {
        s.train.learning_rate = v as f32;
    }
    if let Some(v) = parse("dropout") {
        s.train.dropout = v as f32;
    }
    if let Some(v) = parse("patience") {
        s.train.early_stopping_patience = v as usize;
        s.pinned.patience = true;
    }
    if let Some(v) = parse("seed") {
        s.train.seed = v as u64;
    }
    if let Some(v) = parse("lr_decay") {
        s.train.lr_decay = v as f32;
        s.pinned.lr_decay = true;
    }
    if let Some(v) = parse("class_balance") {
        s.train.class_balance = v as f32;
    }
    if let Some(v) = parse("activity_l1") {
        s.train.activity_l1 = v as f32;
    }
    if let Some(v) = parse("min_tag_rows") {
        s.train.min_tag_rows = v as usize;
        s.pinned.min_tag_rows = true;
    }
    if let Some(v) = parse("distill") {
        s.train.distill = v as f32;
    }
    if let Some(v) = parse("sparse_adam") {
        s.train.sparse_adam = v != 0.0;
    }
    if let Some(v) = parse("refit") {
        s.refit = v != 0.0;
    }
    if let Some(v) = parse("shuffle") {
        s.shuffle = v != 0.0;
    }
    if let Some(v) = parse("num_words") {
        s.tokenizer = TokenizerConfig::Keras {
            num_words: v as usize,
        };
    }
    if let TokenizerConfig::Words {
        min_count,
        max_features,
        bigrams,
        repeats,
        subwords,
    } = &mut s.tokenizer
    {
        if let Some(v) = parse("subwords") {
            *subwords = v as usize;
        }
        if let Some(v) = parse("min_count") {
            *min_count = v as usize;
        }
        if let Some(v) = parse("max_features") {
            *max_features = v as usize;
        }
        if let Some(v) = parse("bigrams") {
            *bigrams = v != 0.0;
        }
        if let Some(v) = parse("repeats") {
            *repeats = v != 0.0;
        }
    }
    if let Some(t) = get("thresholds") {
        s.thresholds = match t {
            "global" => ThresholdStrategy::Global,
            t if t.starts_with("fixed:") => {
                ThresholdStrategy::Fixed(t[6..].parse().expect("fixed:<t>"))
            }
            "frequency" => ThresholdStrategy::Frequency,
            t if t.starts_with("shrunk:") => ThresholdStrategy::Shrunk {
                strength: t[7..].parse().expect("shrunk:<strength>"),
            },
            t if t.starts_with("pertag:") => {
                let mut p = t[7..].split(':');
                ThresholdStrategy::PerTag {
                    min_support: p.next().and_then(|v| v.parse().ok()).unwrap_or(20),
                    floor: p.next().and_then(|v| v.parse().ok()).unwrap_or(0.1),
                }
            }
            other => panic!("unknown thresholds={other}"),
        };
    }
    s.validate().expect("settings");

    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let data_dir =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(&dataset);
    let (train_path, test_path) = if data_dir.is_dir() {
        (data_dir.join("train.csv"), Some(data_dir.join("test.csv")))
    } else {
        (PathBuf::from(&dataset), get("test").map(PathBuf::from))
    };
    let (mut examples, load) = read_csv_path(Path::new(&train_path), &s.csv).expect("train csv");
    let mut test = test_path.map(|p| {
        let (examples, load) = read_csv_path(&p, &s.csv).expect("test csv");
        TestData { examples, load }
    });
    // resplit=<seed>: pool train and test, shuffle with that seed and cut again at the same
    // sizes, to see how much a figure owes to one particular split.
    if let (Some(seed), Some(t)) = (parse("resplit"), test.as_mut()) {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let n_train = examples.len();
        let mut all = std::mem::take(&mut examples);
        all.append(&mut t.examples);
        all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed as u64));
        t.examples = all.split_off(n_train);
        examples = all;
    }
    // teacher=<file>: a teacher file (tagger_train::teacher) for distill=<weight>.
    let teacher = get("teacher").map(|p| Teacher::from_path(Path::new(p)).expect("teacher file"));
    let words = get("init").map(|p| {
        let mut w = WordVectors::from_path(Path::new(p)).expect("word vectors file");
        w.alpha = parse("init_alpha").map_or(1.0, |v| v as f32);
        w.scale = parse("init_scale").map_or(1.0, |v| v as f32);
        w.projection = match get("init_proj").unwrap_or("random") {
            "random" => Projection::Random,
            "leading" => Projection::Leading,
            other => panic!("unknown init_proj={other}"),
        };
        w
    });
    let read_s = started.elapsed().as_secs_f64();
    let trained = pipeline::train_with(
        TrainData {
            examples,
            load,
            source: dataset.clone(),
            sha256: dataset.clone(),
        },
        test,
        teacher.as_ref(),
        words.as_ref(),
        &s,
        "2026-01-01T00:00:00Z",
        &mut |e| {
            println!(
                "  epoch {:>2}  loss {:.5}  val_loss {:.5}  val_micro_f1 {:.4}  {:.3}s",
                e.epoch,
                e.train_loss,
                e.val_loss.unwrap_or(f32::NAN),
                e.val_micro_f1.unwrap_or(f32::NAN),
                e.seconds
            );
            true
        },
    )
    .expect("training");
    let total_s = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let r = &trained.report;
    if let Some(w) = &words {
        let vocab = trained.artifact.tokenizer.vocabulary();
        let plain = vocab.iter().filter(|v| !v.contains([' ', '×'])).count();
        let with = w.for_vocabulary(vocab).rows.len();
        println!(
            "INIT {with} of {} features ({plain} plain words) start from a vector",
            vocab.len()
        );
    }
    // The config as trained: the pipeline sizes the default preset to the data.
    println!("{:?}", r.settings.train);
    let m = r.metrics.as_ref().expect("test metrics");
    println!("{}", m.table(8));
    let supported: Vec<_> = m.per_tag.iter().filter(|t| t.support > 0).collect();
    println!(
        "TAGS {} with test support: {} predicted at all, {} with a hit; {} predicted without support",
        supported.len(),
        supported.iter().filter(|t| t.predicted > 0).count(),
        supported.iter().filter(|t| t.recall > 0.0).count(),
        m.per_tag
            .iter()
            .filter(|t| t.support == 0 && t.predicted > 0)
            .count()
    );
    println!(
        "RESULT {dataset} P@1 {:.4} microF1 {:.4} macroF1 {:.4} | thr {:.2} best_epoch {}/{} | {} rows, {} features, {} tags | fit {:.2}s wall | read {read_s:.2}s, prepare {:.2}s, total {total_s:.2}s wall, {cpu:.2}s cpu, peak RSS {:.0} MiB",
        m.p_at_1,
        m.micro_f1,
        m.macro_f1,
        trained.artifact.thresholds.global,
        r.best_epoch,
        r.history.len(),
        r.rows.train,
        r.features,
        r.labels,
        r.timings.fit_seconds,
        r.timings.prepare_seconds,
        peak_rss_mib()
    );
}
