//! The `predict` function: HTTP tag prediction served from the latest published model.
//!
//! One HTTP application, [`app`], answers a Lambda Function URL, an API Gateway HTTP API (v2) and
//! a REST API (v1) (`lambda_http` turns all three events into one `http::Request` and runs the
//! router), and `tagger serve` runs the same router behind a local HTTP/1 server.
//!
//! ```text
//! request -> app (request id, tracing, CORS, timeouts, body limit)
//!         -> routes (route, content type, JSON/text/HTML body, options; the page and its assets)
//!         -> models (the current Predictor; a conditional GET of latest.json at most every
//!            MODEL_REFRESH_SECS swaps a new one in)
//!         -> Predictor::predict / explain, on the CPU pool -> JSON response
//! ```
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use tagger_registry::store::LocalStore;
//! use tower::ServiceExt;
//!
//! let config = predict::Config::for_local("file:///tmp/models");
//! let store = Arc::new(LocalStore::new("/tmp/models"));
//! // Loads the model now; a missing one is not an error: requests get 503 until one appears.
//! let state = Arc::new(predict::State::new(store, "", config).await);
//! let req = lambda_http::request::from_str(include_str!("../fixtures/apigw-v2-predict.json")).unwrap();
//! let resp = predict::app(state).oneshot(req).await.unwrap();
//! assert_eq!(resp.status(), 200);
//! # }
//! ```

use std::sync::Arc;

use tagger_registry::store::ObjectStore;
use tokio::sync::Semaphore;

mod app;
mod config;
mod error;
mod metrics;
mod models;
mod openapi;
mod request;
mod routes;
pub use app::app;
pub use config::{Config, ConfigError, CorsOrigins, ModelLocation};
pub use models::{ModelCache, RefreshOutcome, Served};

/// What every request shares: the configuration, the model cache and the CPU pool. Build it
/// once per process.
pub struct State {
    config: Config,
    models: ModelCache,
    /// Permits for prediction work off the async workers; `None` runs it inline.
    cpu: Option<Arc<Semaphore>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config)
            .field("models", &self.models)
            .finish()
    }
}

impl State {
    /// Builds the state and loads the published model (call it at init). `prefix` is the key
    /// prefix inside `store` that holds `latest.json` (`""` when the store is rooted at the models
    /// folder, as `tagger_s3::open("s3://bucket/models")` and a local folder are).
    ///
    /// No model, or one that fails to load, is logged, not an error: the function answers 503
    /// until a later refresh finds a good one.
    pub async fn new(store: Arc<dyn ObjectStore>, prefix: &str, config: Config) -> State {
        let state = State::unloaded(store, prefix, config);
        state.models.refresh_now().await;
        state
    }

    /// Like [`State::new`] without the initial load: the first request loads the model.
    pub fn unloaded(store: Arc<dyn ObjectStore>, prefix: &str, config: Config) -> State {
        let models =
            ModelCache::new(store, prefix, config.refresh).pinned_to(config.model_version.clone());
        let cpu = (config.cpu_workers > 0).then(|| Arc::new(Semaphore::new(config.cpu_workers)));
        State {
            config,
            models,
            cpu,
        }
    }

    /// Runs CPU-bound work: inline when the pool is off (one event at a time on Lambda), else on
    /// tokio's blocking threads with at most `cpu_workers` jobs at once, so the async workers stay
    /// free to answer `GET /health`. The permit travels with the job: a request that times out
    /// does not free a slot while its work still runs.
    pub(crate) async fn run_cpu<T, F>(&self, job: F) -> Option<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(pool) = &self.cpu else {
            return Some(job());
        };
        let permit = Arc::clone(pool).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        })
        .await
        .ok()
    }

    /// Checks the pointer now, whatever the refresh interval, and swaps in a changed model.
    pub async fn refresh_now(&self) -> RefreshOutcome {
        self.models.refresh_now().await
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn models(&self) -> &ModelCache {
        &self.models
    }
}
