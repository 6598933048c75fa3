//! `tagger serve`: the predict function's own application ([`predict::app`]) behind a local
//! HTTP/1 server, so a laptop answers exactly as the deployed function does.
//!
//! What a local server needs on top of the application: accept errors (out of file descriptors)
//! are logged and survived; at most `max_connections` connections are open at once (the rest wait
//! in the kernel's backlog); a connection that does not send its request head within the header
//! timeout is closed (idle keep-alive connections too); prediction work runs on at most one
//! blocking thread per core, so `GET /health` answers while explanations run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tagger_registry::store::{LocalStore, Location, ObjectStore};
use tokio::sync::Semaphore;

/// Default for `--max-connections`: 256 open connections, each holding at most one request
/// body (`MAX_BODY_BYTES`, 1 MiB by default), bounds buffered bodies to about 256 MiB.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default for `--header-timeout-secs`.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Pause after a failed accept, so a full file table is not retried in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How to serve; the application's own limits come from the same environment variables as on
/// Lambda (`MAX_BODY_BYTES`, `MAX_EXPLAIN_COST`, `BODY_TIMEOUT_SECS`, ...).
#[derive(Clone, Debug)]
pub struct Serve {
    pub model: String,
    pub host: String,
    pub port: u16,
    /// Origins allowed to call from other pages (`*` for any); none adds no CORS headers.
    pub cors: Vec<String>,
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Serve only this version, never reloading (`MODEL_VERSION`).
    pub model_version: Option<String>,
}

impl Serve {
    pub fn new(model: impl Into<String>, host: impl Into<String>, port: u16) -> Serve {
        Serve {
            model: model.into(),
            host: host.into(),
            port,
            cors: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            model_version: None,
        }
    }
}

/// The models' store: `s3://bucket/prefix` (the AWS environment's credentials, region and
/// endpoint), or a local folder from a path or `file://` URI, which must exist.
async fn open_store(model: &str) -> Result<Arc<dyn ObjectStore>> {
    if let Location::Local(path) = Location::parse(model)? {
        if path.file_name().is_some_and(|n| n == "latest.json") && path.is_file() {
            bail!(
                "{} is the pointer file: pass the folder that holds it ({})",
                path.display(),
                path.parent()
                    .map_or(".".into(), |p| p.display().to_string())
            );
        }
        if !path.is_dir() {
            let path = path.display();
            bail!("no model folder at {path}: train one first (`tagger train --out {path}`) or pass the folder that holds latest.json");
        }
        return Ok(Arc::new(LocalStore::new(path)));
    }
    Ok(Arc::from(tagger_s3::open(model).await?))
}

/// The application's configuration: the environment's, for this folder, with `--cors`.
fn config(opts: &Serve) -> Result<predict::Config> {
    let model = opts.model.clone();
    let mut config = predict::Config::from_lookup(|name| match name {
        "MODEL_URI" => Some(model.clone()),
        "MODEL_VERSION" if opts.model_version.is_some() => opts.model_version.clone(),
        other => std::env::var(other).ok(),
    })?;
    if !opts.cors.is_empty() {
        config.cors = predict::CorsOrigins::parse(&opts.cors.join(","))
            .map_err(|e| anyhow::anyhow!("--cors: {e}"))?;
    }
    config.cpu_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(config)
}

pub fn run(opts: &Serve) -> Result<()> {
    if opts.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    let config = config(opts)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = open_store(&opts.model).await?;
        let state = Arc::new(predict::State::new(store, "", config).await);
        let app = predict::app(Arc::clone(&state));
        let addr: SocketAddr = format!("{}:{}", opts.host, opts.port)
            .parse()
            .with_context(|| format!("bad address {}:{}", opts.host, opts.port))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let pinned = match state.models().pinned() {
            Some(v) => format!(", pinned to version {v}"),
            None => String::new(),
        };
        println!(
            "serving {}{pinned} on http://{}  (the page at /; POST /predict, GET /model, GET /health, GET /openapi.json; Ctrl-C stops)",
            opts.model,
            listener.local_addr()?
        );
        let slots = Arc::new(Semaphore::new(opts.max_connections));
        loop {
            // Wait for a free slot before accepting: over the cap, clients queue in the backlog.
            let slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot?,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE, ENFILE, ECONNABORTED...: the listener is still good.
                        tracing::warn!(error = %e, "accept failed; retrying");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let service = TowerToHyperService::new(app.clone());
            let header_timeout = opts.header_timeout;
            tokio::spawn(async move {
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("connection ended: {e}");
                }
                drop(slot);
            });
        }
    })
}
