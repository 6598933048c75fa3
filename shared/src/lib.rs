//! tagger's library: everything between a CSV of questions and a tag answer, with no Lambda or AWS types.
//!
//! The data flow is text -> tokens -> sparse feature indices -> MLP -> per-tag probabilities ->
//! tags above their thresholds -> (on request) DeepSHAP word attributions, and all of a trained
//! model travels as one versioned, checksummed artifact.

pub mod artifact;
pub mod config;
pub mod dataset;
pub mod error;
pub mod explain;
pub mod job;
pub mod labels;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod plot;
pub mod predictor;
pub mod registry;
pub mod sparse;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod text;
pub mod thresholds;
pub mod tokenizer;
pub mod train;

pub use error::{Error, Result};
