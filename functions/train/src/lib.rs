//! The `train` Lambda function: an S3 upload under the data prefix retrains and, when the new
//! model passes the quality gate, publishes it.
//!
//! `main.rs` only sets up logging, reads [`config::Config`] from the environment once, builds the
//! S3 client once and runs [`handler::handle`]; the work itself is
//! [`tagger_job::retrain`], which knows nothing of Lambda or AWS.

pub mod config;
pub mod handler;
