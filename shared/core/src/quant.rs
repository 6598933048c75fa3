//! Weight quantisation for artifacts: each weight row (one input's outgoing weights) is stored as
//! small signed integers times one `f32` scale per row.
//!
//! The first layer (one row per vocabulary entry, almost all of a model's bytes) uses
//! [`FIRST_LAYER_BITS`]; the small deeper layers [`DEEP_LAYER_BITS`]. Measured on the cooking model
//! (`cargo run --release -p tagger-train --example quantize`), 6 bits on the first layer and 8 on
//! the rest moved P@1, micro- and macro-F1 by less than 0.001.
//!
//! [`snap`] rounds a network onto the grid the artifact stores, so training evaluates exactly
//! the model that will be served, and encoding a snapped network is lossless: every row's scale
//! is chosen as a fixed point of the encoder's own scale computation (see [`row_scale`]).

use ndarray::Array2;

use crate::model::Mlp;

pub const FIRST_LAYER_BITS: u8 = 5;
pub const DEEP_LAYER_BITS: u8 = 8;

/// Bits for layer `l`.
pub fn bits_for_layer(l: usize) -> u8 {
    if l == 0 {
        FIRST_LAYER_BITS
    } else {
        DEEP_LAYER_BITS
    }
}

/// Largest code magnitude for `bits` (symmetric: -levels..=levels).
fn levels(bits: u8) -> f32 {
    ((1u32 << (bits - 1)) - 1) as f32
}

/// The scale for a row whose largest magnitude is `max`: `max / levels`, nudged by a few ulps to
/// a value `s` with `fl(fl(levels * s) / levels) == s`, so that re-encoding a decoded row finds
/// the same scale and the same codes (byte-identical artifacts across save/load cycles).
pub fn row_scale(max: f32, bits: u8) -> f32 {
    if max == 0.0 || !max.is_finite() {
        return 0.0;
    }
    let l = levels(bits);
    let s0 = max / l;
    let fixed = |s: f32| (l * s) / l == s;
    let mut candidates = [s0; 9];
    for (i, c) in candidates.iter_mut().enumerate().skip(1) {
        let steps = i.div_ceil(2) as u32;
        let bits = s0.to_bits();
        *c = f32::from_bits(if i % 2 == 1 {
            bits + steps
        } else {
            bits - steps
        });
    }
    candidates.into_iter().find(|&s| fixed(s)).unwrap_or(s0)
}

fn row_max<'a>(row: impl Iterator<Item = &'a f32>) -> f32 {
    row.fold(0f32, |m, &v| m.max(v.abs()))
}

/// Code of `v` at `scale` for `bits` (offset to be non-negative).
fn code(v: f32, scale: f32, bits: u8) -> u32 {
    let l = levels(bits);
    let k = if scale == 0.0 {
        0.0
    } else {
        (v / scale).round().clamp(-l, l)
    };
    (k + l) as u32
}

fn value(code: u32, scale: f32, bits: u8) -> f32 {
    (code as f32 - levels(bits)) * scale
}

/// Rounds every weight of `model` onto the grid its artifact stores (biases stay `f32`).
pub fn snap(model: &mut Mlp) {
    for (l, layer) in model.layers_mut().iter_mut().enumerate() {
        snap_layer(&mut layer.weights, bits_for_layer(l));
    }
}

/// Rounds one layer's weights onto its `bits`-wide per-row grid.
pub fn snap_layer(weights: &mut Array2<f32>, bits: u8) {
    for mut row in weights.rows_mut() {
        let scale = row_scale(row_max(row.iter()), bits);
        row.mapv_inplace(|v| value(code(v, scale, bits), scale, bits));
    }
}

/// One layer's weights as per-row scales and `bits`-wide codes packed little-endian.
pub fn encode(weights: &Array2<f32>, bits: u8) -> (Vec<f32>, Vec<u8>) {
    let (rows, cols) = weights.dim();
    let mut scales = Vec::with_capacity(rows);
    let mut packed = Vec::with_capacity((rows * cols * bits as usize).div_ceil(8));
    let (mut acc, mut filled) = (0u64, 0u32);
    for row in weights.rows() {
        let scale = row_scale(row_max(row.iter()), bits);
        scales.push(scale);
        for &v in row {
            acc |= u64::from(code(v, scale, bits)) << filled;
            filled += u32::from(bits);
            while filled >= 8 {
                packed.push(acc as u8);
                acc >>= 8;
                filled -= 8;
            }
        }
    }
    if filled > 0 {
        packed.push(acc as u8);
    }
    (scales, packed)
}

