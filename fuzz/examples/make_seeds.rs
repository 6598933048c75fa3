//! Writes the committed seed corpora under `fuzz/corpus/<target>/` (run from the repository root):
//! `cargo run --manifest-path fuzz/Cargo.toml --example make_seeds`.
//!
//! Seeds are few and small on purpose: libFuzzer grows its own working corpus from them.

use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus folder");
    fs::write(dir.join(name), bytes).expect("seed written");
}

/// `csv_and_sidecar`'s layout: one length byte, the sidecar, the CSV.
fn upload(sidecar: &str, csv: &str) -> Vec<u8> {
    let len = u8::try_from(sidecar.len()).expect("sidecar seeds are under 256 bytes");
    let mut out = vec![len];
    out.extend_from_slice(sidecar.as_bytes());
    out.extend_from_slice(csv.as_bytes());
    out
}

fn main() {
    // artifact_decode: a real artifact in the current format, the committed format-1 and
    // format-2 ones, and broken files.
    let current = tagger_testkit::tiny_artifact(1)
        .to_bytes()
        .expect("tiny artifact encodes");
    let format1 = fs::read("shared/core/tests/fixtures/format1/tiny.bin")
        .expect("run from the repository root");
    let format2 = fs::read("shared/core/tests/fixtures/format2/tiny.bin")
        .expect("run from the repository root");
    write("artifact_decode", "tiny-format3.bin", &current);
    write("artifact_decode", "tiny-format2.bin", &format2);
    write("artifact_decode", "tiny-format1.bin", &format1);
    write(
        "artifact_decode",
        "truncated-payload.bin",
        &current[..current.len() / 2],
    );
    write("artifact_decode", "header-only.bin", &current[..52]);
    let mut flipped = current.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    write("artifact_decode", "bad-digest.bin", &flipped);
    let mut future = current[..52].to_vec();
    future[8] = 9;
    write("artifact_decode", "version-9.bin", &future);
    write(
        "artifact_decode",
        "garbage.bin",
        b"PK\x03\x04 not a model at all",
    );

    // csv_and_sidecar
    let csv: String =
        tagger_testkit::tiny_csv()
            .lines()
            .take(12)
            .fold(String::new(), |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            });
    write("csv_and_sidecar", "tiny-no-sidecar", &upload("", &csv));
    write(
        "csv_and_sidecar",
        "sidecar-overrides",
        &upload(
            r#"{"preset":"seed","epochs":3,"hidden":[8],"mask_words":["python"],"threshold":0.5,"max_bad_fraction":0.5}"#,
            &csv,
        ),
    );
    write(
        "csv_and_sidecar",
        "pipe-separator-title-body",
        &upload(
            r#"{"tag_separator":"|","thresholds":"per-tag"}"#,
            "\u{feff}Title,Body,Tags\r\n\"How to \"\"quote\"\"?\",\"multi\r\nline\",csv|rust\r\nempty,,\r\n",
        ),
    );
    write(
        "csv_and_sidecar",
        "origin-columns",
        &upload(
            r#"{"unknown_field":1}"#,
            "tags,original_tags,text\n\"python,pandas\",x,merge frames\njava,,\n",
        ),
    );
    write(
        "csv_and_sidecar",
        "unclosed-quote",
        &upload("{}", "tags,text\npython,\"never closed\nrust,ok\n"),
    );

    // text_tokenize
    write(
        "text_tokenize",
        "plain",
        b"How do I parse JSON in JavaScript? c# .NET c++ node.js",
    );
    write(
        "text_tokenize",
        "html",
        b"<p>Use <code>df.merge(a, on='id')</code> &amp; <a href=\"x\">scikit-learn</a></p>\n<pre><code>import tf\n</code></pre><script>alert(1)</script>",
    );
    write(
        "text_tokenize",
        "unicode",
        "Stra\u{df}e \u{130}stanbul \u{1c5}emal \u{fb01}le \u{3a3}\u{391}\u{3a3} e\u{301} \u{1f600}\n\u{200b}std::vector<int>"
            .as_bytes(),
    );
    write(
        "text_tokenize",
        "invalid-utf8",
        b"caf\xe9 <b>na\xefve</b> \xff\xfe",
    );

    // http_request: `METHOD PATH?QUERY`, content type, body.
    let requests: &[(&str, &[u8])] = &[
        (
            "predict-json",
            b"POST /predict?scores=true&top_k=2\napplication/json\n{\"question\": \"How do I fix a borrow checker error?\"}",
        ),
        (
            "predict-explain-html",
            b"POST /prod/predict?explain=true\ntext/html; charset=utf-8\n<p>pandas <code>dataframe</code> merge</p>",
        ),
        (
            "predict-batch",
            b"POST /\napplication/json\n{\"instances\": [\"react component\", \"cargo build\"], \"threshold\": 0.1, \"explain\": true}",
        ),
        ("predict-text", b"POST /predict\ntext/plain\nnumpy array shape"),
        (
            "predict-form",
            b"POST /predict\napplication/x-www-form-urlencoded\nquestion=tokio+runtime&scores=true",
        ),
        ("model", b"GET /model\n\n"),
        ("health", b"GET /health\n\n"),
        ("wrong-method", b"DELETE /predict\n\n"),
        ("bad-json", b"POST /predict\napplication/json\n{\"question\": 3, \"top_k\": -1}"),
    ];
    for (name, bytes) in requests {
        write("http_request", name, bytes);
    }
}
