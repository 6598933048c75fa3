//! tagger's inference core: everything between a question and a tag answer, with no training,
//! CSV, plotting, async or AWS dependencies (the predict function links only this and a store).
//!
//! The data flow is text -> [`text::prepare`] (HTML to text, masking) -> [`tokenizer`] (sparse
//! feature indices) -> [`model`] (sparse first layer, ReLU, one sigmoid per tag) -> tags at or
//! above their [`thresholds`] -> (on request) [`explain`]: DeepSHAP word attributions. A trained
//! model travels as one versioned, checksummed [`artifact`]; a [`Predictor`] is built once per
//! loaded artifact and answers requests.
//!
//! ```
//! use ndarray::{array, Array1};
//! use tagger_core::model::{Dense, Mlp};
//!
//! // Two features, one tag: feature 1 pushes the tag's logit up by 3.
//! let model = Mlp::from_layers(vec![Dense {
//!     weights: array![[0.0f32], [3.0]],
//!     bias: Array1::from_elem(1, -1.0),
//! }])?;
//! assert!(model.predict_proba(&[1])[0] > 0.8);
//! assert!(model.predict_proba(&[])[0] < 0.3);
//! # Ok::<(), tagger_core::Error>(())
//! ```

pub mod artifact;
pub mod error;
pub mod explain;
pub mod labels;
pub mod model;
pub mod parallel;
pub mod predictor;
pub mod quant;
pub mod sparse;
pub mod text;
pub mod thresholds;
pub mod tokenizer;

pub use artifact::{Artifact, HeadlineMetrics, ModelInfo};
pub use error::{Error, Result};
pub use predictor::{PredictOptions, Prediction, Predictor};
