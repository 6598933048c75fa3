//! Published tagger models in an object store, with no training or AWS dependencies: the
//! [`store::ObjectStore`] trait (local folder and memory here; S3 in `tagger-s3`) and the
//! [`registry::Registry`] of immutable versions plus the pointer the predict function follows.
//!
//! ```
//! # tokio_test_block(async {
//! use tagger_registry::registry::Registry;
//! use tagger_registry::store::MemoryStore;
//!
//! let store = MemoryStore::new();
//! let registry = Registry::new(&store, "models");
//! assert!(registry.latest().await?.is_none()); // nothing published yet
//! # Ok::<(), tagger_registry::Error>(())
//! # });
//! # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

pub mod clock;
pub mod error;
pub mod registry;
pub mod store;

pub use error::{Error, Result};
