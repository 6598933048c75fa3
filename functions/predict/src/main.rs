//! The `predict` Lambda: tracing, configuration and the store are set up once, the model is
//! loaded at init, then `lambda_http` runs every HTTP event through [`predict::app`].

use std::sync::Arc;

use predict::{Config, ModelLocation, State};
use tagger_registry::store::{LocalStore, ObjectStore};

// One thread: Lambda sends one event at a time, and each extra worker thread costs RSS (stack,
// allocator arena) and start-up time.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    init_tracing();
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

/// JSON lines inside Lambda (or when `AWS_LAMBDA_LOG_FORMAT=JSON`), text elsewhere; the level
/// comes from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let filter = env("AWS_LAMBDA_LOG_LEVEL")
        .map(|level| level.to_ascii_lowercase())
        .or_else(|| env("RUST_LOG"))
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = match env("AWS_LAMBDA_LOG_FORMAT") {
        Some(format) => format.eq_ignore_ascii_case("json"),
        None => env("AWS_LAMBDA_FUNCTION_NAME").is_some(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        // Lambda stamps each line itself.
        builder
            .json()
            .without_time()
            .with_current_span(false)
            .init();
    } else {
        builder.init();
    }
}
