//! The model being served, and how a newer one replaces it.
//!
//! The current model is an `Arc<Served>` behind a lock that is held only to clone or replace the
//! `Arc`, so a request never waits for a download or a decode. At most every `refresh` interval
//! one request (never two: a flag makes refreshes single-flight) checks `latest.json` with a
//! conditional GET; only a changed pointer costs a download. The refresh runs inside that request
//! rather than in a background task because a Lambda sandbox is frozen between invocations.
//!
//! A new artifact that fails to load (missing, checksum, format) is logged and ignored: the
//! previous model keeps serving, and the next due refresh tries again (the artifact may simply
//! not have been fully uploaded yet).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tagger_core::Predictor;
use tagger_registry::registry::{Pointer, Refresh, Registry};
use tagger_registry::store::ObjectStore;

/// A loaded model with the pointer that named it.
#[derive(Debug)]
pub struct Served {
    pub predictor: Predictor,
    pub pointer: Pointer,
    /// ETag of the pointer object this model was loaded from.
    pub etag: String,
    /// When this process loaded it (RFC 3339, UTC).
    pub loaded_at: String,
}

impl Served {
    pub fn version(&self) -> &str {
        self.predictor.version()
    }
}

/// What one refresh did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The pointer still has the ETag of the served model.
    Unchanged,
    /// No pointer is published (the served model, if any, stays).
    NoModel,
    /// A new model now serves.
    Loaded { version: String },
    /// The check or the load failed (logged); the served model, if any, stays.
    Failed { message: String },
    /// Another request is refreshing right now.
    InFlight,
    /// The interval since the last check has not passed.
    NotDue,
}

pub struct ModelCache {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    every: Duration,
    current: RwLock<Option<Arc<Served>>>,
    /// When the next check may run; `None` = now.
    next_check: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
    /// `MODEL_VERSION`: this version is loaded once and never replaced.
    pinned: Option<String>,
    /// Loads and failed loads since the metrics last took them.
    loads: AtomicU64,
    load_failures: AtomicU64,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCache")
            .field("store", &self.store.describe())
            .field("prefix", &self.prefix)
            .field("every", &self.every)
            .field("version", &self.current().map(|s| s.version().to_owned()))
            .finish()
    }
}

