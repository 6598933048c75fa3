//! End-to-end tests of the `tagger` binary: each runs the real executable in a temporary folder,
//! as a user would, and checks its exit status, output and files. One test serves a model over a
//! real socket and talks HTTP/1.1 to it by hand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The sample questions the binary embeds for `quickstart`.
const SAMPLE_CSV: &str = include_str!("../assets/questions.csv");
const QUESTION: &str = "How do I merge two pandas DataFrames on a column?";

fn tagger() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagger"));
    cmd.env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str]) -> Output {
    tagger()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("tagger runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

#[track_caller]
fn assert_failure_mentions(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success:\n{}",
        stdout(o)
    );
    assert!(
        stderr(o).contains(needle),
        "stderr does not mention {needle:?}:\n{}",
        stderr(o)
    );
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The sample CSV written to disk and a model trained on it with `tagger train`, shared by the
/// tests that only read them. Lives under Cargo's per-target temp dir, rebuilt once per run.
struct Trained {
    csv: PathBuf,
    model: PathBuf,
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tagger-cli-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("questions.csv");
        std::fs::write(&csv, SAMPLE_CSV).unwrap();
        let model = dir.join("models");
        let out = run(&[
            "train",
            "--data",
            path_str(&csv),
            "--out",
            path_str(&model),
            "--quiet",
        ]);
        assert_success(&out);
        assert!(
            stdout(&out).contains("published version"),
            "{}",
            stdout(&out)
        );
        Trained { csv, model }
    })
}

/// Every tag of the sample CSV, sorted, as the library reads it.
fn sample_tags() -> Vec<String> {
    let (rows, _) = tagger_train::dataset::read_csv(
        SAMPLE_CSV.as_bytes(),
        &tagger_train::dataset::CsvOptions::default(),
    )
    .unwrap();
    let mut tags: Vec<String> = rows.into_iter().flat_map(|r| r.tags).collect();
    tags.sort();
    tags.dedup();
    tags
}

#[test]
fn quickstart_without_serving_publishes_a_model_and_answers_samples() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["quickstart", "--no-serve", "--dir", path_str(dir.path())]);
    assert_success(&out);
    let bucket = dir.path().join("bucket");
    let pointer = json(&std::fs::read_to_string(bucket.join("models/latest.json")).unwrap());
    let key = pointer["key"]
        .as_str()
        .expect("pointer names its model key");
    assert!(bucket.join("models").join(key).is_file(), "{key} missing");
    let report =
        json(&std::fs::read_to_string(bucket.join("reports/data/questions.csv.json")).unwrap());
    assert!(report.is_object(), "{report}");
    let text = stdout(&out);
    assert!(text.contains("sample answers:"), "{text}");
    assert!(text.matches("    -> [").count() >= 3, "{text}");
}