/// The inverse of [`encode`]; `None` when the parts do not fit the shape.
pub fn decode(
    rows: usize,
    cols: usize,
    bits: u8,
    scales: &[f32],
    packed: &[u8],
) -> Option<Array2<f32>> {
    if !(2..=8).contains(&bits) || scales.len() != rows {
        return None;
    }
    let n = rows.checked_mul(cols)?;
    if packed.len() != (n.checked_mul(bits as usize)?).div_ceil(8) {
        return None;
    }
    let mask = (1u64 << bits) - 1;
    let mut out = Vec::with_capacity(n);
    let (mut acc, mut filled, mut bytes) = (0u64, 0u32, packed.iter());
    for &scale in scales {
        for _ in 0..cols {
            while filled < u32::from(bits) {
                acc |= u64::from(*bytes.next()?) << filled;
                filled += 8;
            }
            let c = (acc & mask) as u32;
            acc >>= bits;
            filled -= u32::from(bits);
            out.push(value(c, scale, bits));
        }
    }
    Array2::from_shape_vec((rows, cols), out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dense;
    use ndarray::Array1;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encoding_a_snapped_layer_is_lossless(
            rows in 1usize..6,
            cols in 1usize..9,
            seed in prop::collection::vec(-3.0f32..3.0, 54),
            bits in prop::sample::select(vec![FIRST_LAYER_BITS, DEEP_LAYER_BITS]),
        ) {
            let original = Array2::from_shape_fn((rows, cols), |(r, c)| {
                seed[(r * cols + c) % seed.len()] * (r as f32 + 0.5)
            });
            let mut snapped = original.clone();
            snap_layer(&mut snapped, bits);
            let (scales, packed) = encode(&snapped, bits);
            let decoded = decode(rows, cols, bits, &scales, &packed).unwrap();
            prop_assert_eq!(&decoded, &snapped);
            prop_assert_eq!(encode(&decoded, bits), (scales, packed));
            // Snapping moves each weight by at most half a step of its row.
            for (o, s) in original.rows().into_iter().zip(snapped.rows()) {
                let step = row_max(o.iter()) / levels(bits);
                for (a, b) in o.iter().zip(s.iter()) {
                    prop_assert!((a - b).abs() <= step * 0.5001 + 1e-6, "{a} -> {b}");
                }
            }
        }
    }

    #[test]
    fn snapping_a_network_uses_each_layers_bits() {
        let w = |r, c| Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.3);
        let mut model = Mlp::from_layers(vec![
            Dense {
                weights: w(4, 3),
                bias: Array1::zeros(3),
            },
            Dense {
                weights: w(3, 2),
                bias: Array1::zeros(2),
            },
        ])
        .unwrap();
        snap(&mut model);
        for (l, layer) in model.layers().iter().enumerate() {
            let bits = bits_for_layer(l);
            let (scales, packed) = encode(&layer.weights, bits);
            let (r, c) = layer.weights.dim();
            assert_eq!(
                decode(r, c, bits, &scales, &packed).unwrap(),
                layer.weights,
                "layer {l}"
            );
        }
    }

    #[test]
    fn decode_refuses_parts_that_do_not_fit() {
        let w = Array2::from_shape_vec((2, 3), vec![1.0, -1.0, 0.5, 0.0, 0.0, 0.0]).unwrap();
        let (scales, packed) = encode(&w, 6);
        assert!(decode(2, 3, 6, &scales, &packed).is_some());
        assert!(decode(3, 3, 6, &scales, &packed).is_none());
        assert!(decode(2, 3, 6, &scales, &packed[1..]).is_none());
        assert!(decode(2, 3, 9, &scales, &packed).is_none());
        assert!(decode(usize::MAX, 3, 6, &scales, &packed).is_none());
    }
}
