//! Helpers for the end-to-end tests: real services started as child processes.
//!
//! [`Moto`] runs moto's S3 server (`pip install 'moto[server]'`), which implements the
//! conditional requests the stores rely on (`If-None-Match` on GET and PUT, `If-Match` on PUT).
//! Without `moto_server` on `PATH` the tests skip with a printed reason, except under CI
//! (`CI=true`), where a missing server fails the test: CI must never pass by skipping.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;

/// Program name looked up on `PATH`; `MOTO_SERVER` may name another path.
const MOTO_PROGRAM: &str = "moto_server";
const REGION: &str = "us-east-1";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts moto, or skips the calling test (prints why and returns) when it is not installed.
///
/// ```ignore
/// let moto = moto_or_skip!();
/// ```
#[macro_export]
macro_rules! moto_or_skip {
    () => {
        match $crate::Moto::start() {
            Some(moto) => moto,
            None => return,
        }
    };
}

/// A moto S3 server on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    endpoint: String,
    client: Client,
}

/// Whether we run under CI, where skipping a service test is an error.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The `moto_server` executable: `$MOTO_SERVER`, else the first on `PATH`.
fn moto_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(MOTO_PROGRAM))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

impl Moto {
    /// Starts a server and waits until it answers.
    ///
    /// `None` (after printing a skip reason) when `moto_server` is not installed; panics when it
    /// is missing under CI or fails to start.
    pub fn start() -> Option<Moto> {
        let Some(program) = moto_program() else {
            let reason = format!(
                "`{MOTO_PROGRAM}` is not on PATH (install it with `pip install 'moto[server]'` \
                 or set MOTO_SERVER)"
            );
            assert!(
                !in_ci(),
                "CI=true but {reason}: S3 tests must not be skipped in CI"
            );
            eprintln!("skipping: {reason}");
            return None;
        };
        // Another process may grab the port between our probe and moto's bind: try a few.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::spawn(&program, free_port()) {
                Ok(moto) => return Some(moto),
                Err(e) => last_error = e,
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    fn spawn(program: &PathBuf, port: u16) -> Result<Moto, String> {
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("temp log file: {e}"))?;
        let stderr = log
            .reopen()
            .map_err(|e| format!("reopen temp log file: {e}"))?;
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let output = std::fs::read_to_string(log.path()).unwrap_or_default();
                return Err(format!(
                    "{} exited with {status}: {output}",
                    program.display()
                ));
            }
            if answers_http(port) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer on {endpoint} within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let client = tagger_s3::client_for_endpoint(&endpoint, REGION);
        Ok(Moto {
            child,
            endpoint,
            client,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for this server (static test credentials, path-style addressing).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Creates a bucket named after `name`, unique across tests and runs, and returns its name.
    pub async fn fresh_bucket(&self, name: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let base: String = name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(30)
            .collect();
        let bucket = format!(
            "{}-{}-{}-{nanos}",
            base.trim_matches('-'),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.client
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "create bucket {bucket} on {}: {}",
                    self.endpoint,
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            });
        bucket
    }
}

/// Whether something on `port` answers a plain HTTP request (moto binds before it serves).
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/")
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Already exited is fine; there is nothing else to do about a failed kill in a drop.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
