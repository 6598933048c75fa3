//! The multi-label MLP: a sparse binary first layer (a gather-sum of weight rows), ReLU hidden
//! layers, and one sigmoid output per tag.
//!
//! Weights are laid out as Keras lays out a `Dense` kernel, `(inputs, outputs)`, so a layer
//! computes `x @ weights + bias` and Keras-trained weights load unchanged.

use std::borrow::Cow;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quant::CodedRows;

/// One fully connected layer: `y = x @ weights + bias`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// `(inputs, outputs)`.
    pub weights: Array2<f32>,
    /// `(outputs,)`.
    pub bias: Array1<f32>,
}

/// `clone_from` copies into the existing arrays: training keeps its best epoch's weights this
/// way every time the validation loss improves, and a fresh multi-megabyte allocation each time
/// costs page faults and, when the old one is unmapped, TLB shootdowns.
impl Clone for Dense {
    fn clone(&self) -> Self {
        Self {
            weights: self.weights.clone(),
            bias: self.bias.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.weights.clone_from(&source.weights);
        self.bias.clone_from(&source.bias);
    }
}

/// Layers in order; every layer but the last is followed by ReLU, the last by a sigmoid.
///
/// A model decoded from a format-3 artifact keeps its first layer's weights as its codes
/// ([`Mlp::coded_first`]): a quarter of the memory of `f32` weights, and a cold start does not
/// write (and fault in) megabytes of weights that a question reads a few rows of. The layer's
/// `weights` are then empty (no rows); [`Mlp::first_row`] reads a row in either form, and
/// [`Mlp::layers_mut`] and [`Mlp::expanded`] give `f32` weights.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Dense>,
    coded_first: Option<CodedRows>,
}

/// `clone_from` reuses the target's arrays (see [`Dense`]'s).
impl Clone for Mlp {
    fn clone(&self) -> Self {
        Self {
            layers: self.layers.clone(),
            coded_first: self.coded_first.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.layers.clone_from(&source.layers);
        self.coded_first.clone_from(&source.coded_first);
    }
}

/// Networks are equal when their weights are, whatever form the first layer is kept in.
impl PartialEq for Mlp {
    fn eq(&self, other: &Self) -> bool {
        match (&self.coded_first, &other.coded_first) {
            (None, None) => self.layers == other.layers,
            (Some(a), Some(b)) => a == b && self.layers == other.layers,
            _ => self.expanded().layers == other.expanded().layers,
        }
    }
}

impl Mlp {
    /// Checks that the layers chain (each layer's outputs feed the next one's inputs).
    pub fn from_layers(layers: Vec<Dense>) -> Result<Self> {
        check_layers(&layers)?;
        Ok(Mlp {
            layers,
            coded_first: None,
        })
    }

    /// [`Mlp::from_layers`] with the first layer's weights kept coded; `rest` are the layers
    /// after it.
    pub fn from_coded_first(first: CodedRows, bias: Array1<f32>, rest: Vec<Dense>) -> Result<Self> {
        let mut layers = Vec::with_capacity(rest.len() + 1);
        layers.push(Dense {
            weights: Array2::zeros((0, first.cols())),
            bias,
        });
        layers.extend(rest);
        check_layers(&layers)?;
        Ok(Mlp {
            layers,
            coded_first: Some(first),
        })
    }

    /// The first layer's weights when they are kept coded.
    pub fn coded_first(&self) -> Option<&CodedRows> {
        self.coded_first.as_ref()
    }

    /// This network with `f32` weights in every layer (borrowed when it has them already).
    pub fn expanded(&self) -> Cow<'_, Mlp> {
        match &self.coded_first {
            None => Cow::Borrowed(self),
            Some(coded) => {
                let mut layers = self.layers.clone();
                layers[0].weights = coded.to_array();
                Cow::Owned(Mlp {
                    layers,
                    coded_first: None,
                })
            }
        }
    }

