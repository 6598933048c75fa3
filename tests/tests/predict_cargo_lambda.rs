//! The built `predict` function under `cargo lambda watch`, asked over a real HTTP socket on the
//! Function URL path, with a tiny model published in a temporary folder.
//!
//! Skips (with a printed reason) when cargo-lambda is not installed, unless `CI=true`, where its
//! absence fails the test. The function is compiled on the first invoke, so the first request may
//! take minutes; a function that dies during init makes requests hang, so every request has a
//! timeout and the watcher's exit is checked between attempts.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tagger_registry::store::LocalStore;

/// The watcher and everything it started (cargo, the function), killed as a process group.
struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let pgid = self.0.id().to_string();
        // The negative id addresses the whole group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pgid}")])
            .status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.0.wait();
    }
}

fn cargo_lambda_available() -> bool {
    Command::new("cargo")
        .args(["lambda", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread")]
async fn predict_answers_a_function_url_request_under_cargo_lambda_watch() {
    if !cargo_lambda_available() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cargo-lambda is not installed (CI=true): `pip install cargo-lambda`");
        }
        eprintln!("skipping: cargo-lambda is not installed (`pip install cargo-lambda`)");
        return;
    }
    let models = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(LocalStore::new(models.path()));
    let artifact = tagger_testkit::tiny_artifact(1);
    tagger_testkit::publish(store.as_ref(), "", &artifact).await;

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let port = free_port();
    let mut cmd = Command::new("cargo");
    cmd.args([
        "lambda",
        "watch",
        "--invoke-address",
        "127.0.0.1",
        "--invoke-port",
        &port.to_string(),
    ])
    .arg("--env-var")
    .arg(format!("MODEL_URI=file://{}", models.path().display()))
    .args([
        "--env-var",
        "MODEL_REFRESH_SECS=1",
        "--env-var",
        "RUST_LOG=info",
    ])
    .current_dir(workspace)
    .stdin(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut watcher = Watcher(cmd.spawn().expect("cargo lambda watch starts"));

    let url = format!("http://127.0.0.1:{port}/lambda-url/predict/predict");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    // Compiling the function on first invoke takes minutes on a cold target directory.
    let deadline = Instant::now() + Duration::from_secs(900);
    let question = "How do I fix the borrow checker lifetime error in my rust code?";
    let (status, body) = loop {
        if let Ok(Some(exit)) = watcher.0.try_wait() {
            panic!("cargo lambda watch exited early: {exit}");
        }
        let attempt = client
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "question": question }).to_string())
            .send()
            .await;
        match attempt {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                // Before the function is up, the emulator itself may answer with an error page.
                if status == 200 || text.contains("\"error\"") && text.contains("\"code\"") {
                    break (status, text);
                }
                eprintln!("not ready yet: {status} {text}");
            }
            Err(e) => eprintln!("not ready yet: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no answer from cargo lambda watch within the deadline"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    let tags = json["tags"].as_array().expect("a tags array");
    let want = tagger_core::Predictor::new(artifact)
        .predict(question, &Default::default())
        .expect("library predicts")
        .tags;
    let got: Vec<&str> = tags.iter().filter_map(|t| t.as_str()).collect();
    assert_eq!(got, want, "{body}");
}
