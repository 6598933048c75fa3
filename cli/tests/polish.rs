//! The command line's manners, each against the real binary: a closed stdout, colour only where
//! it shows, the API's option rules, `TAGGER_MODEL`, readable `info`, a pointer file passed as a
//! model, and `predict`'s one answer line per question line.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const SAMPLE_CSV: &str = include_str!("../assets/questions.csv");
const QUESTION: &str = "How do I merge two pandas DataFrames on a column?";

fn tagger() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagger"));
    cmd.env_remove("RUST_LOG")
        .env_remove("TAGGER_MODEL")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    cmd
}

fn run(args: &[&str]) -> Output {
    tagger().args(args).stdin(Stdio::null()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[track_caller]
fn fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure:\n{}", stdout(o));
    assert!(
        stderr(o).contains(needle),
        "stderr does not mention {needle:?}:\n{}",
        stderr(o)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A model trained once per test binary on the sample questions.
fn model() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tagger-polish-tests");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("questions.csv");
        std::fs::write(&csv, SAMPLE_CSV).unwrap();
        let models = dir.join("models");
        ok(&run(&[
            "train",
            "--data",
            s(&csv),
            "--out",
            s(&models),
            "--quiet",
        ]));
        models
    })
}

/// `tagger predict` fed `input` on stdin.
fn predict_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = tagger()
        .args(["predict", "--model", s(model())])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn predict_stops_quietly_when_its_reader_goes_away() {
    let mut child = tagger()
        .args(["predict", "--model", s(model())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Far more answers than a pipe buffers, written while the reader has already left.
    let writer = std::thread::spawn(move || {
        for _ in 0..20_000 {
            if writeln!(stdin, "{QUESTION}").is_err() {
                break;
            }
        }
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The read end is closed here, as `| head -1` closes it.
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        !stderr(&out).contains("panicked"),
        "panic on a closed stdout: {}",
        stderr(&out)
    );
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
}

#[test]
fn predict_answers_each_input_line_on_its_own_line_and_numbers_json_lines() {
    let out = predict_stdin(
        &["--json"],
        format!("{QUESTION}\n\n   \n{QUESTION}\n").as_bytes(),
    );
    let text = ok(&out);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    for (i, v) in lines.iter().enumerate() {
        assert_eq!(v["line"], i + 1, "{v}");
    }
    assert_eq!(lines[1]["tags"], serde_json::json!([]));
    assert_eq!(lines[2]["tags"], serde_json::json!([]));
    assert!(!lines[0]["tags"].as_array().unwrap().is_empty(), "{text}");

    let text = ok(&predict_stdin(
        &[],
        format!("{QUESTION}\n\n{QUESTION}\n").as_bytes(),
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert_eq!(lines[1], "");
    assert_eq!(lines[0], lines[2]);
}

#[test]
fn predict_checks_top_k_and_threshold_like_the_api() {
    let m = s(model());
    fails_with(
        &run(&["predict", "--model", m, "--top-k", "0", QUESTION]),
        "top_k must be >= 1, got 0",
    );
    fails_with(
        &run(&["predict", "--model", m, "--threshold", "5", QUESTION]),
        "threshold must be in [0, 1], got 5",
    );
    fails_with(
        &run(&["predict", "--model", m, "--threshold", "NaN", QUESTION]),
        "threshold must be in [0, 1]",
    );
    ok(&run(&[
        "predict",
        "--model",
        m,
        "--threshold",
        "1",
        "--top-k",
        "1",
        QUESTION,
    ]));
}

#[test]
fn tagger_model_names_the_model_when_model_is_not_given() {
    let out = tagger()
        .args(["predict", "--json", QUESTION])
        .env("TAGGER_MODEL", model())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(ok(&out).trim()).unwrap();
    assert!(v["tags"].is_array(), "{v}");
    // The flag wins over the variable.
    let out = tagger()
        .args(["info", "--model", s(model())])
        .env("TAGGER_MODEL", "/nonexistent")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    fails_with(&run(&["predict", QUESTION]), "--model");
}

#[test]
fn info_is_plain_text() {
    let text = ok(&run(&["info", "--model", s(model())]));
    assert!(
        !text.contains('[') && !text.contains('"'),
        "Debug/JSON notation: {text}"
    );
    assert!(
        text.contains("preset:      default; tokenizer words (min count"),
        "{text}"
    );
    let network = text.lines().find(|l| l.starts_with("network:")).unwrap();
    assert!(network.ends_with(" -> 6 tags"), "{network}");
}

#[test]
fn a_pointer_file_passed_as_the_model_is_named_as_such() {
    let pointer = model().join("latest.json");
    for args in [
        &["predict", QUESTION][..],
        &["info"][..],
        &["explain", QUESTION][..],
    ] {
        let out = run(&[args, &["--model", s(&pointer)][..]].concat());
        fails_with(
            &out,
            "is a JSON file (a model pointer such as latest.json?), not a model",
        );
        assert!(stderr(&out).contains(s(model())), "{}", stderr(&out));
    }
    let out = run(&["serve", "--model", s(&pointer), "--port", "0"]);
    fails_with(&out, "is the pointer file");
}

#[test]
fn serve_help_offers_s3_which_works() {
    // Serving from S3 itself is tested against moto in tests/models.rs.
    let text = ok(&run(&["serve", "--help"]));
    assert!(text.contains("s3://bucket/prefix"), "{text}");
    assert!(text.contains("TAGGER_MODEL"), "{text}");
    assert!(text.contains("--model-version"), "{text}");
}

/// `script` runs a command under a pseudo-terminal (util-linux); `None` when it is missing.
fn in_terminal(args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(script) = script else {
        eprintln!("skipping the terminal half: `script` (util-linux) is not installed");
        return None;
    };
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_tagger"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let out = Command::new(script)
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env("TERM", "xterm-256color")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Some(ok(&out))
}

#[test]
fn explain_colours_words_only_on_a_terminal_and_never_with_no_color() {
    let args = ["explain", "--model", s(model()), QUESTION];
    let piped = ok(&run(&args));
    assert!(!piped.contains('\x1b'), "colour into a pipe: {piped:?}");
    assert!(piped.contains("probability"), "{piped}");
    if let Some(tty) = in_terminal(&args, &[]) {
        assert!(
            tty.contains("\x1b[30;48;2;"),
            "no colour on a terminal: {tty:?}"
        );
        let plain = in_terminal(&args, &[("NO_COLOR", "1")]).unwrap();
        assert!(!plain.contains('\x1b'), "colour under NO_COLOR: {plain:?}");
    }
}
