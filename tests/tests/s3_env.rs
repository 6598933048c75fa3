//! `tagger_s3::open` configured only through the environment, as the Lambda binaries are.
//!
//! The one test here sets process environment variables, so it lives alone in its own test
//! binary: no other test can observe them.

use bytes::Bytes;
use tagger_registry::store::PutMode;
use tagger_tests::moto_or_skip;

#[tokio::test]
async fn open_reaches_an_endpoint_from_aws_endpoint_url_s3_by_host_name() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("env-endpoint").await;
    // `localhost`, not an IP: with the SDK's default virtual-hosted addressing the request would
    // go to `<bucket>.localhost`, which does not resolve. Path style must be switched on.
    let endpoint = moto.endpoint().replace("127.0.0.1", "localhost");
    for (name, value) in [
        ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/tagger-test-config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/tagger-test-credentials",
        ),
    ] {
        std::env::set_var(name, value);
    }
    std::env::remove_var("AWS_ENDPOINT_URL");
    std::env::remove_var("AWS_PROFILE");

    let store = tagger_s3::open(&format!("s3://{bucket}/models"))
        .await
        .unwrap();
    assert_eq!(store.describe(), format!("s3://{bucket}/models"));
    let etag = store
        .put("latest.json", Bytes::from_static(b"{}"), PutMode::IfAbsent)
        .await
        .unwrap();
    let obj = store.get("latest.json").await.unwrap().expect("object");
    assert_eq!(obj.etag, etag);
    // It really went to moto, under the prefix.
    let raw = moto
        .client()
        .get_object()
        .bucket(&bucket)
        .key("models/latest.json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.e_tag(), Some(etag.as_str()));
}