/// Clears the in-flight flag however the refresh ends, including when its future is dropped.
struct InFlight<'a>(&'a AtomicBool);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl ModelCache {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, every: Duration) -> Self {
        ModelCache {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            every,
            current: RwLock::new(None),
            next_check: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            pinned: None,
            loads: AtomicU64::new(0),
            load_failures: AtomicU64::new(0),
        }
    }

    /// Serves only `version` (none: follow `latest.json`): it is loaded on the first refresh,
    /// retried until it loads, and then never checked again.
    pub fn pinned_to(mut self, version: Option<String>) -> Self {
        self.pinned = version;
        self
    }

    /// The pinned version, if hot reload is off.
    pub fn pinned(&self) -> Option<&str> {
        self.pinned.as_deref()
    }

    /// Models loaded and loads that failed (a pointer or artifact that did not read) since the
    /// last call, the first load included.
    pub fn take_load_counts(&self) -> (u64, u64) {
        (
            self.loads.swap(0, Ordering::Relaxed),
            self.load_failures.swap(0, Ordering::Relaxed),
        )
    }

    /// The model serving now, without any I/O.
    pub fn current(&self) -> Option<Arc<Served>> {
        // A poisoned lock still holds a whole `Option<Arc>`: the writer only assigns.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The model to answer this request with, after a refresh if one is due and no other
    /// request is already refreshing.
    pub async fn get(&self) -> Option<Arc<Served>> {
        self.refresh_if_due().await;
        self.current()
    }

    /// Checks the pointer if the interval has passed since the last check.
    pub async fn refresh_if_due(&self) -> RefreshOutcome {
        let now = Instant::now();
        {
            let next = self.next_check.lock().unwrap_or_else(|e| e.into_inner());
            if next.is_some_and(|t| now < t) {
                return RefreshOutcome::NotDue;
            }
        }
        self.refresh_now().await
    }

    /// Checks the pointer now (unless another refresh is running) and swaps in a changed model.
    pub async fn refresh_now(&self) -> RefreshOutcome {
        if self.pinned.is_some() && self.current().is_some() {
            return RefreshOutcome::Unchanged;
        }
        if self
            .refreshing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return RefreshOutcome::InFlight;
        }
        let _guard = InFlight(&self.refreshing);
        // Set before the I/O, so a slow or failing store is asked at most once per interval.
        *self.next_check.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + self.every);

        let held = self.current();
        let registry = Registry::new(self.store.as_ref(), &self.prefix);
        let started = Instant::now();
        if let Some(version) = &self.pinned {
            return self.load_pinned(&registry, version, started).await;
        }
        match registry
            .refresh(held.as_deref().map(|s| s.etag.as_str()))
            .await
        {
            Ok(Refresh::Unchanged) => {
                tracing::debug!("model pointer unchanged");
                RefreshOutcome::Unchanged
            }
            Ok(Refresh::NoModel) => {
                match &held {
                    Some(s) => tracing::warn!(
                        store = %self.store.describe(),
                        version = s.version(),
                        "model pointer disappeared; still serving the loaded model"
                    ),
                    None => {
                        tracing::info!(store = %self.store.describe(), prefix = %self.prefix, "no model published yet")
                    }
                }
                RefreshOutcome::NoModel
            }
            Ok(Refresh::Loaded {
                pointer,
                etag,
                artifact,
            }) => {
                let served = Arc::new(Served {
                    predictor: Predictor::new(*artifact),
                    pointer,
                    etag,
                    loaded_at: tagger_registry::clock::now_rfc3339(),
                });
                let version = served.version().to_owned();
                tracing::info!(
                    version = %version,
                    previous = held.as_deref().map(Served::version),
                    source = %served.predictor.info().source,
                    load_ms = started.elapsed().as_secs_f64() * 1e3,
                    "model loaded"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(served);
                self.loads.fetch_add(1, Ordering::Relaxed);
                RefreshOutcome::Loaded { version }
            }
            Err(e) => {
                self.load_failures.fetch_add(1, Ordering::Relaxed);
                let message = e.to_string();
                match &held {
                    Some(s) => tracing::error!(
                        error = %message,
                        store = %self.store.describe(),
                        version = s.version(),
                        "new model failed to load; still serving the loaded model"
                    ),
                    None => {
                        tracing::error!(error = %message, store = %self.store.describe(), "model failed to load; answering 503")
                    }
                }
                RefreshOutcome::Failed { message }
            }
        }
    }
}

