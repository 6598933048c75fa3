//! tagger's training: a CSV of questions in, a checked [`tagger_core::Artifact`] out.
//!
//! [`dataset`] reads rows (tags, text) and counts what it skips; [`config`] holds the one
//! validated settings model with its presets and typed overrides; [`train`] is the fit loop
//! (sparse Adam, dropout, early stopping) over the network operations in [`nn`];
//! [`calibrate`] picks decision thresholds on validation rows; [`metrics`] scores a model the
//! way it is served; [`pipeline`] ties them together into an artifact and a run report.
//!

pub mod calibrate;
pub mod config;
pub mod dataset;
pub mod error;
pub mod metrics;
pub mod nn;
pub mod pipeline;
pub mod teacher;
pub mod train;

pub use error::{Error, Result};
