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
        assert!(
            std::fs::read_dir(&model).unwrap().any(|e| e
                .unwrap()
                .path()
                .join("reference.json")
                .is_file()),
            "train publishes the version's held-out rows for the job's quality gate"
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
fn predict_answers_an_empty_stdin_line_with_no_tags() {
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
    assert_success(&out);
    let lines: Vec<Value> = stdout(&out).lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    assert!(lines[0]["tags"].is_array());
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["tags"], serde_json::json!([]));
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
fn train_warns_when_the_teacher_scores_held_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("questions.csv");
    std::fs::write(&csv, SAMPLE_CSV).unwrap();
    // A teacher that knows every text of the CSV: the held-out split's included.
    let rows = tagger_train::dataset::read_csv(SAMPLE_CSV.as_bytes(), &Default::default())
        .unwrap()
        .0;
    let mut teacher = String::from("text,teacher\n");
    for row in &rows {
        let text = row.text.replace('"', "\"\"");
        teacher.push_str(&format!("\"{text}\",{}=0.9\n", row.tags[0]));
    }
    let teacher_path = dir.path().join("teacher.csv");
    std::fs::write(&teacher_path, teacher).unwrap();
    let train = |test: Option<&str>| {
        let mut args = vec![
            "train",
            "--data",
            path_str(&csv),
            "--teacher",
            path_str(&teacher_path),
            "--distill",
            "0.3",
            "--epochs",
            "2",
            "--out",
            path_str(dir.path()),
            "--quiet",
        ];
        args.extend(test.map(|t| ["--test", t]).into_iter().flatten());
        let out = run(&args);
        assert_success(&out);
        stdout(&out)
    };
    let held_out = train(None);
    assert!(
        held_out.contains("warning: the teacher file has probabilities for")
            && held_out.contains("held-out test rows"),
        "{held_out}"
    );
    // A test file the teacher has never seen: nothing to warn about.
    let test = dir.path().join("test.csv");
    std::fs::write(&test, "tags,text\nrust,a question the teacher never saw\n").unwrap();
    let separate = train(Some(path_str(&test)));
    assert!(!separate.contains("held-out test rows"), "{separate}");
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
    /// The status line and headers, lowercased.
    head: String,
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
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

/// A running `tagger serve` on a free port.
struct Server {
    child: KillOnDrop,
    port: u16,
}

impl Server {
    /// Starts `tagger serve --model <trained> <args>` with `env`, optionally under a shell
    /// `ulimit -n`, and waits until `GET /health` answers 200.
    fn start(args: &[&str], env: &[(&str, &str)], max_open_files: Option<u32>) -> Server {
        let t = trained();
        let mut cmd = match max_open_files {
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_tagger"));
                sh.env_remove("RUST_LOG");
                sh
            }
            None => tagger(),
        };
        cmd.args(["serve", "--model", path_str(&t.model), "--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let mut child = KillOnDrop(cmd.spawn().unwrap());
        // Port 0: the OS picks a free port and the server prints the address it got.
        let mut first_line = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let port: u16 = first_line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first_line:?}"));
        let server = Server { child, port };
        server.health();
        server
    }

    /// `GET /health`, retried for up to 30 s until it answers 200.
    fn health(&self) -> HttpResponse {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match http(self.port, "GET", "/health", None) {
                Ok(r) if r.status == 200 => return r,
                other if Instant::now() > deadline => {
                    panic!(
                        "server never became healthy: {:?}",
                        other.map(|r| (r.status, r.body))
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }
}

#[test]
fn serve_answers_predict_health_and_bad_json_over_http() {
    let t = trained();
    let server = Server::start(&[], &[], None);
    let port = server.port;
    let health = server.health();
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

/// `text` without the colour sequences (`ESC [ digits;... m`) `explain` draws words with.
fn without_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(j) if after[j..].starts_with('m') => rest = &after[j + 1..],
            _ => {
                out.push('\x1b');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A tag name that would recolour the terminal and retitle its window if printed raw.
const EVIL_TAG: &str = "\x1b[31mRED\x1b]0;pwned\x07";

#[test]
fn control_characters_in_tag_names_are_never_written_raw() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tagger-cli-evil-tag");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (rows, _) = tagger_train::dataset::read_csv(
        SAMPLE_CSV.as_bytes(),
        &tagger_train::dataset::CsvOptions::default(),
    )
    .unwrap();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = String::from("tags,text\n");
    for row in rows {
        let tags: Vec<&str> = row
            .tags
            .iter()
            .map(|t| if t == "pandas" { EVIL_TAG } else { t.as_str() })
            .collect();
        csv.push_str(&format!(
            "{},{}\n",
            quote(&tags.join(",")),
            quote(&row.text)
        ));
    }
    let data = dir.join("evil.csv");
    std::fs::write(&data, csv).unwrap();
    let model = dir.join("models");
    let model = path_str(&model);
    let outputs = [
        run(&["train", "--data", path_str(&data), "--out", model]),
        run(&["info", "--model", model]),
        run(&["predict", "--model", model, "--scores", QUESTION]),
        run(&["explain", "--model", model, QUESTION]),
    ];
    for (name, out) in ["train", "info", "predict", "explain"].iter().zip(&outputs) {
        assert_success(out);
        for stream in [&out.stdout, &out.stderr] {
            let text = without_colours(&String::from_utf8_lossy(stream));
            assert!(
                !text.contains('\x1b') && !text.contains('\x07'),
                "{name} wrote a raw control character:\n{text:?}"
            );
        }
        assert!(
            stdout(out).contains("\\u{1b}[31mRED\\u{1b}]0;pwned\\u{7}"),
            "{name} does not show the tag escaped:\n{}",
            stdout(out)
        );
    }
}

/// A file name that is not UTF-8 is reported under its escaped name, not read as a look-alike.
#[cfg(unix)]
#[test]
fn job_reports_a_non_utf8_file_name_under_its_escaped_key() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join(std::ffi::OsStr::from_bytes(b"bad\xffname.csv")),
        SAMPLE_CSV,
    )
    .unwrap();
    let out = run(&["job", "--bucket", path_str(dir.path())]);
    assert_failure_mentions(&out, "not UTF-8");
    assert!(
        stdout(&out).contains("data/bad%FFname.csv: failed")
            && !stdout(&out).contains("no longer exists"),
        "{}",
        stdout(&out)
    );
    let report = dir
        .path()
        .join("reports/_invalid-utf8/data/bad%FFname.csv.json");
    let report = json(&std::fs::read_to_string(report).expect("report written"));
    assert_eq!(report["failure"], "bad_key");
}

#[test]
fn serve_gives_the_page_cors_and_the_same_errors_as_the_lambda() {
    let server = Server::start(&["--cors", "https://ask.example"], &[], None);
    let page = http(server.port, "GET", "/", None).unwrap();
    assert_eq!(page.status, 200);
    assert!(
        page.head.contains("content-type: text/html"),
        "{}",
        page.head
    );
    assert!(
        page.head
            .contains("content-security-policy: default-src 'self'"),
        "{}",
        page.head
    );
    assert!(page.body.contains("app.js"), "{}", page.body);

    // A preflight from the allowed origin, over the wire.
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "OPTIONS /predict HTTP/1.1\r\nHost: x\r\nOrigin: https://ask.example\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let raw = raw.to_ascii_lowercase();
    assert!(raw.starts_with("http/1.1 204"), "{raw}");
    assert!(
        raw.contains("access-control-allow-origin: https://ask.example"),
        "{raw}"
    );

    // A repeated query parameter: 400 here as on Lambda.
    let body = serde_json::json!({ "question": QUESTION }).to_string();
    let r = http(
        server.port,
        "POST",
        "/predict?top_k=1&top_k=2",
        Some(("application/json", &body)),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(json(&r.body)["error"]["code"], "duplicate_parameter");
}

#[test]
fn serve_refuses_a_model_folder_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    // Spawned, not run: a server that wrongly starts would never exit.
    let mut child = KillOnDrop(
        tagger()
            .args(["serve", "--model", path_str(&missing), "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "serve started without a model folder"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!child.0.wait().unwrap().success());
    assert!(err.contains("no model folder at"), "{err}");
}

/// Sends a request head that promises a body, then nothing; returns the answer and how long it
/// took.
fn stalled_body(port: u16, content_length: u64) -> (String, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    (String::from_utf8_lossy(&raw).into_owned(), start.elapsed())
}

#[test]
fn serve_answers_a_stalled_body_408_and_an_oversized_one_413() {
    let server = Server::start(&[], &[("BODY_TIMEOUT_SECS", "1")], None);
    // Declares 100 MB: refused from the head alone, without waiting for the body.
    let (raw, took) = stalled_body(server.port, 100_000_000);
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("body_too_large"), "{raw}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Declares 1 kB within the limit and sends none of it: 408 after the 1 s body timeout.
    let (raw, took) = stalled_body(server.port, 1000);
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(raw.contains("\"timeout\""), "{raw}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn serve_survives_running_out_of_file_descriptors() {
    // Few descriptors and no connection cap below them: accept() itself fails (EMFILE) while
    // the idle connections are open. The server must log it and carry on.
    let mut server = Server::start(&["--max-connections", "10000"], &[], Some(48));
    let idle: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.port)).ok())
        .collect();
    assert!(idle.len() > 48, "only {} connections opened", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.is_running(), "the server exited on an accept error");
    drop(idle);
    let health = server.health();
    assert_eq!(health.status, 200);
    assert!(server.is_running());
}

#[test]
fn serve_caps_open_connections_and_frees_slots_when_they_close() {
    let server = Server::start(&["--max-connections", "4"], &[], None);
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Over the cap a new client waits in the backlog: no answer while the slots are held.
    let mut waiting = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    write!(
        waiting,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        waiting.read(&mut buf).is_err(),
        "answered over the connection cap"
    );
    drop(idle);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut raw = String::new();
    waiting.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}

#[test]
fn serve_answers_health_while_explanations_fill_the_cpu_pool() {
    let server = Server::start(&[], &[("MAX_EXPLAIN_COST", "1000000000")], None);
    let port = server.port;
    // Long questions of words the model knows, every tag explained: seconds of CPU each.
    let words: Vec<&str> = SAMPLE_CSV
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 3)
        .take(2000)
        .collect();
    let question = words.join(" ");
    let body = serde_json::json!({ "instances": vec![question; 20] }).to_string();
    let explains: Vec<_> = (0..4)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || {
                let r = http(
                    port,
                    "POST",
                    "/predict?explain=true&threshold=0",
                    Some(("application/json", &body)),
                )
                .unwrap();
                (r.status, Instant::now())
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let health = http(port, "GET", "/health", None).unwrap();
    let answered = Instant::now();
    assert_eq!(health.status, 200);
    let mut first_explained = None;
    for e in explains {
        let (status, done) = e.join().unwrap();
        assert_eq!(status, 200);
        assert!(
            answered < done,
            "an explanation finished before /health was answered"
        );
        first_explained = Some(first_explained.map_or(done, |t: Instant| t.min(done)));
    }
    eprintln!(
        "GET /health under explain load: {:.1} ms; first explanation answered after {:.1} s",
        (answered - asked).as_secs_f64() * 1e3,
        first_explained.map_or(0.0, |t| (t - started).as_secs_f64())
    );
}
