//! `tagger models` end to end, on a local folder and on moto's S3 server, and `tagger serve`
//! following (or pinned against) what it does: the real binary, real files, real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SAMPLE_CSV: &str = include_str!("../assets/questions.csv");

fn tagger() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tagger"));
    cmd.env_remove("RUST_LOG")
        .env_remove("TAGGER_MODEL")
        .env_remove("NO_COLOR");
    cmd
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    tagger()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("tagger runs")
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
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

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A models folder with two versions trained by `tagger train` (seed 1, then seed 2 with 3
/// epochs): the second is live and the first is the rollback target.
struct TwoVersions {
    _dir: tempfile::TempDir,
    models: PathBuf,
    first: String,
    second: String,
}

fn two_versions() -> TwoVersions {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("questions.csv");
    std::fs::write(&csv, SAMPLE_CSV).unwrap();
    let models = dir.path().join("models");
    let mut versions = Vec::new();
    for extra in [&["--seed", "1"][..], &["--seed", "2", "--epochs", "3"][..]] {
        let mut args = vec!["train", "--data", s(&csv), "--out", s(&models), "--quiet"];
        args.extend_from_slice(extra);
        ok(&run(&args));
        versions.push(latest(&models));
    }
    assert_ne!(versions[0], versions[1]);
    TwoVersions {
        _dir: dir,
        models,
        first: versions[0].clone(),
        second: versions[1].clone(),
    }
}

fn pointer(models: &Path, name: &str) -> Value {
    json(&std::fs::read_to_string(models.join(name)).unwrap())
}

fn latest(models: &Path) -> String {
    pointer(models, "latest.json")["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn list_show_diff_promote_and_rollback_a_local_folder() {
    let t = two_versions();
    let m = s(&t.models);

    let listed = json(&ok(&run(&["models", "list", "--model", m, "--json"])));
    let versions = listed["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{listed}");
    assert_eq!(listed["latest"], t.second.as_str());
    assert_eq!(listed["previous"], t.first.as_str());
    // Newest first.
    assert_eq!(versions[0]["version"], t.second.as_str());
    assert_eq!(versions[0]["live"], true);
    assert_eq!(versions[1]["previous"], true);
    assert!(
        versions[0]["metrics"]["micro_f1"].as_f64().is_some(),
        "{listed}"
    );

    let text = ok(&run(&["models", "list", "--model", m]));
    assert!(text.contains("2 version(s)"), "{text}");
    let live_line = text.lines().find(|l| l.contains(&t.second)).unwrap();
    assert!(
        live_line.starts_with('*') && live_line.contains("(live)"),
        "{text}"
    );
    assert!(
        text.lines()
            .find(|l| l.contains(&t.first))
            .unwrap()
            .contains("(previous"),
        "{text}"
    );

    // TAGGER_MODEL stands in for --model.
    let text = ok(&run_with(
        &["models", "show", &t.first],
        &[("TAGGER_MODEL", m)],
    ));
    assert!(
        text.contains(&format!("version:     {}", t.first)),
        "{text}"
    );
    assert!(text.contains("status:      previous"), "{text}");
    assert!(
        text.contains("network:     ") && text.contains(" tags"),
        "{text}"
    );
    assert!(!text.contains('['), "no Debug or JSON notation: {text}");

    let d = json(&ok(&run(&[
        "models", "diff", "--model", m, &t.first, &t.second, "--json",
    ])));
    assert_eq!(
        d["settings"]["train.seed"],
        serde_json::json!([1, 2]),
        "{d}"
    );
    assert!(d["settings"]["train.epochs"].is_array(), "{d}");
    assert!(d["metrics"]["micro_f1"]["change"].is_number(), "{d}");
    assert_eq!(d["tags"]["added"], serde_json::json!([]));
    let text = ok(&run(&["models", "diff", "--model", m, &t.first, &t.second]));
    assert!(
        text.contains("train.seed") && text.contains("1 -> 2"),
        "{text}"
    );
    assert!(text.contains("tags: 0 added; 0 removed"), "{text}");

    // Roll back: the first is live again, the second becomes the rollback target.
    let r = json(&ok(&run(&["models", "rollback", "--model", m, "--json"])));
    assert_eq!(r["version"], t.first.as_str());
    assert_eq!(r["replaced"], t.second.as_str());
    assert_eq!(latest(&t.models), t.first);
    assert_eq!(
        pointer(&t.models, "previous.json")["version"],
        t.second.as_str()
    );

    // Promote the second again; promoting the live version is refused.
    let text = ok(&run(&["models", "promote", "--model", m, &t.second]));
    assert!(
        text.contains(&format!("promoted: {} is live", t.second)),
        "{text}"
    );
    assert_eq!(latest(&t.models), t.second);
    fails_with(
        &run(&["models", "promote", "--model", m, &t.second]),
        "already live",
    );
    fails_with(
        &run(&["models", "promote", "--model", m, "no-such-version"]),
        "does not load",
    );
}

#[test]
fn promote_and_rollback_refuse_a_version_that_does_not_load() {
    let t = two_versions();
    let m = s(&t.models);
    // A version folder whose artifact is damaged (one byte flipped: the digest check fails).
    let broken = t.models.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    let mut bytes = std::fs::read(t.models.join(&t.first).join("model.bin")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(broken.join("model.bin"), &bytes).unwrap();
    let before = std::fs::read(t.models.join("latest.json")).unwrap();

    let out = run(&["models", "promote", "--model", m, "broken"]);
    fails_with(&out, "version broken does not load");
    assert!(
        stderr(&out).contains("latest.json is unchanged"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(t.models.join("latest.json")).unwrap(), before);

    let listed = json(&ok(&run(&["models", "list", "--model", m, "--json"])));
    let row = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == "broken")
        .cloned()
        .unwrap();
    assert!(row["error"].is_string(), "{row}");
    let text = ok(&run(&["models", "list", "--model", m]));
    assert!(text.contains("does not load"), "{text}");

    // A rollback target whose artifact no longer matches its pointer.
    let mut prev = pointer(&t.models, "previous.json");
    prev["key"] = "broken/model.bin".into();
    std::fs::write(t.models.join("previous.json"), prev.to_string()).unwrap();
    let out = run(&["models", "rollback", "--model", m]);
    fails_with(&out, "does not load: not rolled back");
    assert_eq!(std::fs::read(t.models.join("latest.json")).unwrap(), before);
}

#[test]
fn models_commands_name_a_missing_folder_or_a_pointer_file() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(
        &run(&["models", "list", "--model", s(&dir.path().join("nope"))]),
        "no model folder at",
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let pointer = elsewhere.path().join("latest.json");
    std::fs::write(&pointer, "{}").unwrap();
    fails_with(
        &run(&["models", "list", "--model", s(&pointer)]),
        "is a pointer file",
    );
    // Nothing published: an empty listing, and nothing to roll back to.
    let text = ok(&run(&["models", "list", "--model", s(dir.path())]));
    assert!(text.starts_with("0 version(s)"), "{text}");
    fails_with(
        &run(&["models", "rollback", "--model", s(dir.path())]),
        "nothing to roll back to",
    );
}

// ---------------------------------------------------------------------------------------------
// `tagger serve`: reloads logged, MODEL_VERSION pinning

struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tagger serve --port 0` with `args` and `env`; stderr (the log) goes to a file.
fn serve(args: &[&str], env: &[(&str, &str)], log_dir: &Path) -> Served {
    let log = log_dir.join(format!("serve-{}.log", args.len()));
    let mut child = tagger()
        .args(["serve", "--port", "0"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "no address in {first:?}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    Served { child, port, log }
}

/// `GET path` with `Connection: close`: status and JSON body.
fn get(port: u16, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, json(body))
}

/// `GET /health` until it answers 200 (30 s at most).
fn healthy(port: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(port, "/health");
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "never healthy: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_logs_each_reload_and_a_pinned_version_never_reloads() {
    let t = two_versions();
    let m = s(&t.models);
    let logs = tempfile::tempdir().unwrap();
    let follow = serve(&["--model", m], &[("MODEL_REFRESH_SECS", "0")], logs.path());
    let pinned = serve(
        &["--model", m, "--model-version", &t.first],
        &[("MODEL_REFRESH_SECS", "0")],
        logs.path(),
    );
    assert_eq!(healthy(follow.port)["version"], t.second.as_str());
    assert_eq!(healthy(pinned.port)["version"], t.first.as_str());
    let (_, model) = get(pinned.port, "/model");
    assert_eq!(
        (model["version"].as_str(), &model["pinned"]),
        (Some(t.first.as_str()), &Value::Bool(true)),
        "{model}"
    );
    let (_, model) = get(follow.port, "/model");
    assert_eq!(model["pinned"], false, "{model}");

    ok(&run(&["models", "rollback", "--model", m]));
    assert_eq!(healthy(follow.port)["version"], t.first.as_str());
    ok(&run(&["models", "promote", "--model", m, &t.second]));
    assert_eq!(healthy(follow.port)["version"], t.second.as_str());
    // The pinned server kept its version through both moves.
    assert_eq!(healthy(pinned.port)["version"], t.first.as_str());

    let log = std::fs::read_to_string(&follow.log).unwrap();
    let loads: Vec<&str> = log.lines().filter(|l| l.contains("model loaded")).collect();
    assert_eq!(loads.len(), 3, "initial load and two reloads:\n{log}");
    assert!(
        loads[1].contains(&t.first) && loads[2].contains(&t.second),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "no colour in a log file: {log}");
    let log = std::fs::read_to_string(&pinned.log).unwrap();
    assert_eq!(log.matches("model loaded").count(), 1, "{log}");
    assert!(log.contains("pinned"), "{log}");
}

#[test]
fn serve_refuses_a_pinned_version_that_is_not_a_version_id() {
    let t = two_versions();
    let out = run(&[
        "serve",
        "--model",
        s(&t.models),
        "--port",
        "0",
        "--model-version",
        "a/b",
    ]);
    fails_with(&out, "MODEL_VERSION");
}

// ---------------------------------------------------------------------------------------------
// On S3 (moto)

/// The environment that points the binary's AWS SDK at moto with test credentials.
fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ]
}

#[test]
fn models_commands_and_serve_work_on_s3() {
    let Some(moto) = tagger_tests::Moto::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bucket = rt.block_on(moto.fresh_bucket("models-cli"));
    let store = tagger_s3::S3Store::new(moto.client(), &bucket, "models");
    let (a, b) = (
        tagger_testkit::tiny_artifact(1),
        tagger_testkit::tiny_artifact(2),
    );
    rt.block_on(async {
        tagger_testkit::publish(&store, "", &a).await;
        tagger_testkit::publish(&store, "", &b).await;
        // A version whose artifact does not decode.
        use tagger_registry::store::{ObjectStore, PutMode};
        store
            .put(
                "broken/model.bin",
                bytes::Bytes::from_static(b"TAGGERMD not a model"),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
    });
    let live = |store: &tagger_s3::S3Store| {
        rt.block_on(tagger_registry::registry::Registry::new(store, "").latest())
            .unwrap()
            .unwrap()
            .0
            .version
    };
    let env = aws_env(moto.endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let uri = format!("s3://{bucket}/models");
    let (va, vb) = (a.info.version.as_str(), b.info.version.as_str());

    let listed = json(&ok(&run_with(
        &["models", "list", "--model", &uri, "--json"],
        &env,
    )));
    let names: Vec<&str> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{listed}");
    assert!(names.contains(&va) && names.contains(&vb) && names.contains(&"broken"));
    assert_eq!(listed["latest"], vb);
    assert_eq!(listed["store"], uri.as_str());

    fails_with(
        &run_with(&["models", "promote", "--model", &uri, "broken"], &env),
        "does not load",
    );
    assert_eq!(live(&store), vb);
    ok(&run_with(&["models", "rollback", "--model", &uri], &env));
    assert_eq!(live(&store), va);
    let text = ok(&run_with(&["models", "show", "--model", &uri, vb], &env));
    assert!(text.contains("status:      previous"), "{text}");
    let d = json(&ok(&run_with(
        &["models", "diff", "--model", &uri, va, vb, "--json"],
        &env,
    )));
    assert_eq!(d["a"], va);
    ok(&run_with(&["models", "promote", "--model", &uri, vb], &env));
    assert_eq!(live(&store), vb);

    // `tagger serve` reads the same bucket.
    let logs = tempfile::tempdir().unwrap();
    let served = serve(&["--model", &uri], &env, logs.path());
    assert_eq!(healthy(served.port)["version"], vb);
}
