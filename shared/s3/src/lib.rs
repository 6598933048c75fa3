//! Amazon S3 (and S3-compatible servers) behind tagger's [`ObjectStore`] trait.
//!
//! The training function reads uploads and publishes models here; the prediction function polls
//! the published pointer with conditional GETs. S3's conditional requests carry the two guarantees
//! the design relies on without a database:
//!
//! - `get_if_changed` sends `If-None-Match: <etag>`; an unchanged object costs a bodiless `304`.
//! - `put` with [`PutMode::IfAbsent`] / [`PutMode::IfMatch`] sends `If-None-Match: *` / `If-Match`;
//!   a lost race is `412 Precondition Failed` (or `409 ConditionalRequestConflict` when two
//!   conditional writes overlap) and becomes [`Error::PreconditionFailed`].
//!
//! Binaries pick their store from a URI with [`open`]:
//!
//! ```no_run
//! # async fn demo() -> tagger_registry::Result<()> {
//! let store = tagger_s3::open("s3://my-bucket/models").await?; // or "file://./bucket/models"
//! let latest = store.get("latest.json").await?;
//! # Ok(()) }
//! ```
//!
//! Permissions: without `s3:ListBucket` on the bucket, S3 answers `403 AccessDenied` instead of
//! `404` for a missing key, so a missing object shows up as a (non-retryable) store error rather
//! than `None`. Grant `s3:ListBucket` alongside `s3:GetObject`/`s3:PutObject`.

use std::error::Error as StdError;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use tagger_registry::store::{
    check_key, join, BodySink, Fetched, LocalStore, Location, Object, ObjectStore, PutMode,
};
use tagger_registry::{Error, Result};

mod client;
mod errors;

pub use client::{client_for_endpoint, client_from_env, client_from_sdk_config};
use errors::{classify, is_configuration_fault, status};

