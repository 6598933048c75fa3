//! The multi-label MLP: a sparse binary first layer (a gather-sum of weight rows), ReLU hidden
//! layers, and one sigmoid output per tag.
//!
//! Weights are laid out as Keras lays out a `Dense` kernel, `(inputs, outputs)`, so a layer
//! computes `x @ weights + bias` and Keras-trained weights load unchanged.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One fully connected layer: `y = x @ weights + bias`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// `(inputs, outputs)`.
    pub weights: Array2<f32>,
    /// `(outputs,)`.
    pub bias: Array1<f32>,
}

/// Layers in order; every layer but the last is followed by ReLU, the last by a sigmoid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub layers: Vec<Dense>,
}

impl Mlp {
    /// Checks that the layers chain (each layer's outputs feed the next one's inputs).
    pub fn from_layers(layers: Vec<Dense>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Shape {
                what: "model",
                expected: "at least one layer".into(),
                found: "none".into(),
            });
        }
        for (i, layer) in layers.iter().enumerate() {
            if layer.weights.ncols() != layer.bias.len() {
                return Err(Error::Shape {
                    what: "layer bias",
                    expected: format!("{} values for layer {i}", layer.weights.ncols()),
                    found: layer.bias.len().to_string(),
                });
            }
            if i > 0 && layers[i - 1].weights.ncols() != layer.weights.nrows() {
                return Err(Error::Shape {
                    what: "layer inputs",
                    expected: format!("{} inputs for layer {i}", layers[i - 1].weights.ncols()),
                    found: layer.weights.nrows().to_string(),
                });
            }
        }
        Ok(Mlp { layers })
    }

    pub fn n_inputs(&self) -> usize {
        self.layers[0].weights.nrows()
    }

    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].weights.ncols()
    }

    /// Output logits for a binary input given by the indices of its ones.
    /// Indices outside the input range are ignored: they carry no learned weight.
    pub fn logits(&self, features: &[u32]) -> Array1<f32> {
        let first = &self.layers[0];
        let mut h = first.bias.clone();
        for &i in features {
            if let Some(row) = ((i as usize) < first.weights.nrows()).then(|| first.weights.row(i as usize)) {
                h += &row;
            }
        }
        for layer in &self.layers[1..] {
            h.mapv_inplace(|v| v.max(0.0));
            h = h.dot(&layer.weights) + &layer.bias;
        }
        h
    }

    /// Per-tag probabilities.
    pub fn predict_proba(&self, features: &[u32]) -> Array1<f32> {
        self.logits(features).mapv(sigmoid)
    }
}

/// Logistic function that never overflows: `exp` only ever sees a non-positive argument.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
