//! The loops of a training step over hidden activations, compiled for the widest SIMD the CPU
//! offers: pulp picks AVX-512 or AVX2 on x86-64 at run time (NEON on aarch64, baseline code
//! elsewhere), so one build is fast everywhere without a build-wide `target-cpu`.
//!
//! A hidden layer's output is mostly zeros (ReLU, then dropout drops half of what is left), so
//! the products with the next layer's weights only visit the active units: the forward pass adds
//! one weight row per active unit, the weight gradient adds one delta row per active row, and
//! the delta below is only computed where the unit was active (elsewhere it is zero). That is
//! about a quarter of a dense product's work on the default preset.
//!
//! Every value is computed by the same sequence of f32 operations whatever the instruction set
//! (no fused multiply-adds, sums in a fixed order: terms in unit or row order, dot products over
//! 16 fixed lanes folded in a fixed tree), so training gives bit-identical weights on every
//! machine.

use pulp::{Arch, Simd, WithSimd};

/// Runs a block with the CPU's widest SIMD enabled: `simd!(arch, 'a, |name: type = value; ...;|
/// -> output { body })`. A closure handed to pulp is not inlined into its target-feature
/// function (its loops would stay at baseline width), so the block becomes the
/// `#[inline(always)]` method of a struct holding the named inputs.
macro_rules! simd {
    ($arch:expr, $lt:lifetime, |$($name:ident: $ty:ty = $val:expr;)*| -> $ret:ty $body:block) => {{
        struct Op<$lt> {
            $($name: $ty,)*
            _borrows: ::core::marker::PhantomData<&$lt ()>,
        }
        impl<$lt> ::pulp::WithSimd for Op<$lt> {
            type Output = $ret;
            #[inline(always)]
            fn with_simd<S: ::pulp::Simd>(self, _: S) -> $ret {
                let Op { $($name,)* .. } = self;
                $body
            }
        }
        $arch.dispatch(Op {
            $($name: $val,)*
            _borrows: ::core::marker::PhantomData,
        })
    }};
}
pub(crate) use simd;

/// The nonzero entries of each row of a `(rows, width)` matrix, row after row (compressed
/// sparse rows): row `r` holds `index[start[r]..start[r + 1]]` with `value[..]` alike.
#[derive(Debug, Default, Clone)]
pub struct SparseBatch {
    pub start: Vec<usize>,
    pub index: Vec<u32>,
    pub value: Vec<f32>,
}

impl SparseBatch {
    /// Row `r`'s indices and values.
    #[inline(always)]
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.start[r]..self.start[r + 1];
        (&self.index[span.clone()], &self.value[span])
    }

    pub fn rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// Collects the positive entries of the first `rows` rows of `dense` (`width` per row).
    pub fn gather_positive(&mut self, dense: &[f32], rows: usize, width: usize) {
        let cells = rows * width;
        self.start.clear();
        self.start.push(0);
        // Write every cell's slot and advance only past positive ones: no branch to mispredict.
        self.index.resize(cells + 1, 0);
        self.value.resize(cells + 1, 0.0);
        let mut k = 0;
        for row in dense[..cells].chunks_exact(width) {
            for (j, &v) in row.iter().enumerate() {
                self.index[k] = j as u32;
                self.value[k] = v;
                k += usize::from(v > 0.0);
            }
            self.start.push(k);
        }
        self.index.truncate(k);
        self.value.truncate(k);
    }

    /// The transpose of `self` (a `(rows, width)` matrix) as a `(width, rows)` one, into `out`.
    pub fn transpose_into(&self, width: usize, out: &mut SparseBatch) {
        out.start.clear();
        out.start.resize(width + 1, 0);
        for &j in &self.index {
            out.start[j as usize + 1] += 1;
        }
        for j in 0..width {
            out.start[j + 1] += out.start[j];
        }
        out.index.resize(self.index.len(), 0);
        out.value.resize(self.value.len(), 0.0);
        let mut next = out.start[..width].to_vec();
        for r in 0..self.rows() {
            let (index, value) = self.row(r);
            for (&j, &v) in index.iter().zip(value) {
                let slot = &mut next[j as usize];
                out.index[*slot] = r as u32;
                out.value[*slot] = v;
                *slot += 1;
            }
        }
    }
}