impl ModelCache {
    /// Loads the pinned version by its folder, verified as a promotion verifies it.
    async fn load_pinned(
        &self,
        registry: &Registry<'_>,
        version: &str,
        started: Instant,
    ) -> RefreshOutcome {
        match registry.load_version(version).await {
            Ok((pointer, artifact)) => {
                let served = Arc::new(Served {
                    predictor: Predictor::new(artifact),
                    pointer,
                    etag: String::new(),
                    loaded_at: tagger_registry::clock::now_rfc3339(),
                });
                tracing::info!(
                    version = %version,
                    pinned = true,
                    source = %served.predictor.info().source,
                    load_ms = started.elapsed().as_secs_f64() * 1e3,
                    "model loaded (pinned by MODEL_VERSION: no reloads)"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(served);
                self.loads.fetch_add(1, Ordering::Relaxed);
                RefreshOutcome::Loaded {
                    version: version.to_owned(),
                }
            }
            Err(e) => {
                let message = e.to_string();
                self.load_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %message, store = %self.store.describe(), version, "pinned model failed to load; answering 503");
                RefreshOutcome::Failed { message }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::Bytes;
    use tagger_registry::registry::LATEST;
    use tagger_registry::store::{MemoryStore, PutMode};

    fn cache(store: &Arc<MemoryStore>, every: Duration) -> ModelCache {
        ModelCache::new(store.clone(), "models", every)
    }

    #[tokio::test]
    async fn starts_empty_when_nothing_is_published_then_loads_a_publish() {
        let store = Arc::new(MemoryStore::new());
        let models = cache(&store, Duration::ZERO);
        assert_eq!(models.refresh_now().await, RefreshOutcome::NoModel);
        assert!(models.get().await.is_none());

        let a = tagger_testkit::tiny_artifact(1);
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        let served = models.get().await.expect("published model is served");
        assert_eq!(served.version(), a.info.version);
        assert_eq!(models.refresh_now().await, RefreshOutcome::Unchanged);
    }

    #[tokio::test]
    async fn swaps_in_a_new_pointer_when_due() {
        let store = Arc::new(MemoryStore::new());
        let (a, b) = (
            tagger_testkit::tiny_artifact(1),
            tagger_testkit::tiny_artifact(2),
        );
        assert_ne!(a.info.version, b.info.version);
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        let models = cache(&store, Duration::ZERO);
        assert_eq!(
            models.refresh_now().await,
            RefreshOutcome::Loaded {
                version: a.info.version.clone()
            }
        );
        tagger_testkit::publish(store.as_ref(), "models", &b).await;
        assert_eq!(models.get().await.unwrap().version(), b.info.version);
    }

    #[tokio::test]
    async fn does_not_check_again_before_the_interval() {
        let store = Arc::new(MemoryStore::new());
        let (a, b) = (
            tagger_testkit::tiny_artifact(1),
            tagger_testkit::tiny_artifact(2),
        );
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        let models = cache(&store, Duration::from_secs(3600));
        models.refresh_now().await;
        tagger_testkit::publish(store.as_ref(), "models", &b).await;
        assert_eq!(models.refresh_if_due().await, RefreshOutcome::NotDue);
        assert_eq!(models.get().await.unwrap().version(), a.info.version);
        // An explicit refresh still sees it.
        assert_eq!(
            models.refresh_now().await,
            RefreshOutcome::Loaded {
                version: b.info.version.clone()
            }
        );
    }

    #[tokio::test]
    async fn corrupt_new_artifact_is_ignored_and_the_old_model_keeps_serving() {
        let store = Arc::new(MemoryStore::new());
        let a = tagger_testkit::tiny_artifact(1);
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        let models = cache(&store, Duration::ZERO);
        models.refresh_now().await;

        tagger_testkit::publish_corrupt(store.as_ref(), "models", "broken").await;
        assert!(matches!(
            models.refresh_now().await,
            RefreshOutcome::Failed { .. }
        ));
        assert_eq!(models.get().await.unwrap().version(), a.info.version);

        // A pointer that is not even JSON is ignored the same way.
        store
            .put(
                &format!("models/{LATEST}"),
                Bytes::from_static(b"{not json"),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        assert!(matches!(
            models.refresh_now().await,
            RefreshOutcome::Failed { .. }
        ));
        assert_eq!(models.current().unwrap().version(), a.info.version);
        // What the metrics report: one load, then three failed ones (the `get` between the two
        // refreshes checked again: the interval is zero), then nothing new.
        assert_eq!(models.take_load_counts(), (1, 3));
        assert_eq!(models.take_load_counts(), (0, 0));
    }

    #[tokio::test]
    async fn a_pinned_version_is_served_and_never_replaced() {
        let store = Arc::new(MemoryStore::new());
        let (a, b) = (
            tagger_testkit::tiny_artifact(1),
            tagger_testkit::tiny_artifact(2),
        );
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        tagger_testkit::publish(store.as_ref(), "models", &b).await;
        let models = cache(&store, Duration::ZERO).pinned_to(Some(a.info.version.clone()));
        assert_eq!(models.pinned(), Some(a.info.version.as_str()));
        assert_eq!(models.get().await.unwrap().version(), a.info.version);
        // latest.json names b, and moves again: the pinned model stays.
        tagger_testkit::publish_corrupt(store.as_ref(), "models", "broken").await;
        assert_eq!(models.refresh_now().await, RefreshOutcome::Unchanged);
        assert_eq!(models.get().await.unwrap().version(), a.info.version);
        // The metrics see the one load.
        assert_eq!(models.take_load_counts(), (1, 0));
    }

    #[tokio::test]
    async fn a_pinned_version_that_does_not_exist_answers_nothing_and_is_retried() {
        let store = Arc::new(MemoryStore::new());
        let a = tagger_testkit::tiny_artifact(1);
        let models = cache(&store, Duration::ZERO).pinned_to(Some(a.info.version.clone()));
        assert!(matches!(
            models.refresh_now().await,
            RefreshOutcome::Failed { .. }
        ));
        assert!(models.get().await.is_none());
        // Once the version is written (not even made latest), it loads.
        Registry::new(store.as_ref(), "models")
            .write_version(&a, b"{}", b"{}")
            .await
            .unwrap();
        assert_eq!(models.get().await.unwrap().version(), a.info.version);
    }

    #[tokio::test]
    async fn a_removed_pointer_keeps_the_loaded_model() {
        let store = Arc::new(MemoryStore::new());
        let a = tagger_testkit::tiny_artifact(1);
        tagger_testkit::publish(store.as_ref(), "models", &a).await;
        let models = cache(&store, Duration::ZERO);
        models.refresh_now().await;
        // MemoryStore has no delete: a store that lost the pointer is an empty one.
        let models = ModelCache {
            store: Arc::new(MemoryStore::new()),
            prefix: "models".into(),
            ..models
        };
        assert_eq!(models.refresh_now().await, RefreshOutcome::NoModel);
        assert_eq!(models.current().unwrap().version(), a.info.version);
    }

    /// A store whose reads wait until the test opens the gate.
    struct Gated {
        inner: MemoryStore,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait::async_trait]
    impl ObjectStore for Gated {
        async fn get(
            &self,
            key: &str,
        ) -> tagger_registry::Result<Option<tagger_registry::store::Object>> {
            let _permit = self.gate.acquire().await.expect("gate open");
            self.inner.get(key).await
        }
        async fn head(&self, key: &str) -> tagger_registry::Result<Option<String>> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            body: Bytes,
            mode: PutMode,
        ) -> tagger_registry::Result<String> {
            self.inner.put(key, body, mode).await
        }
        fn describe(&self) -> String {
            "gated://".into()
        }
    }

    #[tokio::test]
    async fn requests_keep_the_current_model_while_a_refresh_is_in_flight() {
        let store = Arc::new(Gated {
            inner: MemoryStore::new(),
            gate: tokio::sync::Semaphore::new(1),
        });
        let (a, b) = (
            tagger_testkit::tiny_artifact(1),
            tagger_testkit::tiny_artifact(2),
        );
        tagger_testkit::publish(&store.inner, "models", &a).await;
        let models = ModelCache::new(store.clone(), "models", Duration::ZERO);
        models.refresh_now().await;
        tagger_testkit::publish(&store.inner, "models", &b).await;

        let closed = store.gate.acquire().await.unwrap();
        let slow = models.get();
        tokio::pin!(slow);
        // Start the refresh: it now waits on the closed gate inside the store.
        assert!(futures_poll_once(slow.as_mut()).await.is_none());
        // Meanwhile other requests answer at once with the old model and do not refresh.
        let during = models.get().await.unwrap();
        assert_eq!(during.version(), a.info.version);
        assert_eq!(models.refresh_now().await, RefreshOutcome::InFlight);
        drop(closed);
        assert_eq!(slow.await.unwrap().version(), b.info.version);
        assert_eq!(models.current().unwrap().version(), b.info.version);
    }

    /// Polls a future once; `Some` when it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }

    #[tokio::test]
    async fn only_one_refresh_runs_at_a_time() {
        let store = Arc::new(MemoryStore::new());
        let models = cache(&store, Duration::ZERO);
        let _held = InFlight(&models.refreshing);
        models.refreshing.store(true, Ordering::Release);
        assert_eq!(models.refresh_now().await, RefreshOutcome::InFlight);
        assert_eq!(models.refresh_if_due().await, RefreshOutcome::InFlight);
    }
}