    /// Row `i` of the first layer's weights (`i < n_inputs()`), read through `scratch` when
    /// the layer is kept coded or its kernel is not contiguous.
    pub fn first_row<'a>(&'a self, i: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        if let Some(coded) = &self.coded_first {
            coded.row_into(i, scratch);
            return scratch;
        }
        let row = self.layers[0].weights.row(i);
        match row.to_slice() {
            Some(w) => w,
            None => {
                scratch.clear();
                scratch.extend(row.iter().copied());
                scratch
            }
        }
    }

    /// The checks of [`Mlp::from_layers`] on a network that exists already (a decoded artifact),
    /// without copying its weights.
    pub fn check(&self) -> Result<()> {
        check_layers(&self.layers)
    }

    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Mutable access for training and quantisation: values may change, shapes must not
    /// (every caller keeps each array's shape; [`Mlp::check`] verifies it). A coded first
    /// layer is expanded to `f32` weights first.
    pub fn layers_mut(&mut self) -> &mut [Dense] {
        if let Some(coded) = self.coded_first.take() {
            self.layers[0].weights = coded.to_array();
        }
        &mut self.layers
    }

    pub fn n_inputs(&self) -> usize {
        match &self.coded_first {
            Some(coded) => coded.rows(),
            None => self.layers[0].weights.nrows(),
        }
    }

    pub fn n_outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].weights.ncols()
    }

    /// For each output, whether it answers the same for every input: all its incoming weights
    /// are zero, as for a tag trained without an output unit (`min_tag_rows`), which is then
    /// never predicted above its training frequency.
    pub fn constant_outputs(&self) -> Vec<bool> {
        let net = if self.layers.len() == 1 {
            // The only layer is the first, which may be kept coded.
            self.expanded()
        } else {
            Cow::Borrowed(self)
        };
        let last = &net.layers[net.layers.len() - 1].weights;
        last.columns()
            .into_iter()
            .map(|c| c.iter().all(|&w| w == 0.0))
            .collect()
    }

    /// Output logits for a binary input given by the indices of its ones.
    /// Indices outside the input range are ignored: they carry no learned weight.
    pub fn logits(&self, features: &[u32]) -> Array1<f32> {
        // Compiled once more for the widest vector unit the CPU has (AVX2 / AVX-512 on x86-64,
        // chosen at run time, one build for every host). There are no fused multiply-adds and
        // the order of every sum is the same, so the bits are the same on every path.
        struct Forward<'a> {
            model: &'a Mlp,
            features: &'a [u32],
        }
        impl pulp::WithSimd for Forward<'_> {
            type Output = Array1<f32>;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> Array1<f32> {
                self.model.logits_portable(self.features)
            }
        }
        pulp::Arch::new().dispatch(Forward {
            model: self,
            features,
        })
    }

    #[inline(always)]
    fn logits_portable(&self, features: &[u32]) -> Array1<f32> {
        let first = &self.layers[0];
        let mut h = first.bias.clone();
        match &self.coded_first {
            Some(coded) => {
                let out = h
                    .as_slice_mut()
                    .expect("a freshly cloned bias is contiguous");
                for &i in features {
                    if (i as usize) < coded.rows() {
                        coded.add_row(i as usize, out);
                    }
                }
            }
            None => {
                for &i in features {
                    if (i as usize) < first.weights.nrows() {
                        h += &first.weights.row(i as usize);
                    }
                }
            }
        }
        let mut active: Vec<(f32, &[f32])> = Vec::new();
        for layer in &self.layers[1..] {
            let mut next = layer.bias.clone();
            // ReLU zeroes about half the units: their weight rows are skipped, and the rest are
            // row-wise axpys over contiguous memory (cooking model: 30 µs a question instead of
            // 170 µs with `dot`), four rows per pass so that `next` is loaded and stored a
            // quarter as often. Rows of a non-standard layout (never made by this crate) are
            // added first, out of turn.
            let width = next.len();
            active.clear();
            for (i, &v) in h.iter().enumerate() {
                if v > 0.0 {
                    match layer.weights.row(i).to_slice() {
                        Some(w) => active.push((v, w)),
                        None => next.scaled_add(v, &layer.weights.row(i)),
                    }
                }
            }
            let out = next
                .as_slice_mut()
                .expect("a freshly cloned bias is contiguous");
            let mut quads = active.chunks_exact(4);
            for q in &mut quads {
                let [(a, wa), (b, wb), (c, wc), (d, wd)] = [q[0], q[1], q[2], q[3]];
                let (wa, wb, wc, wd) = (&wa[..width], &wb[..width], &wc[..width], &wd[..width]);
                for j in 0..width {
                    // Added one row at a time, as four separate axpys would: the same bits.
                    let mut o = out[j];
                    o += a * wa[j];
                    o += b * wb[j];
                    o += c * wc[j];
                    o += d * wd[j];
                    out[j] = o;
                }
            }
            for &(v, w) in quads.remainder() {
                out.iter_mut().zip(w).for_each(|(o, &wj)| *o += v * wj);
            }
            h = next;
        }
        h
    }

    /// Per-tag probabilities.
    pub fn predict_proba(&self, features: &[u32]) -> Array1<f32> {
        self.logits(features).mapv(sigmoid)
    }

    /// [`Mlp::predict_proba`] for each row, `(rows, tags)`: the very numbers serving computes, so
    /// a score counted against a threshold is the one a request would be answered with (a
    /// batched matrix product sums in another order and can land an ulp away).
    pub fn predict_proba_rows(&self, rows: &crate::sparse::SparseRows) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((rows.len(), self.n_outputs()));
        for (mut dst, row) in out.rows_mut().into_iter().zip(rows.iter()) {
            dst.assign(&self.predict_proba(row));
        }
        out
    }
}

