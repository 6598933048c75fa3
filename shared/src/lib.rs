//! tagger's library: everything between a CSV of questions and a tag answer, with no Lambda or AWS types.
//!
//! The data flow is text -> tokens -> sparse feature indices -> MLP -> per-tag probabilities ->
//! tags above their thresholds -> (on request) DeepSHAP word attributions, and all of a trained
//! model travels as one versioned, checksummed artifact.

pub mod error;
pub mod sparse;
pub mod text;
pub mod tokenizer;
pub mod dataset;
pub mod labels;
pub mod model;
pub mod train;
pub mod thresholds;
pub mod metrics;
pub mod explain;
pub mod plot;
pub mod config;
pub mod artifact;
pub mod pipeline;
pub mod predictor;
pub mod store;

pub use error::{Error, Result};
