//! Published models in a store: immutable versions plus a small pointer that moves.
//!
//! ```text
//! <prefix>/<version>/model.bin      the artifact (written once)
//! <prefix>/<version>/metrics.json   the run report
//! <prefix>/<version>/source.json    where the data came from
//! <prefix>/<version>/reference.json its reference evaluation set (test rows, at most 2,000)
//! <prefix>/latest.json              Pointer: what predict serves
//! <prefix>/previous.json            the pointer before the last promotion (rollback)
//! ```
//!
//! The pointer's `key` is relative to the folder holding it, so a predictor needs only the model
//! prefix. Pointer moves are conditional writes: two trainers racing cannot both win, and a
//! reader sees either the old or the new pointer, never a torn one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{join, Fetched, ObjectStore, PutMode};
use tagger_core::artifact::{Artifact, Decoder, HeadlineMetrics};

pub const LATEST: &str = "latest.json";
pub const PREVIOUS: &str = "previous.json";
pub const REFERENCE: &str = "reference.json";

/// Most rows a version's reference set keeps: enough to measure micro-F1 to about ±0.01, small
/// enough that scoring two models on it costs well under a second.
pub const MAX_REFERENCE_ROWS: usize = 2_000;

/// Held-out rows stored beside a version, so that a later candidate is scored on data the
/// upload did not choose: the quality gate evaluates both the candidate and the live model on
/// the live version's reference set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSet {
    pub version: String,
    /// How many held-out rows the version had; `rows` is all of them or an even sample.
    pub rows_available: u64,
    pub rows: Vec<ReferenceRow>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub tags: Vec<String>,
    pub text: String,
}

impl ReferenceSet {
    /// All of `rows` when there are at most `max`, else `max` of them evenly spaced (row
    /// `i * n / max`): deterministic, and as representative as the held-out rows' order, which
    /// training shuffles with the run's seed.
    pub fn sample(version: &str, rows: &[ReferenceRow], max: usize) -> ReferenceSet {
        let n = rows.len();
        let picked = if n <= max {
            rows.to_vec()
        } else {
            (0..max).map(|i| rows[i * n / max].clone()).collect()
        };
        ReferenceSet {
            version: version.to_owned(),
            rows_available: n as u64,
            rows: picked,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    pub version: String,
    /// Artifact key relative to the pointer's folder: `<version>/model.bin`.
    pub key: String,
    /// SHA-256 (hex) of the artifact bytes.
    pub sha256: String,
    pub created_at: String,
    pub source: String,
    /// S3 event sequencer of the upload that produced this version (hex, comparable after
    /// left-padding): a late, older upload must not replace a newer one.
    #[serde(default)]
    pub sequencer: Option<String>,
    pub metrics: Option<PointerMetrics>,
}

/// The headline test metrics, so tools can compare versions without loading them.
pub type PointerMetrics = HeadlineMetrics;

/// What a refresh found.
// Built once per refresh and matched at once: boxing the pointer would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Refresh {
    /// The pointer still has the ETag we hold.
    Unchanged,
    /// No pointer: nothing has been published yet.
    NoModel,
    Loaded {
        pointer: Pointer,
        etag: String,
        artifact: Box<Artifact>,
    },
}

/// Models under a prefix of a store (`""` when the store itself is rooted at the models folder).
pub struct Registry<'a> {
    store: &'a dyn ObjectStore,
    prefix: String,
}

impl<'a> Registry<'a> {
    pub fn new(store: &'a dyn ObjectStore, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    pub fn key(&self, rel: &str) -> String {
        join(&self.prefix, rel)
    }

    /// The current pointer and its ETag.
    pub async fn latest(&self) -> Result<Option<(Pointer, String)>> {
        match self.store.get(&self.key(LATEST)).await? {
            None => Ok(None),
            Some(obj) => Ok(Some((
                parse_pointer(&self.key(LATEST), &obj.body)?,
                obj.etag,
            ))),
        }
    }

    /// Loads the artifact a pointer names, checking its checksum and format: one GET, the body
    /// hashed and decoded piece by piece as it arrives, so the model is ready when the last
    /// byte is in.
    pub async fn load(&self, pointer: &Pointer) -> Result<Artifact> {
        let key = self.key(&pointer.key);
        let mut decoder = Decoder::expecting_sha256(&pointer.sha256);
        let found = self
            .store
            .get_streaming(&key, &mut |piece| Ok(decoder.update(piece)?))
            .await?;
        if !found {
            return Err(Error::NotFound { key });
        }
        Ok(decoder.finish()?)
    }

