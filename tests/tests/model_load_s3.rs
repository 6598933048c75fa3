//! Loading a published model from a real S3 server (moto on 127.0.0.1) costs one GET per object,
//! nothing else: the pointer, then the artifact, whose body is hashed and decoded as it streams
//! in. Every HTTP request the S3 client sends is recorded by an interceptor on the client.

use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use tagger_registry::registry::{Refresh, Registry};
use tagger_registry::Error;
use tagger_s3::S3Store;
use tagger_tests::moto_or_skip;

/// `METHOD path` of every request the client sends (retries included).
#[derive(Clone, Debug, Default)]
struct Requests(Arc<Mutex<Vec<String>>>);

impl Requests {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let uri: http::Uri = request.uri().parse()?;
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method(), uri.path()));
        Ok(())
    }
}

/// A store on `bucket/models` whose client records its requests.
fn counted_store(moto: &tagger_tests::Moto, bucket: &str) -> (Arc<S3Store>, Requests) {
    let requests = Requests::default();
    let config = moto
        .client()
        .config()
        .to_builder()
        .interceptor(requests.clone())
        .build();
    let client = aws_sdk_s3::Client::from_conf(config);
    (Arc::new(S3Store::new(client, bucket, "models")), requests)
}

#[tokio::test]
async fn loading_the_latest_model_is_one_get_per_object() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("load-requests").await;
    let plain = S3Store::new(moto.client(), &bucket, "models");
    let artifact = tagger_testkit::tiny_artifact(1);
    let pointer = tagger_testkit::publish(&plain, "", &artifact).await;

    let (store, requests) = counted_store(&moto, &bucket);
    let registry = Registry::new(store.as_ref(), "");
    match registry.refresh(None).await.unwrap() {
        Refresh::Loaded {
            artifact: loaded, ..
        } => assert_eq!(*loaded, artifact),
        other => panic!("expected a load, got {other:?}"),
    }
    let model = format!("GET /{bucket}/models/{}", pointer.key);
    assert_eq!(
        requests.take(),
        [format!("GET /{bucket}/models/latest.json"), model.clone()]
    );

    // The predict function's load at init: the same two requests.
    let config = predict::Config::for_local("s3://unused/models");
    let state = predict::State::new(store.clone(), "", config).await;
    assert_eq!(
        state.models().current().unwrap().version(),
        artifact.info.version
    );
    assert_eq!(
        requests.take(),
        [format!("GET /{bucket}/models/latest.json"), model]
    );
}

#[tokio::test]
async fn one_corrupted_byte_in_the_stored_artifact_fails_its_digest() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("load-corrupt").await;
    let plain = S3Store::new(moto.client(), &bucket, "models");
    let pointer = tagger_testkit::publish(&plain, "", &tagger_testkit::tiny_artifact(1)).await;
    let key = format!("models/{}", pointer.key);
    let stored = moto
        .client()
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();

    // One byte in the weights' codes near the end, one in the meta block near the start.
    for at in [stored.len() - 10, 100] {
        let mut corrupt = stored.to_vec();
        corrupt[at] ^= 0x01;
        moto.client()
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(ByteStream::from(corrupt))
            .send()
            .await
            .unwrap();
        let (store, requests) = counted_store(&moto, &bucket);
        match Registry::new(store.as_ref(), "").load(&pointer).await {
            Err(Error::Core(tagger_core::Error::Checksum { stored, .. })) => {
                assert_eq!(stored, pointer.sha256, "byte {at}")
            }
            other => panic!("byte {at}: expected a checksum error, got {other:?}"),
        }
        assert_eq!(requests.take(), [format!("GET /{bucket}/{key}")]);
    }
}
