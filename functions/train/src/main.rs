//! Lambda entry point for `train`: logging, configuration and the S3 client, once; then the
//! handler for every event.

use lambda_runtime::{service_fn, LambdaEvent};
use train::config::Config;
use train::handler::{self, Context};

// As the CLI's: training's per-epoch buffers stay mapped instead of being faulted in again.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tagger_telemetry::init("info");

    let mut config = Config::from_env()?;
    handler::apply_upload_limit(
        &mut config.job,
        std::env::var("MAX_UPLOAD_MB").ok().as_deref(),
    )?;
    tracing::info!(job = ?config.job, "configuration");
    let client = tagger_s3::client_from_env().await;
    let ctx = Context {
        client,
        job: config.job,
        metrics: config.metrics,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        handler::handle(event, &ctx)
    }))
    .await
}
