//! The output layer's loss and delta for a batch: binary cross-entropy on the logits, with
//! optional positive weights or soft (teacher) targets, in one pass that vectorises.

use pulp::Arch;
use tagger_core::sparse::SparseRows;

use super::kernels::{exp_nonpositive, simd};
use crate::teacher::SoftTargets;

/// One batch's output logits and where their deltas go (`rows x n_out` each, row-major).
pub(super) struct OutputBatch<'a> {
    pub logits: &'a [f32],
    pub delta: &'a mut [f32],
    pub ids: &'a [usize],
    pub n_out: usize,
    /// `1 / (rows * n_out)`: the mean over the batch's cells.
    pub scale: f32,
}

/// Writes `delta = (sigmoid(z) - target) * scale` for every cell and returns the summed loss;
/// see [`super::Training::backward_batch_targets`] for the targets.
pub(super) fn loss_and_delta(
    batch: OutputBatch<'_>,
    y: &SparseRows,
    soft: Option<&SoftTargets>,
    pos_weights: &[f32],
) -> f64 {
    let OutputBatch {
        logits,
        delta,
        ids,
        n_out,
        scale,
    } = batch;
    simd!(Arch::new(), 'a, |
        logits: &'a [f32] = logits;
        delta: &'a mut [f32] = delta;
        ids: &'a [usize] = ids;
        y: &'a SparseRows = y;
        soft: Option<&'a SoftTargets> = soft;
        pos_weights: &'a [f32] = pos_weights;
        n_out: usize = n_out;
        scale: f32 = scale;
    | -> f64 {
    let mut loss = 0.0f64;
    for ((z_row, d_row), &id) in logits
        .chunks_exact(n_out)
        .zip(delta.chunks_exact_mut(n_out))
        .zip(ids)
    {
        // e = exp(-|z|). Sums over 16 lanes (added in a fixed order below); the sum of
        // ln(1 + e) as the ln of a product: one `ln` per 512 outputs instead of one
        // each. Every factor is in (1, 2], so 512 of them stay below 2^512.
        let mut lanes = [0.0f32; 16];
        let mut log_sum = 0.0f64;
        for (zc, dc) in z_row.chunks(512).zip(d_row.chunks_mut(512)) {
            let mut product = [1.0f64; 16];
            let (z16, z_rest) = zc.as_chunks::<16>();
            let (d16, d_rest) = dc.as_chunks_mut::<16>();
            for (z, d) in z16.iter().zip(d16) {
                for l in 0..16 {
                    let e = exp_nonpositive(-z[l].abs());
                    let inv = 1.0 / (1.0 + e);
                    d[l] = if z[l] >= 0.0 { inv } else { e * inv } * scale;
                    lanes[l] += z[l].max(0.0);
                    product[l] *= 1.0 + f64::from(e);
                }
            }
            for (l, (&z, d)) in z_rest.iter().zip(d_rest).enumerate() {
                let e = exp_nonpositive(-z.abs());
                let inv = 1.0 / (1.0 + e);
                *d = if z >= 0.0 { inv } else { e * inv } * scale;
                lanes[l] += z.max(0.0);
                product[l] *= 1.0 + f64::from(e);
            }
            log_sum += product.iter().product::<f64>().ln();
        }
        let mut linear = lanes.iter().sum::<f32>();
        let (a, teacher) = match soft {
            Some(s) if s.weight[id] > 0.0 => (s.weight[id], s.rows[id].as_slice()),
            _ => (0.0, &[][..]),
        };
        if a > 0.0 {
            for &t in y.row(id) {
                let t = t as usize;
                if t < n_out {
                    linear -= (1.0 - a) * z_row[t];
                    d_row[t] -= (1.0 - a) * scale;
                }
            }
            for &(t, q) in teacher {
                let t = t as usize;
                if t < n_out {
                    linear -= a * q * z_row[t];
                    d_row[t] -= a * q * scale;
                }
            }
            loss += f64::from(linear) + log_sum;
            continue;
        }
        for &t in y.row(id) {
            let t = t as usize;
            if t < n_out {
                linear -= z_row[t];
                d_row[t] -= scale;
                if let Some(&w) = pos_weights.get(t) {
                    // The positive's loss is -ln p = softplus(-z) = loss(y=0) - z;
                    // scale it by w: add (w - 1) * (softplus(-z)).
                    let z = z_row[t];
                    let softplus_neg = (-z).max(0.0) + (-z.abs()).exp().ln_1p();
                    loss += f64::from((w - 1.0) * softplus_neg);
                    d_row[t] *= w;
                }
            }
        }
        loss += f64::from(linear) + log_sum;
    }
    loss
    })
}
