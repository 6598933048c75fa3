//! Object storage behind one small trait, so the same training and serving code runs against an
//! S3 bucket (crate `tagger-s3`), a local folder (the embedded default and the CLI) or memory (unit
//! tests).
//!
//! Keys are `/`-separated and relative to the store's root. ETags make two things safe without a
//! database: cheap refresh checks (conditional GET) and pointer updates that cannot lose a race
//! (conditional PUT).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

/// An object's bytes with the identity the store gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    /// Opaque version tag; changes whenever the content changes.
    pub etag: String,
}

/// Result of a conditional read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The object still has the ETag the caller holds.
    NotModified,
    Missing,
    Changed(Object),
}

/// When a write may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    Overwrite,
    /// Only if no object exists at the key (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object still has this ETag (`If-Match`).
    IfMatch(String),
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object, or `None` when there is none at `key`.
    async fn get(&self, key: &str) -> Result<Option<Object>>;

    /// Like `get`, but answers `NotModified` when the object's ETag equals `etag`.
    async fn get_if_changed(&self, key: &str, etag: Option<&str>) -> Result<Fetched> {
        Ok(match self.get(key).await? {
            None => Fetched::Missing,
            Some(obj) if Some(obj.etag.as_str()) == etag => Fetched::NotModified,
            Some(obj) => Fetched::Changed(obj),
        })
    }

    /// Like `get`, but fails with `Error::TooLarge` instead of holding more than `max_bytes`.
    /// Stores that can see the size first (S3's Content-Length) refuse before reading; this
    /// default reads first, which is fine for memory and a local folder.
    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>> {
        match self.get(key).await? {
            Some(obj) if obj.body.len() as u64 > max_bytes => Err(Error::TooLarge {
                key: key.to_owned(),
                size: Some(obj.body.len() as u64),
                limit: max_bytes,
            }),
            other => Ok(other),
        }
    }

    /// Hands the body of the object at `key` to `sink` piece by piece as it arrives, in one
    /// request (no HEAD first), so the caller can hash and decode it while it downloads. `false`
    /// when there is no object at `key`. An error from `sink` stops the read and is returned.
    /// This default reads the whole object first; stores that can stream override it.
    async fn get_streaming(&self, key: &str, sink: &mut BodySink<'_>) -> Result<bool> {
        match self.get(key).await? {
            None => Ok(false),
            Some(obj) => {
                sink(&obj.body)?;
                Ok(true)
            }
        }
    }

    /// The ETag of the object at `key`, without its body.
    async fn head(&self, key: &str) -> Result<Option<String>>;

    /// Writes `body` at `key` and returns its new ETag; a failed condition is
    /// `Error::PreconditionFailed`.
    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<String>;

    /// Every key that starts with `prefix` (a folder such as `models/`, or `""` for all), sorted.
    /// Stores that cannot list (test doubles) say so with a permanent error.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Err(Error::Store {
            op: "list",
            key: prefix.to_owned(),
            message: format!("{} cannot list its keys", self.describe()),
            retryable: false,
        })
    }

    /// Where this store points, for logs and reports (`s3://bucket/prefix`, `file:///dir`).
    fn describe(&self) -> String;
}

/// Where [`ObjectStore::get_streaming`] puts each piece of a body.
pub type BodySink<'a> = dyn FnMut(&[u8]) -> Result<()> + Send + 'a;

/// Strong ETag of a body: the hex SHA-256 of its bytes, quoted as HTTP quotes ETags.
pub fn content_etag(body: &[u8]) -> String {
    format!("\"{}\"", tagger_core::artifact::sha256_hex(body))
}

/// Rejects keys that could escape the store's root or name nothing.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains('\\')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::Store {
            op: "key check",
            key: key.to_owned(),
            message: "keys are relative, `/`-separated paths without empty, `.` or `..` parts"
                .into(),
            retryable: false,
        });
    }
    Ok(())
}

/// Joins a store prefix and a key: `join("models", "latest.json") == "models/latest.json"`.
pub fn join(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Where a store lives, parsed from a uri: the one parser behind `MODEL_URI`, `tagger serve`
/// and every other place that takes a store location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `s3://bucket/prefix`: the store is rooted at the prefix (no surrounding `/`).
    S3 { bucket: String, prefix: String },
    /// `file:///dir`, `file://relative/dir` or a plain path: a local folder.
    Local(PathBuf),
}