/// `out.row(r) += sum over (j, a) in sparse.row(r) of a * dense.row(j)` for every row `r` of
/// `sparse`, terms in `sparse`'s order; `dense` and `out` have `n` columns.
pub fn sparse_times_dense(
    arch: Arch,
    sparse: &SparseBatch,
    dense: &[f32],
    n: usize,
    out: &mut [f32],
) {
    struct Op<'a> {
        sparse: &'a SparseBatch,
        dense: &'a [f32],
        n: usize,
        out: &'a mut [f32],
    }
    impl WithSimd for Op<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            // Accumulators for one row chunk stay in registers: 8 vectors' worth of columns.
            match S::F32_LANES {
                16 => accumulate_rows::<128>(self.sparse, self.dense, self.n, self.out),
                8 => accumulate_rows::<64>(self.sparse, self.dense, self.n, self.out),
                _ => accumulate_rows::<32>(self.sparse, self.dense, self.n, self.out),
            }
        }
    }
    arch.dispatch(Op {
        sparse,
        dense,
        n,
        out,
    });
}

#[inline(always)]
fn accumulate_rows<const CH: usize>(
    sparse: &SparseBatch,
    dense: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let mut start = vec![0.0f32; n];
    for (r, out_row) in out.chunks_exact_mut(n).take(sparse.rows()).enumerate() {
        let (index, value) = sparse.row(r);
        if index.is_empty() {
            continue;
        }
        // Every chunk starts from the row's values before this call, so the last chunk may
        // overlap the one before it (recomputing the same values) instead of falling back to
        // narrower passes over the remainder.
        start.copy_from_slice(out_row);
        if n >= CH {
            accumulate_chunks::<CH>(out_row, &start, index, value, dense, n);
        } else if n >= 32 {
            accumulate_chunks::<32>(out_row, &start, index, value, dense, n);
        } else if n >= 8 {
            accumulate_chunks::<8>(out_row, &start, index, value, dense, n);
        } else {
            accumulate_chunks::<1>(out_row, &start, index, value, dense, n);
        }
    }
}

/// Chunks of `CH` columns at `0, CH, 2 CH, ...` and a last one ending at column `n`.
#[inline(always)]
fn accumulate_chunks<const CH: usize>(
    out: &mut [f32],
    start: &[f32],
    index: &[u32],
    value: &[f32],
    dense: &[f32],
    n: usize,
) {
    let mut c = 0;
    loop {
        let c0 = c.min(n - CH);
        let mut acc: [f32; CH] = start[c0..c0 + CH].try_into().expect("chunk width");
        for (&j, &a) in index.iter().zip(value) {
            let from = j as usize * n + c0;
            let row: &[f32; CH] = dense[from..from + CH].try_into().expect("chunk width");
            for i in 0..CH {
                acc[i] += a * row[i];
            }
        }
        out[c0..c0 + CH].copy_from_slice(&acc);
        c += CH;
        if c >= n {
            break;
        }
    }
}

/// For each nonzero `(r, j)` of `active`: `out[r][j] = scale * (a.row(r) . b.row(j))`, and 0 at
/// every other cell of `out`'s first `active.rows()` rows. `b` is `(width, n)` and `a` has `n`
/// columns, `out` has `width`.
pub fn masked_dot_rows(
    arch: Arch,
    active: &SparseBatch,
    a: &[f32],
    b: &[f32],
    scale: f32,
    out: &mut [f32],
    width: usize,
) {
    let n = b.len() / width;
    simd!(arch, 'a, |
        active: &'a SparseBatch = active;
        a: &'a [f32] = a;
        b: &'a [f32] = b;
        out: &'a mut [f32] = out;
        n: usize = n;
        width: usize = width;
        scale: f32 = scale;
    | -> () {
        for (r, out_row) in out.chunks_exact_mut(width).take(active.rows()).enumerate() {
            out_row.fill(0.0);
            let (index, _) = active.row(r);
            let x = &a[r * n..(r + 1) * n];
            let mut quads = index.chunks_exact(4);
            for q in quads.by_ref() {
                let rows =
                    [q[0], q[1], q[2], q[3]].map(|j| &b[j as usize * n..(j as usize + 1) * n]);
                let dots = dot4(x, rows);
                for (&j, d) in q.iter().zip(dots) {
                    out_row[j as usize] = d * scale;
                }
            }
            for &j in quads.remainder() {
                let y = &b[j as usize * n..(j as usize + 1) * n];
                out_row[j as usize] = dot4(x, [y, y, y, y])[0] * scale;
            }
        }
    })
}