fn check_layers(layers: &[Dense]) -> Result<()> {
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_outputs_are_those_without_incoming_weights() {
        let hidden = Dense {
            weights: Array2::from_shape_vec((2, 2), vec![1.0, 0.5, -0.5, 1.0]).unwrap(),
            bias: Array1::zeros(2),
        };
        let out = Dense {
            weights: Array2::from_shape_vec((2, 3), vec![0.0, 1.0, 0.0, 0.0, 0.0, 2.0]).unwrap(),
            bias: Array1::from(vec![-3.0, 0.0, 0.0]),
        };
        let m = Mlp::from_layers(vec![hidden, out.clone()]).unwrap();
        assert_eq!(m.constant_outputs(), [true, false, false]);
        for x in [&[0u32][..], &[1], &[0, 1]] {
            assert_eq!(m.logits(x)[0], -3.0);
        }
        // One layer: the first (inputs straight to tags).
        let single = Mlp::from_layers(vec![out]).unwrap();
        assert_eq!(single.constant_outputs(), [true, false, false]);
    }

    #[test]
    fn rejects_layers_that_do_not_chain() {
        let a = Dense {
            weights: Array2::zeros((3, 4)),
            bias: Array1::zeros(4),
        };
        let b = Dense {
            weights: Array2::zeros((5, 2)),
            bias: Array1::zeros(2),
        };
        assert!(matches!(
            Mlp::from_layers(vec![a.clone(), b]),
            Err(Error::Shape {
                what: "layer inputs",
                ..
            })
        ));
        let c = Dense {
            weights: Array2::zeros((4, 2)),
            bias: Array1::zeros(3),
        };
        assert!(matches!(
            Mlp::from_layers(vec![a.clone(), c]),
            Err(Error::Shape {
                what: "layer bias",
                ..
            })
        ));
        assert!(matches!(
            Mlp::from_layers(vec![]),
            Err(Error::Shape { what: "model", .. })
        ));
        let ok = Mlp::from_layers(vec![
            a,
            Dense {
                weights: Array2::zeros((4, 2)),
                bias: Array1::zeros(2),
            },
        ])
        .unwrap();
        assert_eq!((ok.n_inputs(), ok.n_outputs()), (3, 2));
    }

    #[test]
    fn sigmoid_is_finite_and_symmetric_for_extreme_logits() {
        for x in [-1e30f32, -100.0, -1.0, 0.0, 1.0, 100.0, 1e30] {
            let p = sigmoid(x);
            assert!(p.is_finite() && (0.0..=1.0).contains(&p), "{x}: {p}");
            assert!((p + sigmoid(-x) - 1.0).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn clone_from_copies_into_the_existing_arrays() {
        let layer = |inputs: usize, outputs: usize, fill: f32| Dense {
            weights: Array2::from_elem((inputs, outputs), fill),
            bias: Array1::from_elem(outputs, fill),
        };
        let source = Mlp::from_layers(vec![layer(6, 4, 1.5), layer(4, 3, -2.0)]).unwrap();
        let mut kept = Mlp::from_layers(vec![layer(6, 4, 0.0), layer(4, 3, 0.0)]).unwrap();
        let buffers = |m: &Mlp| -> Vec<*const f32> {
            m.layers()
                .iter()
                .flat_map(|l| [l.weights.as_ptr(), l.bias.as_ptr()])
                .collect()
        };
        let before = buffers(&kept);
        kept.clone_from(&source);
        assert_eq!(kept, source);
        // Same allocations: a derived `clone_from` allocates a fresh copy and drops the old.
        assert_eq!(buffers(&kept), before);
        // Another shape still gets the source's shape.
        let mut other = Mlp::from_layers(vec![layer(2, 3, 0.0)]).unwrap();
        other.clone_from(&source);
        assert_eq!(other, source);
    }
}
