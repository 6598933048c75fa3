//! `S3Store` against a real S3 protocol implementation (moto's server), including the
//! conditional requests that make model publishing race-free.

use bytes::Bytes;
use tagger_registry::store::{Fetched, ObjectStore, PutMode};
use tagger_registry::Error;
use tagger_s3::S3Store;
use tagger_tests::{moto_or_skip, Moto};

async fn store(moto: &Moto, test: &str, prefix: &str) -> S3Store {
    let bucket = moto.fresh_bucket(test).await;
    S3Store::new(moto.client(), bucket, prefix)
}

fn body(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[tokio::test]
async fn put_then_get_round_trips_body_and_etag() {
    let moto = moto_or_skip!();
    let store = store(&moto, "round-trip", "models").await;
    let etag = store
        .put("v1/model.bin", body("weights"), PutMode::Overwrite)
        .await
        .unwrap();
    let obj = store.get("v1/model.bin").await.unwrap().expect("object");
    assert_eq!(&obj.body[..], b"weights");
    assert_eq!(obj.etag, etag);
    assert_eq!(store.head("v1/model.bin").await.unwrap(), Some(etag));
}

#[tokio::test]
async fn missing_key_is_none_and_missing() {
    let moto = moto_or_skip!();
    let store = store(&moto, "missing", "models").await;
    assert_eq!(store.get("nothing.json").await.unwrap(), None);
    assert_eq!(store.head("nothing.json").await.unwrap(), None);
    assert_eq!(
        store
            .get_if_changed("nothing.json", Some("\"abc\""))
            .await
            .unwrap(),
        Fetched::Missing
    );
}

#[tokio::test]
async fn conditional_get_is_not_modified_until_the_object_changes() {
    let moto = moto_or_skip!();
    let store = store(&moto, "conditional-get", "models").await;
    let e1 = store
        .put("latest.json", body("one"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_if_changed("latest.json", Some(&e1))
            .await
            .unwrap(),
        Fetched::NotModified
    );
    // Without an ETag there is nothing to compare: the object comes back.
    match store.get_if_changed("latest.json", None).await.unwrap() {
        Fetched::Changed(obj) => assert_eq!(obj.etag, e1),
        other => panic!("expected the object, got {other:?}"),
    }
    let e2 = store
        .put("latest.json", body("two"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_ne!(e1, e2);
    match store
        .get_if_changed("latest.json", Some(&e1))
        .await
        .unwrap()
    {
        Fetched::Changed(obj) => {
            assert_eq!(&obj.body[..], b"two");
            assert_eq!(obj.etag, e2);
        }
        other => panic!("expected a change, got {other:?}"),
    }
}

#[tokio::test]
async fn second_put_if_absent_fails_its_precondition() {
    let moto = moto_or_skip!();
    let store = store(&moto, "if-absent", "models").await;
    store
        .put("runs/1.json", body("first"), PutMode::IfAbsent)
        .await
        .unwrap();
    let second = store
        .put("runs/1.json", body("second"), PutMode::IfAbsent)
        .await;
    assert!(
        matches!(&second, Err(Error::PreconditionFailed { key }) if key == "runs/1.json"),
        "{second:?}"
    );
    // The loser did not overwrite the winner.
    let obj = store.get("runs/1.json").await.unwrap().expect("object");
    assert_eq!(&obj.body[..], b"first");
}

#[tokio::test]
async fn put_if_match_succeeds_only_with_the_current_etag() {
    let moto = moto_or_skip!();
    let store = store(&moto, "if-match", "models").await;
    let e1 = store
        .put("latest.json", body("one"), PutMode::Overwrite)
        .await
        .unwrap();
    let e2 = store
        .put("latest.json", body("two"), PutMode::IfMatch(e1.clone()))
        .await
        .unwrap();
    assert_ne!(e1, e2);
    let stale = store
        .put("latest.json", body("three"), PutMode::IfMatch(e1))
        .await;
    assert!(
        matches!(stale, Err(Error::PreconditionFailed { .. })),
        "{stale:?}"
    );
    let obj = store.get("latest.json").await.unwrap().expect("object");
    assert_eq!(&obj.body[..], b"two");
    assert_eq!(obj.etag, e2);
}

#[tokio::test]
async fn keys_land_under_the_prefix_in_the_bucket() {
    let moto = moto_or_skip!();
    let store = store(&moto, "prefix", "/team/models/").await;
    store
        .put("v1/model.bin", body("weights"), PutMode::Overwrite)
        .await
        .unwrap();
    let listed = moto
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["team/models/v1/model.bin"]);
    assert_eq!(
        store.describe(),
        format!("s3://{}/team/models", store.bucket())
    );
}

#[tokio::test]
async fn missing_bucket_is_a_storage_configuration_error_not_a_missing_key() {
    let moto = moto_or_skip!();
    let store = S3Store::new(moto.client(), "no-such-bucket-tagger", "models");
    match store.get("latest.json").await {
        Err(Error::StorageConfig {
            op: "get",
            key,
            message,
        }) => {
            assert_eq!(key, "latest.json");
            assert!(message.contains("NoSuchBucket"), "{message}");
            assert!(
                message.contains("s3://no-such-bucket-tagger/models/latest.json"),
                "{message}"
            );
        }
        other => panic!("expected a permanent store error, got {other:?}"),
    }
    let put = store
        .put("latest.json", body("x"), PutMode::Overwrite)
        .await;
    assert!(
        matches!(put, Err(Error::StorageConfig { op: "put", .. })),
        "{put:?}"
    );
}

#[tokio::test]
async fn keys_with_spaces_plus_and_unicode_round_trip() {
    let moto = moto_or_skip!();
    let store = store(&moto, "odd-keys", "up loads").await;
    let key = "data/c++ & rust questions 100%/données ü 日本.csv";
    let etag = store
        .put(key, body("tags,text"), PutMode::IfAbsent)
        .await
        .unwrap();
    let obj = store.get(key).await.unwrap().expect("object");
    assert_eq!(&obj.body[..], b"tags,text");
    assert_eq!(
        store.get_if_changed(key, Some(&etag)).await.unwrap(),
        Fetched::NotModified
    );
    // The key is stored verbatim, not percent-encoded or with `+` turned into a space.
    let listed = moto
        .client()
        .list_objects_v2()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [format!("up loads/{key}")]);
    // A near miss (space instead of `+`) is a different, absent object.
    assert_eq!(
        store
            .get("data/c   & rust questions 100%/données ü 日本.csv")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn list_returns_keys_under_the_store_prefix_across_pages() {
    let moto = moto_or_skip!();
    let bucket = moto.fresh_bucket("list").await;
    let store = S3Store::new(moto.client(), bucket.clone(), "models");
    // A neighbour sharing the prefix's first letters must not leak in.
    let other = S3Store::new(moto.client(), bucket, "models-old");
    other
        .put("x/model.bin", body("x"), PutMode::Overwrite)
        .await
        .unwrap();
    // More keys than one ListObjectsV2 page (1,000) holds.
    let keys: Vec<String> = (0..1005).map(|i| format!("v{i:04}/model.bin")).collect();
    for key in &keys {
        store.put(key, body("w"), PutMode::Overwrite).await.unwrap();
    }
    store
        .put("latest.json", body("{}"), PutMode::Overwrite)
        .await
        .unwrap();
    let mut expected = keys.clone();
    expected.push("latest.json".into());
    expected.sort();
    assert_eq!(store.list("").await.unwrap(), expected);
    assert_eq!(store.list("v0001/").await.unwrap(), ["v0001/model.bin"]);
}