const LANES: usize = 16;

/// `x . y[k]` for four rows `y[k]` of `x`'s length: per row, 16 lane sums over the 16-wide
/// chunks, folded pairwise, then the remaining `len % 16` products in order.
#[inline(always)]
fn dot4(x: &[f32], y: [&[f32]; 4]) -> [f32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) =
        ([0.0f32; LANES], [0.0; LANES], [0.0; LANES], [0.0; LANES]);
    let (xc, xr) = x.as_chunks::<LANES>();
    let [y0, y1, y2, y3] = y.map(|y| y.as_chunks::<LANES>().0);
    for ((((x, y0), y1), y2), y3) in xc.iter().zip(y0).zip(y1).zip(y2).zip(y3) {
        for l in 0..LANES {
            a0[l] += x[l] * y0[l];
            a1[l] += x[l] * y1[l];
            a2[l] += x[l] * y2[l];
            a3[l] += x[l] * y3[l];
        }
    }
    let tail_start = xc.len() * LANES;
    let mut dots = [0.0f32; 4];
    for (k, lanes) in [a0, a1, a2, a3].iter_mut().enumerate() {
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                lanes[l] += lanes[l + width];
            }
        }
        let mut sum = lanes[0];
        for (&a, &b) in xr.iter().zip(&y[k][tail_start..]) {
            sum += a * b;
        }
        dots[k] = sum;
    }
    dots
}

