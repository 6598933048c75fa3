//! The predict function's model loading against a real S3 server (moto on 127.0.0.1): the
//! initial load, a refresh after a new pointer (conditional GET), a corrupt new artifact ignored,
//! and a missing bucket or pointer giving 503. Requests are the repository's event fixtures.

use std::sync::Arc;
use std::time::Duration;

use predict::{Config, RefreshOutcome, State};
use tagger_s3::S3Store;
use tagger_testkit as testing;
use tagger_tests::moto_or_skip;

const HEALTH: &str = include_str!("../../functions/predict/fixtures/function-url-health.json");
const PREDICT: &str = include_str!("../../functions/predict/fixtures/apigw-v2-predict.json");

/// Status, JSON body and `x-model-version` of one fixture request.
async fn call(fixture: &str, state: &Arc<State>) -> (u16, serde_json::Value, Option<String>) {
    let req = lambda_http::request::from_str(fixture).expect("fixture is a valid event");
    let resp = tower::ServiceExt::oneshot(predict::app(Arc::clone(state)), req)
        .await
        .expect("the app never fails");
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .expect("a complete body")
        .to_bytes();
    let resp = http::Response::from_parts(parts, bytes);
    let version = resp
        .headers()
        .get("x-model-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(resp.body()).expect("JSON body");
    (resp.status().as_u16(), body, version)
}

fn config() -> Config {
    Config {
        refresh: Duration::ZERO,
        ..Config::for_local("s3://test/models")
    }
}

/// The store `MODEL_URI=s3://<bucket>/models` gives: rooted at the prefix.
fn store(moto: &tagger_tests::Moto, bucket: &str) -> Arc<S3Store> {
    Arc::new(S3Store::new(moto.client(), bucket, "models"))
}

#[tokio::test]
async fn loads_at_init_and_refreshes_after_a_new_pointer() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("predict-refresh").await;
    let s3 = store(&moto, &bucket);
    let (a, b) = (testing::tiny_artifact(1), testing::tiny_artifact(2));
    testing::publish(s3.as_ref(), "", &a).await;

    let state = Arc::new(State::new(s3.clone(), "", config()).await);
    let (status, body, version) = call(PREDICT, &state).await;
    assert_eq!(
        (status, version.as_deref()),
        (200, Some(a.info.version.as_str())),
        "{body}"
    );
    assert!(body["tags"].is_array(), "{body}");
    // The pointer's ETag is held: an unchanged pointer is a 304, not a reload.
    assert_eq!(state.refresh_now().await, RefreshOutcome::Unchanged);

    testing::publish(s3.as_ref(), "", &b).await;
    let (status, _, version) = call(HEALTH, &state).await;
    assert_eq!(
        (status, version.as_deref()),
        (200, Some(b.info.version.as_str()))
    );
}

#[tokio::test]
async fn a_corrupt_new_artifact_is_ignored() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("predict-corrupt").await;
    let s3 = store(&moto, &bucket);
    let a = testing::tiny_artifact(1);
    testing::publish(s3.as_ref(), "", &a).await;
    let state = Arc::new(State::new(s3.clone(), "", config()).await);

    testing::publish_corrupt(s3.as_ref(), "", "broken").await;
    assert!(matches!(
        state.refresh_now().await,
        RefreshOutcome::Failed { .. }
    ));
    let (status, body, version) = call(PREDICT, &state).await;
    assert_eq!(
        (status, version.as_deref()),
        (200, Some(a.info.version.as_str())),
        "{body}"
    );
}

#[tokio::test]
async fn a_missing_pointer_gives_503_until_a_model_is_published() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("predict-empty").await;
    let s3 = store(&moto, &bucket);
    let state = Arc::new(State::new(s3.clone(), "", config()).await);
    let (status, body, _) = call(HEALTH, &state).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("no_model")),
        "{body}"
    );
    let (status, _, _) = call(PREDICT, &state).await;
    assert_eq!(status, 503);

    let a = testing::tiny_artifact(1);
    testing::publish(s3.as_ref(), "", &a).await;
    let (status, _, version) = call(PREDICT, &state).await;
    assert_eq!(
        (status, version.as_deref()),
        (200, Some(a.info.version.as_str()))
    );
}

#[tokio::test]
async fn a_missing_bucket_gives_503_not_a_crash() {
    let moto = moto_or_skip!();
    let s3 = store(&moto, "no-such-bucket-for-predict");
    let state = Arc::new(State::new(s3, "", config()).await);
    let (status, body, _) = call(HEALTH, &state).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("no_model")),
        "{body}"
    );
    let (status, _, _) = call(PREDICT, &state).await;
    assert_eq!(status, 503);
}
