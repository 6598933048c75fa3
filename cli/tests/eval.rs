//! `tagger eval` (P@k and R@k, the threshold sweep, the precision-recall plot, `--compare`) and
//! `tagger train` on files that are not `tags,text` CSVs, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The sample questions the binary embeds for `quickstart`.
const SAMPLE_CSV: &str = include_str!("../assets/questions.csv");

fn run(args: &[&str]) -> Output {
    run_env(args, None)
}

fn run_env(args: &[&str], model_env: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagger"));
    cmd.env_remove("RUST_LOG").env_remove("TAGGER_MODEL");
    if let Some(m) = model_env {
        cmd.env("TAGGER_MODEL", m);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("tagger runs")
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "tagger {args:?}: exit {:?}\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn tagger_model_stands_in_for_model_but_never_clashes_with_compare() {
    let f = fixture();
    let alone = run_env(&["eval", "--data", s(&f.csv), "--json"], Some(&f.a));
    assert!(alone.status.success(), "{alone:?}");
    let named = ok(&["eval", "--model", s(&f.a), "--data", s(&f.csv), "--json"]);
    assert_eq!(String::from_utf8_lossy(&alone.stdout), named);
    let compare = run_env(
        &["eval", "--compare", s(&f.a), s(&f.b), "--data", s(&f.csv)],
        Some(&f.a),
    );
    assert!(compare.status.success(), "{compare:?}");
    let neither = run_env(&["eval", "--data", s(&f.csv)], None);
    assert!(!neither.status.success());
    assert!(String::from_utf8_lossy(&neither.stderr).contains("TAGGER_MODEL"));
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The sample CSV and two models trained on it with different settings.
struct Fixture {
    dir: PathBuf,
    csv: PathBuf,
    a: PathBuf,
    b: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tagger-eval-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("questions.csv");
        std::fs::write(&csv, SAMPLE_CSV).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        ok(&["train", "--data", s(&csv), "--out", s(&a), "--quiet"]);
        ok(&[
            "train",
            "--data",
            s(&csv),
            "--out",
            s(&b),
            "--quiet",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--seed",
            "5",
        ]);
        Fixture { dir, csv, a, b }
    })
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn eval_prints_precision_and_recall_at_k_and_the_threshold_sweep() {
    let fx = fixture();
    let out = ok(&["eval", "--model", s(&fx.a), "--data", s(&fx.csv)]);
    for needle in [
        " k   P@k     R@k",
        "\n 5   ",
        "threshold  precision  recall  micro-F1  tags/row",
        "     0.05  ",
        "     0.95  ",
        "<- best global",
        "   served  ",
        "read as: comma-delimited (detected)",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
}

#[test]
fn eval_json_and_metrics_json_hold_the_same_figures() {
    let fx = fixture();
    let v = json(&ok(&[
        "eval",
        "--model",
        s(&fx.a),
        "--data",
        s(&fx.csv),
        "--json",
    ]));
    let m = &v["metrics"];
    let p = m["p_at_k"].as_array().unwrap();
    let r = m["r_at_k"].as_array().unwrap();
    assert_eq!((p.len(), r.len()), (5, 5), "{m}");
    assert_eq!(f(&p[0]), f(&m["p_at_1"]));
    assert_eq!(f(&r[0]), f(&m["r_at_1"]));
    // More top tags: recall never falls.
    assert!(r.windows(2).all(|w| f(&w[0]) <= f(&w[1])), "{r:?}");
    assert_eq!(m["sweep"].as_array().unwrap().len(), 19);
    assert_eq!(m["pr_curve"].as_array().unwrap().len(), 99);
    // The training run's metrics.json carries P@k, R@k and the sweep for its test rows.
    let version = v["version"].as_str().unwrap();
    let report = json(&std::fs::read_to_string(fx.a.join(version).join("metrics.json")).unwrap());
    let trained = &report["metrics"];
    assert_eq!(trained["p_at_k"].as_array().unwrap().len(), 5, "{trained}");
    assert_eq!(trained["sweep"].as_array().unwrap().len(), 19);
}

#[test]
fn eval_writes_the_precision_recall_plot() {
    let fx = fixture();
    let svg = fx.dir.join("pr.svg");
    let png = fx.dir.join("pr.png");
    let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists();
    let mut args = vec![
        "eval",
        "--model",
        s(&fx.a),
        "--data",
        s(&fx.csv),
        "--svg",
        s(&svg),
    ];
    if font {
        args.extend(["--png", s(&png)]);
    }
    ok(&args);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    assert!(text.contains("precision-recall") && text.contains("micro recall"));
    // One polyline per model, and the served point's ring.
    assert!(text.contains("<polyline") && text.contains("<circle"));
    if font {
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    }
}

#[test]
fn compare_scores_two_models_on_the_same_rows() {
    let fx = fixture();
    let v = json(&ok(&[
        "eval",
        "--compare",
        s(&fx.a),
        s(&fx.b),
        "--data",
        s(&fx.csv),
        "--json",
    ]));
    let (a, b) = (&v["a"]["metrics"], &v["b"]["metrics"]);
    assert_eq!(a["examples"], b["examples"]);
    assert_eq!(f(&v["rows"]), f(&a["examples"]));
    assert_ne!(v["a"]["version"], v["b"]["version"]);
    let d = &v["difference"];
    for (name, key) in [
        ("P@1", "p_at_1"),
        ("micro-F1", "micro_f1"),
        ("macro-F1", "macro_f1"),
    ] {
        assert!(
            (f(&d[name]) - (f(&b[key]) - f(&a[key]))).abs() < 1e-12,
            "{name}: {d}"
        );
    }
    assert!((f(&d["P@3"]) - (f(&b["p_at_k"][2]) - f(&a["p_at_k"][2]))).abs() < 1e-12);
    // A model against itself: every difference is zero.
    let same = json(&ok(&[
        "eval",
        "--compare",
        s(&fx.a),
        s(&fx.a),
        "--data",
        s(&fx.csv),
        "--json",
    ]));
    for (name, x) in same["difference"].as_object().unwrap() {
        assert_eq!(f(x), 0.0, "{name}");
    }
    let text = ok(&[
        "eval",
        "--compare",
        s(&fx.a),
        s(&fx.b),
        "--data",
        s(&fx.csv),
        "--svg",
        s(&fx.dir.join("cmp.svg")),
    ]);
    assert!(text.contains("B - A") && text.contains("R@5"), "{text}");
    assert!(text.contains("B's threshold sweep"), "{text}");
    let svg = std::fs::read_to_string(fx.dir.join("cmp.svg")).unwrap();
    assert_eq!(
        svg.matches("<circle").count(),
        2,
        "one served point per model"
    );
    // One model or two, not both.
    let o = run(&[
        "eval",
        "--model",
        s(&fx.a),
        "--compare",
        s(&fx.a),
        s(&fx.b),
        "--data",
        s(&fx.csv),
    ]);
    assert!(!o.status.success());
}

/// CSV-style quoting with any delimiter.
fn field(v: &str, delimiter: char) -> String {
    if v.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

#[test]
fn train_reads_a_headerless_tsv_with_pipe_tags_and_says_so() {
    let fx = fixture();
    let (rows, _) = tagger_train::dataset::read_csv(
        SAMPLE_CSV.as_bytes(),
        &tagger_train::dataset::CsvOptions::default(),
    )
    .unwrap();
    let tsv: String = rows
        .iter()
        .map(|r| format!("{}\t{}\n", field(&r.text, '\t'), r.tags.join("|")))
        .collect();
    let path = fx.dir.join("headerless.tsv");
    std::fs::write(&path, tsv).unwrap();
    let out = fx.dir.join("tsv-model");
    let text = ok(&[
        "train",
        "--data",
        s(&path),
        "--out",
        s(&out),
        "--quiet",
        "--no-header",
        "--columns",
        "text,tags",
    ]);
    assert!(
        text.contains("read as: tab-delimited (detected), no header;")
            && text.contains("tags pipe (detected)"),
        "{text}"
    );
    let info = json(&ok(&["info", "--model", s(&out), "--json"]));
    let mut labels: Vec<&str> = info["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    labels.sort();
    let mut expected: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.tags.iter())
        .map(String::as_str)
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(labels, expected);
    // A test file in another layout than the training file is read and reported on its own.
    let with_header = fx.dir.join("with-header.tsv");
    std::fs::write(
        &with_header,
        format!("text\ttags\n{}", std::fs::read_to_string(&path).unwrap()),
    )
    .unwrap();
    let text = ok(&[
        "train",
        "--data",
        s(&fx.csv),
        "--test",
        s(&with_header),
        "--out",
        s(&fx.dir.join("mixed-model")),
        "--quiet",
    ]);
    assert!(
        text.contains("read as: comma-delimited (detected), header row;")
            && text.contains("test read as: tab-delimited (detected), header row;")
            && text.contains("tags pipe (detected)"),
        "{text}"
    );
    // The same file scored with eval's own reading flags.
    let v = json(&ok(&[
        "eval",
        "--model",
        s(&fx.a),
        "--data",
        s(&path),
        "--no-header",
        "--columns",
        "text,tags",
        "--json",
    ]));
    assert_eq!(f(&v["metrics"]["examples"]) as usize, rows.len());
}
