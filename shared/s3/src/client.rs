//! S3 clients: from the environment like every AWS SDK, or for a local server in tests.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::Client;

/// A client configured like every AWS SDK: region, credentials and endpoint from the environment,
/// profile files and instance/Lambda metadata.
///
/// `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (or `endpoint_url` in the profile) are honoured by
/// the SDK itself. When one is set, this also turns on path-style addressing
/// (`http://host/bucket/key`): a custom endpoint is almost always a local S3-compatible server
/// (moto, MinIO, LocalStack), which serves path-style only, while the SDK's default
/// virtual-hosted style would send requests to `bucket.localhost`, a name that does not resolve.
/// No environment variable sets path style, hence this rule. Real S3 also accepts path style.
pub async fn client_from_env() -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    client_from_sdk_config(&config)
}

/// [`client_from_env`] for an already loaded configuration.
pub fn client_from_sdk_config(config: &SdkConfig) -> Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if endpoint_configured(config) {
        builder = builder.force_path_style(true);
    }
    Client::from_conf(builder.build())
}

/// Whether `config` overrides the S3 endpoint, by the same rule the S3 client applies when it is
/// built from `config`: the S3-specific setting (env `AWS_ENDPOINT_URL_S3` or the profile's `s3`
/// service section) or else the global one (`AWS_ENDPOINT_URL`, profile `endpoint_url`), unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is set.
pub(crate) fn endpoint_configured(config: &SdkConfig) -> bool {
    if config.endpoint_url().is_some() {
        return true;
    }
    let Ok(key) = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
    else {
        return false;
    };
    config
        .service_config()
        .and_then(|c| c.load_config(key))
        .is_some_and(|url| !url.is_empty())
}

/// A client for a local S3-compatible server in tests: static credentials, path-style addressing.
pub fn client_for_endpoint(endpoint: &str, region: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new("test", "test", None, None, "tagger-test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}
