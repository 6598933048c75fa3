//! The `predict` Lambda: tracing, configuration and the store are set up once, the model is
//! loaded at init, then `lambda_http` runs every HTTP event through [`predict::app`].

use std::sync::Arc;

use predict::{Config, ModelLocation, State};
use tagger_registry::store::{LocalStore, ObjectStore};

// One thread: Lambda sends one event at a time, and each extra worker thread costs RSS (stack,
// allocator arena) and start-up time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    tagger_telemetry::init("info");
    let config = Config::from_env()?;
    let store: Arc<dyn ObjectStore> = match config.location()? {
        // The S3 store is rooted at the URI's prefix, so latest.json sits at the store's root.
        ModelLocation::S3 { .. } => Arc::from(tagger_s3::open(&config.model_uri).await?),
        ModelLocation::Local(dir) => Arc::new(LocalStore::new(dir)),
    };
    tracing::info!(store = %store.describe(), refresh_secs = config.refresh.as_secs(), "starting");
    let state = Arc::new(State::new(store, "", config).await);
    lambda_http::run(predict::app(state)).await
}