#[test]
fn train_then_predict_json_prints_tags() {
    let t = trained();
    let out = run(&["predict", "--model", path_str(&t.model), "--json", QUESTION]);
    assert_success(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let p = json(lines[0]);
    let tags = p["tags"].as_array().expect("tags array");
    let known = sample_tags();
    for tag in tags {
        assert!(known.contains(&tag.as_str().unwrap().to_owned()), "{tag}");
    }
    assert_eq!(
        p["probabilities"].as_array().map(Vec::len),
        Some(tags.len())
    );
}

#[test]
fn predict_threshold_and_top_k_flags_shape_the_answer() {
    let t = trained();
    let out = run(&[
        "predict",
        "--model",
        path_str(&t.model),
        "--json",
        "--scores",
        "--threshold",
        "0",
        "--top-k",
        "2",
        QUESTION,
    ]);
    assert_success(&out);
    let p = json(stdout(&out).trim());
    assert_eq!(p["tags"].as_array().unwrap().len(), 2, "{p}");
    let scores = p["scores"].as_object().expect("scores object");
    let mut names: Vec<&String> = scores.keys().collect();
    names.sort();
    assert_eq!(names, sample_tags().iter().collect::<Vec<_>>());
}

#[test]
fn predict_reads_one_question_per_stdin_line() {
    let t = trained();
    let mut child = tagger()
        .args(["predict", "--model", path_str(&t.model), "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"How do I plot two lines in matplotlib?\nnumpy array reshape fails\nKeras model fit loss is nan\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    let lines: Vec<Value> = stdout(&out).lines().map(json).collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&out));
    assert!(lines.iter().all(|p| p["tags"].is_array()), "{lines:?}");
}

#[test]
fn predict_reports_an_empty_stdin_line_and_fails() {
    let t = trained();
    let mut child = tagger()
        .args(["predict", "--model", path_str(&t.model), "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"numpy array reshape\n\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_failure_mentions(&out, "1 question(s) could not be answered");
    let lines: Vec<Value> = stdout(&out).lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    assert!(lines[0]["tags"].is_array());
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["error"], "question is empty");
}

#[test]
fn eval_json_reports_metrics() {
    let t = trained();
    let out = run(&[
        "eval",
        "--model",
        path_str(&t.model),
        "--data",
        path_str(&t.csv),
        "--json",
    ]);
    assert_success(&out);
    let v = json(&stdout(&out));
    let m = &v["metrics"];
    for key in ["p_at_1", "micro_f1", "macro_f1"] {
        let x = m[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {m}"));
        assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    }
    // The model saw most of these rows in training: it must do far better than chance (1/6).
    assert!(m["p_at_1"].as_f64().unwrap() > 0.5, "{m}");
    assert!(v["load"].is_object(), "{v}");
}

#[test]
fn info_json_describes_the_published_model() {
    let t = trained();
    let out = run(&["info", "--model", path_str(&t.model), "--json"]);
    assert_success(&out);
    let v = json(&stdout(&out));
    let mut labels: Vec<String> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    labels.sort();
    assert_eq!(labels, sample_tags());
    assert!(v["background_rows"].as_u64().unwrap() > 0, "{v}");
    assert!(v["features"].as_u64().unwrap() > 0, "{v}");
    let pointer = json(&std::fs::read_to_string(t.model.join("latest.json")).unwrap());
    assert_eq!(v["version"], pointer["version"]);
}

#[test]
fn explain_json_names_words_for_each_tag() {
    let t = trained();
    let out = run(&["explain", "--model", path_str(&t.model), "--json", QUESTION]);
    assert_success(&out);
    let v = json(&stdout(&out));
    let entries = v.as_array().expect("one entry per question");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["question"], QUESTION);
    // The API's explanation schema: {"tag": {"positive": [["word", v], ...], ...}}.
    let explanations: Vec<&serde_json::Value> = entries[0]["explanations"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert!(!explanations.is_empty(), "{v}");
    let question = QUESTION.to_lowercase();
    for e in explanations.iter().copied() {
        let p = e["probability"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{e}");
        for side in ["positive", "negative"] {
            for w in e[side].as_array().unwrap() {
                let word = w[0].as_str().unwrap();
                assert!(w[1].is_f64(), "{w}");
                assert!(question.contains(word), "{word:?} is not in the question");
            }
        }
    }
    let named: usize = explanations
        .iter()
        .map(|e| e["positive"].as_array().unwrap().len() + e["negative"].as_array().unwrap().len())
        .sum();
    assert!(named > 0, "no words named: {v}");
}

#[test]
fn explain_summary_writes_an_svg_naming_the_top_words() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("summary.svg");
    let out = run(&[
        "explain",
        "--model",
        path_str(&t.model),
        "--summary",
        "--data",
        path_str(&t.csv),
        "--sample",
        "40",
        "--json",
        "--svg",
        path_str(&svg),
    ]);
    assert_success(&out);
    let summary = json(&stdout(&out));
    let top_word = summary["per_tag"][0]["words"][0]["word"]
        .as_str()
        .unwrap_or_else(|| panic!("no top word: {summary}"))
        .to_owned();
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("<svg"), "not an svg");
    assert!(drawn.contains(&top_word), "{top_word:?} not drawn");
}

#[test]
fn train_rejects_an_empty_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("empty.csv");
    std::fs::write(&csv, "").unwrap();
    let out = run(&[
        "train",
        "--data",
        path_str(&csv),
        "--out",
        path_str(&dir.path().join("m")),
        "--quiet",
    ]);
    assert_failure_mentions(&out, "csv is empty");
    assert!(
        stderr(&out).contains("empty.csv"),
        "names the file: {}",
        stderr(&out)
    );
    assert!(!dir.path().join("m/latest.json").exists());
}

#[test]
fn train_rejects_zero_epochs_before_reading_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "train",
        "--data",
        path_str(&dir.path().join("does-not-exist.csv")),
        "--out",
        path_str(&dir.path().join("m")),
        "--epochs",
        "0",
    ]);
    assert_failure_mentions(&out, "invalid setting `epochs`");
}