/// Objects under `prefix` in one bucket; store keys are relative to the prefix.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// A store rooted at `s3://bucket/prefix`; leading and trailing `/` of the prefix are ignored.
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_owned(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The root prefix, without leading or trailing `/` (empty for the bucket's root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The full S3 key of store key `key`.
    pub fn object_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(join(&self.prefix, key))
    }

    /// An unconditional GET whose body is still to be read; `None` for a missing key.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>> {
        let full = self.object_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            // Only NoSuchKey means "absent": a missing bucket is also a 404 but a real fault.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.fail("get", key, e)),
        }
    }

    fn fail<E>(&self, op: &'static str, key: &str, err: SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let location = format!("s3://{}/{}", self.bucket, join(&self.prefix, key));
        let (retryable, detail) = classify(&err);
        if is_configuration_fault(&err) {
            return Error::StorageConfig {
                op,
                key: key.to_owned(),
                message: format!("{location}: {detail}"),
            };
        }
        Error::Store {
            op,
            key: key.to_owned(),
            message: format!("{location}: {detail}"),
            retryable,
        }
    }

    fn no_etag(&self, op: &'static str, key: &str) -> Error {
        // Every S3 implementation we target returns one; without it the conditional writes that
        // publish models cannot work, so say so rather than inventing one.
        Error::Store {
            op,
            key: key.to_owned(),
            message: format!(
                "s3://{}/{}: the response carries no ETag",
                self.bucket,
                join(&self.prefix, key)
            ),
            retryable: false,
        }
    }

    /// The connection broke mid-body: a new request may well succeed.
    fn body_read_failed(&self, key: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        Error::Store {
            op: "get",
            key: key.to_owned(),
            message: format!(
                "s3://{}/{}: reading the body failed: {}",
                self.bucket,
                join(&self.prefix, key),
                DisplayErrorContext(e)
            ),
            retryable: true,
        }
    }

    async fn read_body(&self, key: &str, body: ByteStream, etag: Option<String>) -> Result<Object> {
        let etag = etag.ok_or_else(|| self.no_etag("get", key))?;
        let body = body
            .collect()
            .await
            .map_err(|e| self.body_read_failed(key, &e))?;
        Ok(Object {
            body: body.into_bytes(),
            etag,
        })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        // One code path for plain and conditional reads: without an ETag S3 never answers 304.
        match self.get_if_changed(key, None).await? {
            Fetched::Changed(obj) => Ok(Some(obj)),
            Fetched::Missing | Fetched::NotModified => Ok(None),
        }
    }

    #[tracing::instrument(name = "s3.get", skip_all, fields(bucket = %self.bucket, key = %key, conditional = etag.is_some()))]
    async fn get_if_changed(&self, key: &str, etag: Option<&str>) -> Result<Fetched> {
        let full = self.object_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .set_if_none_match(etag.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Fetched::Changed(
                self.read_body(key, out.body, out.e_tag).await?,
            )),
            // The SDK models 304 as an error without a code; only the raw status tells.
            Err(e) if status(&e) == Some(304) => Ok(Fetched::NotModified),
            // Only NoSuchKey means "absent": a missing bucket is also a 404 but a real fault.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                Ok(Fetched::Missing)
            }
            Err(e) => Err(self.fail("get", key, e)),
        }
    }

    /// One GET; each piece of the body goes to `sink` as the connection delivers it.
    #[tracing::instrument(name = "s3.get", skip_all, fields(bucket = %self.bucket, key = %key, streaming = true))]
    async fn get_streaming(&self, key: &str, sink: &mut BodySink<'_>) -> Result<bool> {
        let Some(out) = self.get_object(key).await? else {
            return Ok(false);
        };
        let mut body = out.body;
        while let Some(piece) = body.next().await {
            sink(&piece.map_err(|e| self.body_read_failed(key, &e))?)?;
        }
        Ok(true)
    }

    /// Refuses by the response's Content-Length before reading the body, and stops reading once
    /// more than `max_bytes` arrived when there is no length.
    #[tracing::instrument(name = "s3.get", skip_all, fields(bucket = %self.bucket, key = %key, max_bytes = max_bytes))]
    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>> {
        let Some(out) = self.get_object(key).await? else {
            return Ok(None);
        };
        let too_large = |size: Option<u64>| Error::TooLarge {
            key: key.to_owned(),
            size,
            limit: max_bytes,
        };
        if let Some(len) = out.content_length.filter(|&l| l >= 0) {
            if len as u64 > max_bytes {
                return Err(too_large(Some(len as u64)));
            }
        }
        let etag = out.e_tag.ok_or_else(|| self.no_etag("get", key))?;
        let mut body = out.body;
        let mut buf = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.body_read_failed(key, &e))?;
            if (buf.len() + chunk.len()) as u64 > max_bytes {
                return Err(too_large(None));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Some(Object {
            body: Bytes::from(buf),
            etag,
        }))
    }

    /// A HEAD response has no body, so a missing bucket is indistinguishable from a missing key
    /// here: both are `None`. Use `get` where that difference matters.
    #[tracing::instrument(name = "s3.head", skip_all, fields(bucket = %self.bucket, key = %key))]
    async fn head(&self, key: &str) -> Result<Option<String>> {
        let full = self.object_key(key)?;
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.e_tag.ok_or_else(|| self.no_etag("head", key))?)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(self.fail("head", key, e)),
        }
    }

    #[tracing::instrument(name = "s3.put", skip_all, fields(bucket = %self.bucket, key = %key, bytes = body.len()))]
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<String> {
        let full = self.object_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .body(ByteStream::from(body));
        let request = match mode {
            PutMode::Overwrite => request,
            PutMode::IfAbsent => request.if_none_match("*"),
            PutMode::IfMatch(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => out.e_tag.ok_or_else(|| self.no_etag("put", key)),
            Err(e)
                if status(&e) == Some(412)
                    || e.code() == Some("PreconditionFailed")
                    // Two conditional writes to one key in flight at once: S3 lets one win and
                    // answers the other 409; for the caller it is the same lost race.
                    || e.code() == Some("ConditionalRequestConflict") =>
            {
                Err(Error::PreconditionFailed {
                    key: key.to_owned(),
                })
            }
            Err(e) => Err(self.fail("put", key, e)),
        }
    }

    /// ListObjectsV2 under the store's root, page by page (1,000 keys a page).
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{root}{prefix}"))
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail("list", prefix, e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter_map(|k| k.strip_prefix(root.as_str()))
                    .filter(|k| check_key(k).is_ok())
                    .map(str::to_owned),
            );
        }
        keys.sort();
        Ok(keys)
    }

    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix (without surrounding `/`; empty for
/// `s3://bucket`), by the registry's one uri parser.
pub fn parse_s3_uri(uri: &str) -> Result<(String, String)> {
    match Location::parse(uri)? {
        Location::S3 { bucket, prefix } => Ok((bucket, prefix)),
        Location::Local(_) => Err(Error::BadUri {
            uri: uri.to_owned(),
            message: "not an s3:// uri (expected s3://bucket/prefix)".into(),
        }),
    }
}

/// The store a URI names: `s3://bucket/prefix` (client from the environment, see
/// [`client_from_env`]) or `file://path` (a local folder; `file:///abs` or `file://relative`).
pub async fn open(uri: &str) -> Result<Box<dyn ObjectStore>> {
    Ok(match Location::parse(uri)? {
        Location::S3 { bucket, prefix } => {
            Box::new(S3Store::new(client_from_env().await, bucket, prefix))
        }
        Location::Local(path) => Box::new(LocalStore::new(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::endpoint_configured;
    use aws_config::SdkConfig;

    fn uri_error(uri: &str) -> String {
        match parse_s3_uri(uri) {
            Err(e @ Error::BadUri { .. }) => e.to_string(),
            other => panic!("{uri}: expected a bad-uri error, got {other:?}"),
        }
    }

    #[test]
    fn parses_bucket_and_prefix() {
        let cases = [
            ("s3://my-bucket/models", "my-bucket", "models"),
            ("s3://my-bucket/models/", "my-bucket", "models"),
            ("s3://my-bucket/a/b/c", "my-bucket", "a/b/c"),
            ("s3://my-bucket", "my-bucket", ""),
            ("s3://my-bucket/", "my-bucket", ""),
            (
                "s3://my.bucket-1/with space+plus",
                "my.bucket-1",
                "with space+plus",
            ),
        ];
        for (uri, bucket, prefix) in cases {
            assert_eq!(
                parse_s3_uri(uri).unwrap(),
                (bucket.to_owned(), prefix.to_owned()),
                "{uri}"
            );
        }
    }

    #[test]
    fn rejects_uri_without_s3_scheme() {
        assert!(uri_error("https://bucket/models").contains("unsupported scheme `https`"));
        assert!(uri_error("S3://bucket/models").contains("unsupported scheme `S3`"));
        assert!(uri_error("bucket/models").contains("`bucket/models`"));
    }

    #[test]
    fn rejects_uri_without_bucket() {
        assert!(uri_error("s3://").contains("names no bucket"));
        assert!(uri_error("s3:///models").contains("names no bucket"));
    }

    #[test]
    fn rejects_invalid_bucket_names() {
        assert!(uri_error("s3://My_Bucket/x").contains("lowercase"));
        assert!(uri_error("s3://ab/x").contains("3 to 63"));
        assert!(uri_error(&format!("s3://{}/x", "a".repeat(64))).contains("3 to 63"));
        assert!(uri_error("s3://-bucket/x").contains("begin and end"));
        assert!(uri_error("s3://my..bucket/x").contains("`..`"));
    }

    #[test]
    fn rejects_prefix_with_empty_or_dot_segments_or_query() {
        assert!(uri_error("s3://bucket/a//b").contains("empty, `.` or `..`"));
        assert!(uri_error("s3://bucket/a/../b").contains("empty, `.` or `..`"));
        assert!(uri_error("s3://bucket//a").contains("empty, `.` or `..`"));
        assert!(uri_error("s3://bucket/a?versionId=1").contains("`?`"));
    }

    fn store(prefix: &str) -> S3Store {
        S3Store::new(
            client_for_endpoint("http://127.0.0.1:1", "us-east-1"),
            "bucket",
            prefix,
        )
    }

    #[test]
    fn joins_keys_under_the_prefix_and_rejects_escaping_keys() {
        assert_eq!(
            store("/models/").object_key("latest.json").unwrap(),
            "models/latest.json"
        );
        assert_eq!(store("").object_key("a/b").unwrap(), "a/b");
        assert!(matches!(
            store("models").object_key("../x"),
            Err(Error::Store {
                retryable: false,
                ..
            })
        ));
    }

    #[test]
    fn describes_itself_as_an_s3_uri() {
        assert_eq!(store("models/").describe(), "s3://bucket/models");
        assert_eq!(store("").describe(), "s3://bucket");
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_a_retryable_store_error() {
        // Port 1 on loopback refuses connections at once; no retries make the test quick.
        let config = client_for_endpoint("http://127.0.0.1:1", "us-east-1")
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build();
        let store = S3Store::new(Client::from_conf(config), "bucket", "models");
        match store.get("latest.json").await {
            Err(Error::Store {
                op: "get",
                key,
                retryable: true,
                message,
            }) => {
                assert_eq!(key, "latest.json");
                assert!(
                    message.starts_with("s3://bucket/models/latest.json: "),
                    "{message}"
                );
            }
            other => panic!("expected a retryable store error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn open_picks_the_store_from_the_uri_scheme() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("file://{}", dir.path().display());
        let local = open(&uri).await.unwrap();
        assert_eq!(local.describe(), uri);

        assert!(matches!(open("file://").await, Err(Error::BadUri { .. })));
        match open("http://example.com/x").await {
            Err(Error::BadUri { message, .. }) => {
                assert!(message.contains("unsupported scheme `http`"), "{message}")
            }
            Err(other) => panic!("expected invalid config, got {other:?}"),
            Ok(store) => panic!("expected invalid config, got {}", store.describe()),
        }
        let s3 = open("s3://my-bucket/models/").await.unwrap();
        assert_eq!(s3.describe(), "s3://my-bucket/models");
        match open("s3://Bad_Bucket/x").await {
            Err(Error::BadUri { message, .. }) => assert!(message.contains("Bad_Bucket")),
            Err(other) => panic!("expected invalid config, got {other:?}"),
            Ok(store) => panic!("expected invalid config, got {}", store.describe()),
        }
    }

    /// Stands in for aws-config's environment/profile lookup.
    #[derive(Debug)]
    struct FakeServiceConfig(Option<&'static str>);

    impl aws_types::service_config::LoadServiceConfig for FakeServiceConfig {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            (key.service_id() == "S3" && key.env() == "AWS_ENDPOINT_URL")
                .then_some(self.0)
                .flatten()
                .map(str::to_owned)
        }
    }

    #[test]
    fn detects_global_and_s3_specific_endpoint_overrides() {
        assert!(!endpoint_configured(&SdkConfig::builder().build()));
        assert!(endpoint_configured(
            &SdkConfig::builder()
                .endpoint_url("http://127.0.0.1:5000")
                .build()
        ));
        assert!(endpoint_configured(
            &SdkConfig::builder()
                .service_config(FakeServiceConfig(Some("http://127.0.0.1:5000")))
                .build()
        ));
        assert!(!endpoint_configured(
            &SdkConfig::builder()
                .service_config(FakeServiceConfig(None))
                .build()
        ));
    }
}
