//! Lambda entry point for `train`: logging, configuration and the S3 client, once; then the
//! handler for every event.

use lambda_runtime::{service_fn, LambdaEvent};
use train::config::Config;
use train::handler::{self, Context};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(
                std::env::var("AWS_LAMBDA_LOG_LEVEL")
                    .unwrap_or_else(|_| "info".into())
                    .to_lowercase(),
            )
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();

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
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| {
        handler::handle(event, &ctx)
    }))
    .await
}