    /// Loads the latest model unless the pointer still has `etag`.
    pub async fn refresh(&self, etag: Option<&str>) -> Result<Refresh> {
        let key = self.key(LATEST);
        match self.store.get_if_changed(&key, etag).await? {
            Fetched::NotModified => Ok(Refresh::Unchanged),
            Fetched::Missing => Ok(Refresh::NoModel),
            Fetched::Changed(obj) => {
                let pointer = parse_pointer(&key, &obj.body)?;
                let artifact = self.load(&pointer).await?;
                Ok(Refresh::Loaded {
                    pointer,
                    etag: obj.etag,
                    artifact: Box::new(artifact),
                })
            }
        }
    }

    /// Writes a version's files (the artifact only if absent: versions are immutable), reads the
    /// artifact back and verifies it, and returns the pointer that would publish it.
    pub async fn write_version(
        &self,
        artifact: &Artifact,
        report_json: &[u8],
        source_json: &[u8],
    ) -> Result<Pointer> {
        let version = &artifact.info.version;
        let bytes = artifact.to_bytes()?;
        let rel = format!("{version}/model.bin");
        let key = self.key(&rel);
        match self
            .store
            .put(&key, Bytes::from(bytes), PutMode::IfAbsent)
            .await
        {
            Ok(_) | Err(Error::PreconditionFailed { .. }) => {}
            Err(e) => return Err(e),
        }
        self.store
            .put(
                &self.key(&format!("{version}/metrics.json")),
                Bytes::copy_from_slice(report_json),
                PutMode::Overwrite,
            )
            .await?;
        self.store
            .put(
                &self.key(&format!("{version}/source.json")),
                Bytes::copy_from_slice(source_json),
                PutMode::Overwrite,
            )
            .await?;
        // Re-read what the store holds and decode it fully: that object (ours, or an identical
        // version written by an earlier delivery of the same upload) is what gets published.
        let stored = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| Error::NotFound { key: key.clone() })?;
        let published = Artifact::from_bytes(&stored.body)?;
        Ok(Pointer {
            version: version.clone(),
            key: rel,
            sha256: Artifact::sha256_hex(&stored.body),
            created_at: published.info.created_at.clone(),
            source: published.info.source.clone(),
            sequencer: None,
            metrics: published.info.metrics.clone(),
        })
    }

    /// Writes `artifact` as a version and makes it the latest, whatever was there: the publish
    /// path of the CLI and the tests. (The retraining job gates between the two steps, with
    /// [`Registry::write_version`] and a conditional [`Registry::promote`].)
    pub async fn publish(
        &self,
        artifact: &Artifact,
        report_json: &[u8],
        source_json: &[u8],
    ) -> Result<Pointer> {
        let pointer = self
            .write_version(artifact, report_json, source_json)
            .await?;
        let current = self.latest().await?.map(|(_, etag)| etag);
        self.promote(&pointer, current.as_deref()).await?;
        Ok(pointer)
    }

    /// Stores a version's reference set (written once: versions are immutable, and the same
    /// version always has the same held-out rows).
    pub async fn write_reference(&self, set: &ReferenceSet) -> Result<()> {
        let key = self.key(&format!("{}/{REFERENCE}", set.version));
        let body = Bytes::from(serde_json::to_vec(set).expect("a reference set serialises"));
        match self.store.put(&key, body, PutMode::IfAbsent).await {
            Ok(_) | Err(Error::PreconditionFailed { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A version's reference set; `None` for versions published without one.
    pub async fn reference(&self, version: &str) -> Result<Option<ReferenceSet>> {
        let key = self.key(&format!("{version}/{REFERENCE}"));
        match self.store.get(&key).await? {
            None => Ok(None),
            Some(obj) => serde_json::from_slice(&obj.body)
                .map(Some)
                .map_err(|source| Error::Json { key, source }),
        }
    }

    /// The rollback target (`previous.json`) and its ETag, if a promotion kept one.
    pub async fn previous(&self) -> Result<Option<(Pointer, String)>> {
        match self.store.get(&self.key(PREVIOUS)).await? {
            None => Ok(None),
            Some(obj) => Ok(Some((
                parse_pointer(&self.key(PREVIOUS), &obj.body)?,
                obj.etag,
            ))),
        }
    }

    /// The published versions (folders holding a `model.bin`), sorted by id. Needs a store that
    /// can list (`s3:ListBucket` on S3).
    pub async fn versions(&self) -> Result<Vec<String>> {
        let folder = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut versions: Vec<String> = self
            .store
            .list(&folder)
            .await?
            .iter()
            .filter_map(|key| key.strip_prefix(folder.as_str()))
            .filter_map(|rel| rel.strip_suffix("/model.bin"))
            .filter(|version| !version.contains('/'))
            .map(str::to_owned)
            .collect();
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    /// Reads version `version`'s artifact, decodes and verifies it fully, and returns it with
    /// the pointer that would publish it: what a promotion checks before moving `latest.json`.
    pub async fn load_version(&self, version: &str) -> Result<(Pointer, Artifact)> {
        if version.is_empty() || version.contains('/') || version == "." || version == ".." {
            return Err(Error::NotFound {
                key: self.key(&format!("{version}/model.bin")),
            });
        }
        let rel = format!("{version}/model.bin");
        let key = self.key(&rel);
        let stored = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| Error::NotFound { key: key.clone() })?;
        let artifact = Artifact::from_bytes(&stored.body).map_err(|source| Error::Artifact {
            version: version.to_owned(),
            source,
        })?;
        if artifact.info.version != version {
            return Err(Error::Store {
                op: "load",
                key,
                message: format!(
                    "the artifact says it is version {}, not {version}",
                    artifact.info.version
                ),
                retryable: false,
            });
        }
        let pointer = Pointer {
            version: version.to_owned(),
            key: rel,
            sha256: Artifact::sha256_hex(&stored.body),
            created_at: artifact.info.created_at.clone(),
            source: artifact.info.source.clone(),
            sequencer: None,
            metrics: artifact.info.metrics.clone(),
        };
        Ok((pointer, artifact))
    }

    /// Moves `latest.json` to `pointer`, keeping the old one as `previous.json`. `expected` is
    /// the ETag of the pointer the caller based its decision on (`None`: there was none); if it
    /// changed meanwhile the move fails with `PreconditionFailed` and nothing is written.
    pub async fn promote(&self, pointer: &Pointer, expected: Option<&str>) -> Result<String> {
        let body =
            Bytes::from(serde_json::to_vec_pretty(pointer).expect("a pointer serialises to json"));
        let mode = match expected {
            Some(etag) => PutMode::IfMatch(etag.to_owned()),
            None => PutMode::IfAbsent,
        };
        let old = match expected {
            Some(_) => self.store.get(&self.key(LATEST)).await?,
            None => None,
        };
        let etag = self.store.put(&self.key(LATEST), body, mode).await?;
        if let Some(old) = old {
            // Re-publishing the live version must not make the rollback target equal to it.
            let same_version = parse_pointer(&self.key(LATEST), &old.body)
                .is_ok_and(|p| p.version == pointer.version);
            if Some(old.etag.as_str()) == expected && !same_version {
                self.store
                    .put(&self.key(PREVIOUS), old.body, PutMode::Overwrite)
                    .await?;
            }
        }
        Ok(etag)
    }
}

fn parse_pointer(key: &str, body: &[u8]) -> Result<Pointer> {
    serde_json::from_slice(body).map_err(|source| Error::Pointer {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn versions_lists_published_folders_and_load_version_verifies_them() {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let registry = Registry::new(&store, "models");
            assert!(registry.versions().await.unwrap().is_empty());
            let (a, b) = (
                tagger_testkit::tiny_artifact(1),
                tagger_testkit::tiny_artifact(2),
            );
            let pa = registry.publish(&a, b"{}", b"{}").await.unwrap();
            registry.publish(&b, b"{}", b"{}").await.unwrap();
            let mut expected = vec![a.info.version.clone(), b.info.version.clone()];
            expected.sort();
            assert_eq!(registry.versions().await.unwrap(), expected);
            let (pointer, artifact) = registry.load_version(&a.info.version).await.unwrap();
            assert_eq!(pointer, pa);
            assert_eq!(artifact.info.version, a.info.version);
            assert_eq!(
                registry.previous().await.unwrap().unwrap().0.version,
                a.info.version
            );
            assert!(matches!(
                registry.load_version("nope").await,
                Err(Error::NotFound { .. })
            ));
            assert!(matches!(
                registry.load_version("../x").await,
                Err(Error::NotFound { .. })
            ));
            store
                .put(
                    "models/bad/model.bin",
                    Bytes::from_static(b"TAGGERMD not a model"),
                    PutMode::Overwrite,
                )
                .await
                .unwrap();
            assert!(matches!(
                registry.load_version("bad").await,
                Err(Error::Artifact { .. })
            ));
        });
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    async fn previous(store: &MemoryStore) -> String {
        let obj = store.get("models/previous.json").await.unwrap().unwrap();
        serde_json::from_slice::<Pointer>(&obj.body)
            .unwrap()
            .version
    }

    #[test]
    fn republishing_the_live_version_keeps_the_rollback_target() {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let registry = Registry::new(&store, "models");
            let (a, b) = (
                tagger_testkit::tiny_artifact(1),
                tagger_testkit::tiny_artifact(2),
            );
            registry.publish(&a, b"{}", b"{}").await.unwrap();
            registry.publish(&b, b"{}", b"{}").await.unwrap();
            assert_eq!(previous(&store).await, a.info.version);
            // The same version again (a re-run of the same training): rollback still names `a`.
            registry.publish(&b, b"{}", b"{}").await.unwrap();
            assert_eq!(previous(&store).await, a.info.version);
            let (latest, _) = registry.latest().await.unwrap().unwrap();
            assert_eq!(latest.version, b.info.version);
        });
    }
}
