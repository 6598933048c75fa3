//! The scalar and sparse-vector helpers of the DeepSHAP pass.

use std::cmp::Ordering;

use super::RESCALE_EPS;

/// DeepLIFT's rescale multiplier of a 1-D nonlinearity, with shap's derivative fallback.
#[inline]
pub(super) fn rescale(zx: f64, zr: f64, f: fn(f64) -> f64, df: fn(f64) -> f64) -> f64 {
    let dz = zx - zr;
    if dz.abs() < RESCALE_EPS {
        df(zx)
    } else {
        (f(zx) - f(zr)) / dz
    }
}

#[inline]
pub(super) fn relu(z: f64) -> f64 {
    z.max(0.0)
}

/// TensorFlow's ReLU gradient: 0 at and below zero.
#[inline]
pub(super) fn relu_derivative(z: f64) -> f64 {
    if z > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// Logistic function that never overflows (`exp` only sees a non-positive argument).
#[inline]
pub(super) fn sigmoid64(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[inline]
pub(super) fn sigmoid_derivative(z: f64) -> f64 {
    let s = sigmoid64(z);
    s * (1.0 - s)
}

/// `a . b` with four independent accumulators, so the reduction vectorises (a single running sum
/// would pin the additions to one order).
#[inline]
pub(super) fn dot(a: &[f32], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f64::from(x) * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            lanes[l] += f64::from(x[l]) * y[l];
        }
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

/// Features where two sorted binary rows differ, with `x_i - r_i` (+1 only in x, -1 only in r).
pub(super) fn differing(x: &[u32], r: &[u32], out: &mut Vec<(u32, f64)>) {
    out.clear();
    let (mut a, mut b) = (0, 0);
    while a < x.len() && b < r.len() {
        match x[a].cmp(&r[b]) {
            Ordering::Less => {
                out.push((x[a], 1.0));
                a += 1;
            }
            Ordering::Greater => {
                out.push((r[b], -1.0));
                b += 1;
            }
            Ordering::Equal => {
                a += 1;
                b += 1;
            }
        }
    }
    out.extend(x[a..].iter().map(|&i| (i, 1.0)));
    out.extend(r[b..].iter().map(|&i| (i, -1.0)));
}

pub(super) fn sorted_union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out.sort_unstable();
    out.dedup();
    out
}

/// Position of a feature known to be in `union` (every differing feature is in x or a background row).
#[inline]
pub(super) fn slot_of(union: &[u32], feature: u32) -> usize {
    union
        .binary_search(&feature)
        .unwrap_or_else(|insert| insert)
}