impl Location {
    pub fn parse(uri: &str) -> Result<Self> {
        let uri = uri.trim();
        let bad = |message: String| {
            Err(Error::BadUri {
                uri: uri.to_owned(),
                message,
            })
        };
        if uri.is_empty() {
            return bad("empty: expected s3://bucket/prefix, file:///dir or a path".into());
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return bad("names no bucket (expected s3://bucket/prefix)".into());
            }
            if let Some(problem) = bucket_name_problem(bucket) {
                return bad(format!("bucket name `{bucket}` {problem}"));
            }
            if let Some(c) = prefix.chars().find(|c| matches!(c, '?' | '#')) {
                return bad(format!(
                    "the prefix contains `{c}`; s3 uris take no query or fragment"
                ));
            }
            // Taken literally, as the AWS CLI does: no percent-decoding.
            let prefix = prefix.trim_end_matches('/');
            if !prefix.is_empty()
                && prefix
                    .split('/')
                    .any(|part| part.is_empty() || part == "." || part == "..")
            {
                return bad(format!(
                    "prefix `{prefix}` has an empty, `.` or `..` path segment"
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if let Some(path) = uri.strip_prefix("file://") {
            if path.is_empty() {
                return bad(
                    "names no folder (expected file:///absolute/path or file://relative/path)"
                        .into(),
                );
            }
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = uri.split_once("://") {
            return bad(format!(
                "unsupported scheme `{scheme}`: expected s3://bucket/prefix, file:///dir or a path"
            ));
        }
        Ok(Location::Local(PathBuf::from(uri)))
    }
}

/// Why `name` is not a valid S3 bucket name (general purpose buckets), if it is not.
fn bucket_name_problem(name: &str) -> Option<&'static str> {
    if !(3..=63).contains(&name.len()) {
        return Some("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("may contain only lowercase letters, digits, `.` and `-`");
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge_ok(name.bytes().next()) || !edge_ok(name.bytes().last()) {
        return Some("must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("must not contain `..`");
    }
    None
}

/// Objects in memory, for unit tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys present, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A poisoned map is still a consistent map: every write is a single insert.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        check_key(key)?;
        Ok(self.lock().get(key).cloned())
    }

    async fn head(&self, key: &str) -> Result<Option<String>> {
        check_key(key)?;
        Ok(self.lock().get(key).map(|o| o.etag.clone()))
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<String> {
        check_key(key)?;
        let mut objects = self.lock();
        precondition(key, objects.get(key).map(|o| o.etag.as_str()), &mode)?;
        let etag = content_etag(&body);
        objects.insert(
            key.to_owned(),
            Object {
                body,
                etag: etag.clone(),
            },
        );
        Ok(etag)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}

fn precondition(key: &str, current: Option<&str>, mode: &PutMode) -> Result<()> {
    let ok = match mode {
        PutMode::Overwrite => true,
        PutMode::IfAbsent => current.is_none(),
        PutMode::IfMatch(expected) => current == Some(expected.as_str()),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::PreconditionFailed {
            key: key.to_owned(),
        })
    }
}

/// A folder standing in for a bucket: key `a/b.json` is file `<root>/a/b.json`.
///
/// Writes go to a uniquely named temporary file that is renamed into place, so readers never
/// see a torn object. Every write holds an exclusive lock on `<root>/.tagger-store.lock` (an
/// OS file lock, `flock`/`LockFileEx`) from reading the current object to the rename, so a
/// conditional write's check and its write are one step for every process and every
/// `LocalStore` sharing the folder: two `tagger job` runs cannot both move one pointer.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
}

/// How much of a file [`LocalStore::get_streaming`] reads at a time.
const LOCAL_READ_PIECE: usize = 64 << 10;

/// The lock file's name in the store's root.
pub const LOCAL_LOCK_FILE: &str = ".tagger-store.lock";

/// Tells apart the temporary files of concurrent writes in one process.
static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Holds the store-wide write lock until the returned file is dropped (the OS releases it
    /// with the descriptor, also when the process dies).
    fn lock(&self, key: &str) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.root).map_err(|e| local_error("put", key, e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCAL_LOCK_FILE))
            .map_err(|e| local_error("put", key, e))?;
        file.lock().map_err(|e| local_error("put", key, e))?;
        Ok(file)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(key
            .split('/')
            .fold(self.root.clone(), |p, part| p.join(part)))
    }

    fn read(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Object {
                etag: content_etag(&bytes),
                body: Bytes::from(bytes),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if path.is_dir() => Err(Error::Store {
                op: "get",
                key: key.to_owned(),
                message: format!("{} is a directory ({e})", path.display()),
                retryable: false,
            }),
            Err(e) => Err(local_error("get", key, e)),
        }
    }
}

fn local_error(op: &'static str, key: &str, e: std::io::Error) -> Error {
    Error::Store {
        op,
        key: key.to_owned(),
        message: e.to_string(),
        retryable: false,
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<Object>> {
        self.read(key)
    }

    async fn head(&self, key: &str) -> Result<Option<String>> {
        Ok(self.read(key)?.map(|o| o.etag))
    }

    /// Reads the file in pieces, never holding it whole (and without the content ETag, which
    /// would cost a hash of the whole file).
    async fn get_streaming(&self, key: &str, sink: &mut BodySink<'_>) -> Result<bool> {
        use std::io::Read;
        let path = self.path(key)?;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(local_error("get", key, e)),
        };
        let mut piece = vec![0u8; LOCAL_READ_PIECE];
        loop {
            match file.read(&mut piece) {
                Ok(0) => return Ok(true),
                Ok(n) => sink(&piece[..n])?,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if path.is_dir() => {
                    return Err(Error::Store {
                        op: "get",
                        key: key.to_owned(),
                        message: format!("{} is a directory ({e})", path.display()),
                        retryable: false,
                    })
                }
                Err(e) => return Err(local_error("get", key, e)),
            }
        }
    }

    async fn get_limited(&self, key: &str, max_bytes: u64) -> Result<Option<Object>> {
        // Refuse by the file's size before reading it.
        let path = self.path(key)?;
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.is_file() && meta.len() > max_bytes {
                return Err(Error::TooLarge {
                    key: key.to_owned(),
                    size: Some(meta.len()),
                    limit: max_bytes,
                });
            }
        }
        self.read(key)
    }

    async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<String> {
        let path = self.path(key)?;
        let _guard = self.lock(key)?;
        if mode != PutMode::Overwrite {
            let current = self.read(key)?.map(|o| o.etag);
            precondition(key, current.as_deref(), &mode)?;
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| local_error("put", key, e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{file_name}.{}-{unique}.tmp", std::process::id()));
        std::fs::write(&tmp, &body).map_err(|e| local_error("put", key, e))?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(local_error("put", key, e));
        }
        Ok(content_etag(&body))
    }

    /// Files under the root as keys; the lock file, temporary files of writes in progress and
    /// anything whose name is not a valid key are left out. A missing root holds no keys.
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut folders = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = folders.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(local_error("list", &rel, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| local_error("list", &rel, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let key = join(&rel, &name);
                let kind = entry
                    .file_type()
                    .map_err(|e| local_error("list", &key, e))?;
                if kind.is_dir() {
                    // Only folders that can hold keys under `prefix`.
                    if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) {
                        folders.push((entry.path(), key));
                    }
                } else if kind.is_file() && key.starts_with(prefix) && check_key(&key).is_ok() {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: &dyn ObjectStore) {
        assert_eq!(store.get("models/latest.json").await.unwrap(), None);
        let e1 = store
            .put(
                "models/latest.json",
                Bytes::from_static(b"one"),
                PutMode::IfAbsent,
            )
            .await
            .unwrap();
        assert!(matches!(
            store
                .put(
                    "models/latest.json",
                    Bytes::from_static(b"two"),
                    PutMode::IfAbsent
                )
                .await,
            Err(Error::PreconditionFailed { .. })
        ));
        assert!(matches!(
            store
                .put(
                    "models/latest.json",
                    Bytes::from_static(b"two"),
                    PutMode::IfMatch("\"x\"".into())
                )
                .await,
            Err(Error::PreconditionFailed { .. })
        ));
        assert_eq!(
            store
                .get_if_changed("models/latest.json", Some(&e1))
                .await
                .unwrap(),
            Fetched::NotModified
        );
        let e2 = store
            .put(
                "models/latest.json",
                Bytes::from_static(b"two"),
                PutMode::IfMatch(e1.clone()),
            )
            .await
            .unwrap();
        assert_ne!(e1, e2);
        match store
            .get_if_changed("models/latest.json", Some(&e1))
            .await
            .unwrap()
        {
            Fetched::Changed(obj) => assert_eq!(&obj.body[..], b"two"),
            other => panic!("expected a change, got {other:?}"),
        }
        assert_eq!(store.head("models/latest.json").await.unwrap(), Some(e2));
        assert_eq!(
            store.get_if_changed("nothing", None).await.unwrap(),
            Fetched::Missing
        );
        for bad in ["", "/abs", "a/../b", "a//b", "dir/"] {
            assert!(
                matches!(
                    store.get(bad).await,
                    Err(Error::Store {
                        retryable: false,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    /// Every store hands over the whole body in order, in one piece or several, and says when
    /// there is nothing; a local file larger than one read arrives in several pieces.
    #[tokio::test]
    async fn streaming_reads_give_the_whole_body_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalStore::new(dir.path());
        let memory = MemoryStore::new();
        let body: Vec<u8> = (0..3 * LOCAL_READ_PIECE + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        for store in [&local as &dyn ObjectStore, &memory] {
            store
                .put("m/model.bin", Bytes::from(body.clone()), PutMode::Overwrite)
                .await
                .unwrap();
            let (mut got, mut pieces) = (Vec::new(), 0);
            let found = store
                .get_streaming("m/model.bin", &mut |piece| {
                    got.extend_from_slice(piece);
                    pieces += 1;
                    Ok(())
                })
                .await
                .unwrap();
            assert!(found);
            assert_eq!(got, body);
            if store.describe().starts_with("file://") {
                assert!(pieces > 1, "{pieces}");
            }
            let missing = store
                .get_streaming("m/absent.bin", &mut |_| panic!("no body for a missing key"))
                .await
                .unwrap();
            assert!(!missing);
            // An error from the sink stops the read and is what the caller gets.
            let stopped = store
                .get_streaming("m/model.bin", &mut |_| {
                    Err(Error::NotFound { key: "stop".into() })
                })
                .await;
            assert!(matches!(stopped, Err(Error::NotFound { key }) if key == "stop"));
        }
        // A folder where an object should be is an error, not an empty object.
        assert!(matches!(
            local.get_streaming("m", &mut |_| Ok(())).await,
            Err(Error::Store { .. })
        ));
    }

    #[tokio::test]
    async fn memory_store_honours_conditions() {
        exercise(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn local_store_honours_conditions_and_writes_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        exercise(&store).await;
        assert_eq!(
            std::fs::read(dir.path().join("models/latest.json")).unwrap(),
            b"two"
        );
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("models"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    /// Many writers, each with its own `LocalStore` on one folder (as separate processes have),
    /// race to move one pointer with `IfMatch`: every successful move must be based on the
    /// value it replaced, so the number of moves equals the final counter.
    #[test]
    fn conditional_writes_hold_across_separate_local_stores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let rt = || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        };
        rt().block_on(LocalStore::new(&root).put(
            "models/latest.json",
            Bytes::from("0"),
            PutMode::IfAbsent,
        ))
        .unwrap();
        let wins: u64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    let root = root.clone();
                    s.spawn(move || {
                        let store = LocalStore::new(&root);
                        let rt = rt();
                        let mut wins = 0u64;
                        for _ in 0..200 {
                            let cur = rt
                                .block_on(store.get("models/latest.json"))
                                .unwrap()
                                .unwrap();
                            let n: u64 = std::str::from_utf8(&cur.body).unwrap().parse().unwrap();
                            let next = Bytes::from((n + 1).to_string());
                            match rt.block_on(store.put(
                                "models/latest.json",
                                next,
                                PutMode::IfMatch(cur.etag),
                            )) {
                                Ok(_) => wins += 1,
                                Err(Error::PreconditionFailed { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        wins
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        let last = std::fs::read_to_string(root.join("models/latest.json")).unwrap();
        assert_eq!(
            last.parse::<u64>().unwrap(),
            wins,
            "a successful move was lost"
        );
        assert!(wins > 0);
    }

    async fn listing(store: &dyn ObjectStore) {
        for key in [
            "models/a/model.bin",
            "models/b/model.bin",
            "models/latest.json",
            "data/x.csv",
        ] {
            store
                .put(key, Bytes::from_static(b"x"), PutMode::Overwrite)
                .await
                .unwrap();
        }
        assert_eq!(
            store.list("models/").await.unwrap(),
            [
                "models/a/model.bin",
                "models/b/model.bin",
                "models/latest.json"
            ]
        );
        assert_eq!(store.list("").await.unwrap().len(), 4);
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn memory_store_lists_keys_under_a_prefix() {
        listing(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn local_store_lists_files_but_not_its_lock_or_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        listing(&store).await;
        std::fs::write(dir.path().join("models/.latest.json.1-1.tmp"), b"").unwrap();
        assert!(dir.path().join(LOCAL_LOCK_FILE).is_file());
        assert_eq!(store.list("models/").await.unwrap().len(), 3);
        assert!(LocalStore::new(dir.path().join("missing"))
            .list("")
            .await
            .unwrap()
            .is_empty());
    }

    #[test]
    fn join_handles_empty_and_slashed_prefixes() {
        assert_eq!(join("", "a.json"), "a.json");
        assert_eq!(join("models/", "a.json"), "models/a.json");
    }
}