#[test]
fn train_rejects_non_finite_and_out_of_range_flags_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, field) in [
        ("--learning-rate", "NaN", "learning_rate"),
        ("--learning-rate", "1e39", "learning_rate"),
        ("--dropout", "NaN", "dropout"),
        ("--threshold", "NaN", "threshold"),
        ("--hidden", "1000000000", "hidden"),
        ("--epochs", "1000000000", "epochs"),
    ] {
        let out = run(&[
            "train",
            "--data",
            path_str(&dir.path().join("does-not-exist.csv")),
            "--out",
            path_str(&dir.path().join("m")),
            flag,
            value,
        ]);
        assert_failure_mentions(&out, &format!("invalid setting `{field}`"));
    }
    let out = run(&["train", "--data", "x.csv", "--out", "m", "--preset", "best"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("seed"),
        "lists the presets: {}",
        stderr(&out)
    );
}

#[test]
fn predict_without_latest_json_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["predict", "--model", path_str(dir.path()), QUESTION]);
    assert_failure_mentions(&out, "has no latest.json");
    assert!(stderr(&out).contains("tagger train"), "{}", stderr(&out));
}

#[test]
fn predict_with_a_missing_model_path_says_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = run(&["predict", "--model", path_str(&missing), QUESTION]);
    assert_failure_mentions(&out, "no model at");
}

// ---------------------------------------------------------------------------------------------
// Through a real socket

/// Kills the server when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct HttpResponse {
    status: u16,
    body: String,
}

/// One HTTP/1.1 exchange with `Connection: close`, so the body runs to the end of the stream.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some((content_type, body)) = body {
        request += &format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    } else {
        request += "\r\n";
    }
    stream.write_all(request.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Ok(HttpResponse {
        status,
        body: body.to_owned(),
    })
}

#[test]
fn serve_answers_predict_health_and_bad_json_over_http() {
    let t = trained();
    // Port 0: the OS picks a free port and the server prints the address it got.
    let mut server = KillOnDrop(
        tagger()
            .args(["serve", "--model", path_str(&t.model), "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let port: u16 = first_line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first_line:?}"));

    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        match http(port, "GET", "/health", None) {
            Ok(r) if r.status == 200 => break r,
            other if Instant::now() > deadline => {
                panic!(
                    "server never became healthy: {:?}",
                    other.map(|r| (r.status, r.body))
                )
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let pointer = json(&std::fs::read_to_string(t.model.join("latest.json")).unwrap());
    assert_eq!(json(&health.body)["version"], pointer["version"]);

    let body =
        serde_json::json!({ "question": QUESTION, "top_k": 1, "threshold": 0.0 }).to_string();
    let r = http(port, "POST", "/predict", Some(("application/json", &body))).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let v = json(&r.body);
    let tags = v["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags: {v}"));
    assert_eq!(tags.len(), 1, "{v}");

    let r = http(
        port,
        "POST",
        "/predict",
        Some(("application/json", "{\"question\": ")),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let v = json(&r.body);
    assert_eq!(v["error"]["code"], "invalid_json", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{v}"
    );
}