/// `exp(x)` for `x <= 0` in plain f32 arithmetic, so a loop over it vectorises (libm's `expf`
/// is a call per value) and gives the same bits on every instruction set: `2^n p(r)` with
/// `n = round(x / ln 2)`, `r = x - n ln 2` (ln 2 in two parts, so `n ln 2` is exact) and `p` the
/// degree-7 Taylor polynomial of `exp` on `|r| <= ln(2) / 2`. Relative error below 1.1e-7 (under
/// one f32 ulp) on [-87, 0]; below -87 it returns `exp(-87)` (1.6e-38) instead of a subnormal.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23 + 127: adding it rounds to an integer and leaves `n + 127` in the low bits.
    const SHIFT: f32 = 12_583_039.0;
    // ln 2 = LN2_HI + LN2_LO to about 1e-14, LN2_HI with few enough bits that `n * LN2_HI` is
    // exact: 0.693145751953125 and 1.4286068e-6.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
    let x = x.max(-87.0);
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // The exponent field of 2^n is `n + 127`, in 1..=127 here.
    f32::from_bits(t.to_bits() << 23) * p
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Every instruction set this CPU runs, the plain-code fallback first.
    fn archs() -> Vec<Arch> {
        #[allow(unused_mut)]
        let mut all = vec![Arch::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            all.extend(pulp::x86::V3::try_new().map(Arch::V3));
            all.extend(pulp::x86::V4::try_new().map(Arch::V4));
        }
        #[cfg(not(target_arch = "x86_64"))]
        all.push(Arch::new());
        all
    }

    /// A `(rows, width)` matrix with about `density` of its cells positive, the rest zero.
    fn relu_like(rows: usize, width: usize, density: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..rows * width)
            .map(|_| {
                if rng.random_bool(density) {
                    rng.random_range(0.01..2.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn dense(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..rows * cols)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect()
    }

    #[test]
    fn sparse_rows_list_the_positive_cells_and_transpose() {
        let m = [0.0, 1.5, 0.0, 2.0, 0.0, 0.0, 0.5, 0.0, 3.0];
        let mut s = SparseBatch::default();
        s.gather_positive(&m, 3, 3);
        assert_eq!(s.rows(), 3);
        assert_eq!(s.row(0), (&[1u32][..], &[1.5f32][..]));
        assert_eq!(s.row(1), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(s.row(2), (&[0u32, 2][..], &[0.5f32, 3.0][..]));
        let mut t = SparseBatch::default();
        s.transpose_into(3, &mut t);
        assert_eq!(t.rows(), 3);
        assert_eq!(t.row(0), (&[1u32, 2][..], &[2.0f32, 0.5][..]));
        assert_eq!(t.row(1), (&[0u32][..], &[1.5f32][..]));
        assert_eq!(t.row(2), (&[2u32][..], &[3.0f32][..]));
    }

    /// Both kernels against f64 dense products, on shapes with every remainder path (column
    /// counts below, between and above the chunk widths), and bit-identical on every
    /// instruction set.
    #[test]
    fn kernels_match_dense_products_on_every_instruction_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (rows, width, n) in [(5, 7, 3), (9, 33, 131), (64, 40, 735), (3, 16, 16)] {
            let h = relu_like(rows, width, 0.3, &mut rng);
            let w = dense(width, n, &mut rng);
            let bias = dense(1, n, &mut rng);
            let mut active = SparseBatch::default();
            active.gather_positive(&h, rows, width);

            let mut outs = Vec::new();
            for arch in archs() {
                let mut out: Vec<f32> = (0..rows).flat_map(|_| bias.clone()).collect();
                sparse_times_dense(arch, &active, &w, n, &mut out);
                outs.push(out);
            }
            for r in 0..rows {
                for c in 0..n {
                    let expected: f64 = f64::from(bias[c])
                        + (0..width)
                            .map(|j| f64::from(h[r * width + j]) * f64::from(w[j * n + c]))
                            .sum::<f64>();
                    let got = f64::from(outs[0][r * n + c]);
                    assert!(
                        (got - expected).abs() < 1e-4,
                        "({r}, {c}): {got} vs {expected}"
                    );
                }
            }
            assert!(outs.iter().all(|o| o == &outs[0]), "same bits on every ISA");

            // The delta below: (delta @ w^T) * 2 where h is active, 0 elsewhere.
            let delta = dense(rows, n, &mut rng);
            let mut belows = Vec::new();
            for arch in archs() {
                let mut below = vec![f32::NAN; rows * width];
                masked_dot_rows(arch, &active, &delta, &w, 2.0, &mut below, width);
                belows.push(below);
            }
            for r in 0..rows {
                for j in 0..width {
                    let expected = if h[r * width + j] > 0.0 {
                        2.0 * (0..n)
                            .map(|c| f64::from(delta[r * n + c]) * f64::from(w[j * n + c]))
                            .sum::<f64>()
                    } else {
                        0.0
                    };
                    let got = f64::from(belows[0][r * width + j]);
                    assert!(
                        (got - expected).abs() < 1e-4,
                        "({r}, {j}): {got} vs {expected}"
                    );
                }
            }
            assert!(
                belows.iter().all(|o| o == &belows[0]),
                "same bits on every ISA"
            );

            // The weight gradient h^T @ delta through the transpose.
            let mut by_unit = SparseBatch::default();
            active.transpose_into(width, &mut by_unit);
            let mut grads = Vec::new();
            for arch in archs() {
                let mut g = vec![0.0f32; width * n];
                sparse_times_dense(arch, &by_unit, &delta, n, &mut g);
                grads.push(g);
            }
            for j in 0..width {
                for c in 0..n {
                    let expected: f64 = (0..rows)
                        .map(|r| f64::from(h[r * width + j]) * f64::from(delta[r * n + c]))
                        .sum();
                    let got = f64::from(grads[0][j * n + c]);
                    assert!(
                        (got - expected).abs() < 1e-4,
                        "({j}, {c}): {got} vs {expected}"
                    );
                }
            }
            assert!(
                grads.iter().all(|o| o == &grads[0]),
                "same bits on every ISA"
            );
        }
    }

    #[test]
    fn exp_nonpositive_is_within_an_ulp_of_exp() {
        let mut worst = 0.0f64;
        for k in 0..=870_000 {
            let x = -(k as f32) * 1e-4;
            let exact = f64::from(x).exp();
            let rel = (f64::from(exp_nonpositive(x)) - exact).abs() / exact;
            worst = worst.max(rel);
        }
        assert!(worst < 1.2e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 2e-38);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 2e-38);
    }
}
