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
//! lies on a grid where the encoder finds it again from the decoded row (see [`row_scale`]).

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

/// The scale for a row whose largest magnitude is `max`: `max / levels` rounded to the nearest
/// bfloat16 (an `f32` whose low 16 bits are zero). On that grid `levels * s` and `k * s` are
/// exact, so re-encoding a decoded row finds the same scale and the same codes (byte-identical
/// artifacts across save/load cycles), and the zero low halves cost next to nothing once an
/// artifact's deflated meta block holds them. The rounding moves a row's step by at most 2^-8
/// of itself, which still sends the row's largest weight to the largest code (8 bits at most:
/// `127 * 2^-8 < 0.5`).
pub fn row_scale(max: f32, bits: u8) -> f32 {
    if max == 0.0 || !max.is_finite() {
        return 0.0;
    }
    let l = levels(bits);
    let x = (max / l).to_bits();
    let nearest = f32::from_bits(x.wrapping_add(0x7fff + ((x >> 16) & 1)) & 0xffff_0000);
    if (nearest * l).is_finite() {
        nearest
    } else {
        // Rounding up would put the row's largest weight past `f32::MAX`.
        f32::from_bits(x & 0xffff_0000)
    }
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
    let mut unpacker = Unpacker::new(rows, cols, bits, scales.to_vec())?;
    if packed.len() != unpacker.remaining() {
        return None;
    }
    unpacker.feed(packed);
    unpacker.finish()
}

/// The bytes [`encode`] packs `rows x cols` codes of `bits` into; `None` on overflow.
pub fn packed_len(rows: usize, cols: usize, bits: u8) -> Option<usize> {
    Some(
        rows.checked_mul(cols)?
            .checked_mul(bits as usize)?
            .div_ceil(8),
    )
}

/// A layer's weights kept as the artifact stores them, one byte per weight instead of four:
/// weight `(r, c)` is `(codes[r * cols + c] - levels) * scales[r]`, the very `f32` that
/// [`decode`] computes for it (`code - levels` is a small integer, exact in `f32`). A served model's first layer (one row per vocabulary entry, most
/// of its weights) stays in this form: a question reads only the rows of its features.
#[derive(Clone, Debug, PartialEq)]
pub struct CodedRows {
    cols: usize,
    /// The largest code magnitude of the layer's width: codes are offset by it.
    levels: f32,
    scales: Vec<f32>,
    codes: Vec<u8>,
}

impl CodedRows {
    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Adds row `r`'s weights to `out` (`cols` long), as `out += row` does with the decoded
    /// weights: the same `f32` operations, so the same bits.
    #[inline]
    pub fn add_row(&self, r: usize, out: &mut [f32]) {
        let scale = self.scales[r];
        let codes = &self.codes[r * self.cols..(r + 1) * self.cols];
        // Arithmetic rather than a table lookup, so that the loop vectorises.
        for (o, &c) in out.iter_mut().zip(codes) {
            *o += (f32::from(c) - self.levels) * scale;
        }
    }

    /// Row `r`'s weights written into `out` (cleared first).
    pub fn row_into(&self, r: usize, out: &mut Vec<f32>) {
        let scale = self.scales[r];
        out.clear();
        out.extend(
            self.codes[r * self.cols..(r + 1) * self.cols]
                .iter()
                .map(|&c| (f32::from(c) - self.levels) * scale),
        );
    }

    /// Every weight, `(rows, cols)`: what [`decode`] gives for the same codes.
    pub fn to_array(&self) -> Array2<f32> {
        let mut out = Vec::with_capacity(self.codes.len());
        let mut row = Vec::with_capacity(self.cols);
        for r in 0..self.rows() {
            self.row_into(r, &mut row);
            out.extend_from_slice(&row);
        }
        Array2::from_shape_vec((self.rows(), self.cols), out).expect("rows x cols weights")
    }
}

/// What an [`Unpacker`] fills: weights, or the codes themselves ([`CodedRows`]).
#[derive(Debug)]
enum Out {
    Weights(Vec<f32>),
    Codes(Vec<u8>),
}

/// [`decode`] for bytes that arrive in pieces: each piece is turned into weights as it comes,
/// so a layer is ready as soon as its last byte is in.
///
/// Every 8 codes fill exactly `bits` bytes, so whole groups are unpacked with one 64-bit load
/// and constant shifts (one copy of the loop per width); only a group split between two pieces
/// waits in `pending`.
#[derive(Debug)]
pub struct Unpacker {
    cols: usize,
    bits: u8,
    scales: Vec<f32>,
    /// `levels[code]`: the signed multiple of the row's scale a code stands for (codes are at
    /// most 8 bits, so indexing by a `u8` needs no bounds check).
    levels: [f32; 256],
    out: Out,
    /// Codes still to come.
    left: usize,
    /// Bytes still to come.
    remaining: usize,
    pending: [u8; 8],
    npending: usize,
    /// Row and column of the next code.
    row: usize,
    col: usize,
    /// Set when the padding bits after the last code were not zero: not an encoder's output.
    bad_padding: bool,
}

impl Unpacker {
    /// `None` when the parts cannot describe `rows x cols` weights of `bits`.
    pub fn new(rows: usize, cols: usize, bits: u8, scales: Vec<f32>) -> Option<Self> {
        Self::with_output(rows, cols, bits, scales, false)
    }

    /// An unpacker that keeps the codes ([`Unpacker::finish_coded`]) instead of computing
    /// weights.
    pub fn keeping_codes(rows: usize, cols: usize, bits: u8, scales: Vec<f32>) -> Option<Self> {
        Self::with_output(rows, cols, bits, scales, true)
    }

    fn with_output(
        rows: usize,
        cols: usize,
        bits: u8,
        scales: Vec<f32>,
        codes: bool,
    ) -> Option<Self> {
        if !(2..=8).contains(&bits) || scales.len() != rows {
            return None;
        }
        let n = rows.checked_mul(cols)?;
        let remaining = packed_len(rows, cols, bits)?;
        let l = levels(bits);
        let mut table = [0f32; 256];
        for (c, v) in table.iter_mut().enumerate().take(1 << bits) {
            *v = c as f32 - l;
        }
        Some(Unpacker {
            cols,
            bits,
            scales,
            levels: table,
            // Filled as bytes arrive; reserved up front so the weights are one allocation.
            out: if codes {
                Out::Codes(Vec::with_capacity(n))
            } else {
                Out::Weights(Vec::with_capacity(n))
            },
            left: n,
            remaining,
            pending: [0; 8],
            npending: 0,
            row: 0,
            col: 0,
            bad_padding: false,
        })
    }

    /// Bytes this layer still needs.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Unpacks the start of `bytes`, at most [`Unpacker::remaining`] of them; returns how many
    /// it took.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let take = bytes.len().min(self.remaining);
        let mut bytes = &bytes[..take];
        self.remaining -= take;
        let group = self.bits as usize;
        if self.npending > 0 {
            let fill = (group - self.npending).min(bytes.len());
            self.pending[self.npending..self.npending + fill].copy_from_slice(&bytes[..fill]);
            self.npending += fill;
            bytes = &bytes[fill..];
            if self.npending == group {
                let word = u64::from_le_bytes(self.pending);
                self.pending = [0; 8];
                self.npending = 0;
                self.emit(word);
            } else {
                // The piece ended inside the pending group.
                self.emit_last_partial();
                return take;
            }
        }
        let rest = match self.bits {
            2 => self.groups::<2>(bytes),
            3 => self.groups::<3>(bytes),
            4 => self.groups::<4>(bytes),
            5 => self.groups::<5>(bytes),
            6 => self.groups::<6>(bytes),
            7 => self.groups::<7>(bytes),
            _ => self.groups::<8>(bytes),
        };
        self.pending[..rest.len()].copy_from_slice(rest);
        self.npending = rest.len();
        self.emit_last_partial();
        take
    }

    /// Once every byte is in, the layer's last group, when it is shorter than the others: its
    /// codes, then zero padding.
    fn emit_last_partial(&mut self) {
        if self.remaining == 0 && self.npending > 0 {
            let word = u64::from_le_bytes(self.pending);
            self.npending = 0;
            self.emit(word);
        }
    }

    /// Unpacks the whole groups of `bytes` (`BITS` bytes each); returns the bytes after them.
    fn groups<'b, const BITS: usize>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let mask = (1u64 << BITS) - 1;
        let mut groups = bytes.chunks_exact(BITS);
        while groups.len() > 0 {
            // Groups that lie wholly in the current row, all at its scale.
            let n = ((self.cols - self.col) / 8)
                .min(groups.len())
                .min(self.left / 8);
            if n == 0 {
                // A group across two rows, or the layer's last.
                let g = groups.next().expect("a group is left");
                self.emit(word(g));
                continue;
            }
            let scale = self.scales[self.row];
            let levels = &self.levels;
            match &mut self.out {
                Out::Weights(out) => {
                    for g in groups.by_ref().take(n) {
                        let w = word(g);
                        out.extend(
                            (0..8)
                                .map(|k| levels[((w >> (k * BITS)) & mask) as u8 as usize] * scale),
                        );
                    }
                }
                Out::Codes(out) => {
                    for g in groups.by_ref().take(n) {
                        let w = word(g);
                        out.extend((0..8).map(|k| ((w >> (k * BITS)) & mask) as u8));
                    }
                }
            }
            self.left -= 8 * n;
            self.col += 8 * n;
            if self.col == self.cols {
                self.row += 1;
                self.col = 0;
            }
        }
        groups.remainder()
    }

    /// Up to 8 codes from one group (fewer at the end of the layer), row by row.
    fn emit(&mut self, word: u64) {
        let bits = u32::from(self.bits);
        let mask = (1u64 << bits) - 1;
        let count = self.left.min(8);
        if count < 8 && word >> (count as u32 * bits) != 0 {
            self.bad_padding = true;
        }
        self.left -= count;
        for k in 0..count {
            if self.col == self.cols {
                self.row += 1;
                self.col = 0;
            }
            let code = ((word >> (k as u32 * bits)) & mask) as u8;
            match &mut self.out {
                Out::Weights(out) => out.push(self.levels[code as usize] * self.scales[self.row]),
                Out::Codes(out) => out.push(code),
            }
            self.col += 1;
        }
        if self.col == self.cols {
            self.row += 1;
            self.col = 0;
        }
    }

    /// The weights, once every byte came in; `None` before that or when the padding was not
    /// zero.
    pub fn finish(self) -> Option<Array2<f32>> {
        if !self.complete() {
            return None;
        }
        match self.out {
            Out::Weights(out) => Array2::from_shape_vec((self.scales.len(), self.cols), out).ok(),
            Out::Codes(codes) => Some(
                CodedRows {
                    cols: self.cols,
                    levels: levels(self.bits),
                    scales: self.scales,
                    codes,
                }
                .to_array(),
            ),
        }
    }

    /// The codes of an unpacker made by [`Unpacker::keeping_codes`], once every byte came in;
    /// `None` before that, when the padding was not zero, or for one made by [`Unpacker::new`].
    pub fn finish_coded(self) -> Option<CodedRows> {
        if !self.complete() {
            return None;
        }
        match self.out {
            Out::Codes(codes) => Some(CodedRows {
                cols: self.cols,
                levels: levels(self.bits),
                scales: self.scales,
                codes,
            }),
            Out::Weights(_) => None,
        }
    }

    fn complete(&self) -> bool {
        self.remaining == 0 && self.left == 0 && !self.bad_padding
    }
}

/// A group's bytes (at most 8) as one little-endian word.
#[inline]
fn word(group: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..group.len()].copy_from_slice(group);
    u64::from_le_bytes(w)
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
            // Snapping moves each weight by at most half a step of its row (the step itself
            // rounded to a bfloat16: within 2^-8 of `max / levels`).
            for (o, s) in original.rows().into_iter().zip(snapped.rows()) {
                let step = row_max(o.iter()) / levels(bits);
                for (a, b) in o.iter().zip(s.iter()) {
                    prop_assert!((a - b).abs() <= step * 0.502 + 1e-6, "{a} -> {b}");
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
    fn scales_are_bfloat16_values_even_at_the_ends_of_the_range() {
        for max in [1e-30, 0.37, 1.0, 3.3e5, f32::MAX] {
            for bits in [FIRST_LAYER_BITS, DEEP_LAYER_BITS] {
                let s = row_scale(max, bits);
                assert!(s.is_finite() && s > 0.0, "{max} {bits}: {s}");
                assert_eq!(s.to_bits() & 0xffff, 0, "{max} {bits}: {s}");
                // Nearest: within half a bfloat16 step; truncated at the top: within one.
                let ulps = if max == f32::MAX { 128.0 } else { 256.0 };
                assert!(
                    (s - max / levels(bits)).abs() <= s / ulps,
                    "{max} {bits}: {s}"
                );
                // The row's largest weight decodes to `levels * s`, which gives `s` back.
                assert_eq!(row_scale(levels(bits) * s, bits), s);
            }
        }
    }

    proptest! {
        /// Bytes fed in any pieces unpack to what unpacking them at once gives.
        #[test]
        fn unpacking_in_pieces_matches_unpacking_at_once(
            rows in 1usize..5,
            cols in 1usize..21,
            bits in 2u8..=8,
            cuts in prop::collection::vec(0usize..64, 0..6),
        ) {
            let w = Array2::from_shape_fn((rows, cols), |(r, c)| ((r * 31 + c * 17) % 23) as f32 - 11.0);
            let (scales, packed) = encode(&w, bits);
            let whole = decode(rows, cols, bits, &scales, &packed).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (packed.len() + 1)).collect();
            cuts.push(0);
            cuts.push(packed.len());
            cuts.sort_unstable();
            let mut u = Unpacker::new(rows, cols, bits, scales.clone()).unwrap();
            let mut c = Unpacker::keeping_codes(rows, cols, bits, scales.clone()).unwrap();
            for piece in cuts.windows(2) {
                prop_assert_eq!(u.feed(&packed[piece[0]..piece[1]]), piece[1] - piece[0]);
                prop_assert_eq!(c.feed(&packed[piece[0]..piece[1]]), piece[1] - piece[0]);
            }
            prop_assert_eq!(u.finish().unwrap(), whole.clone());
            // Kept as codes, the rows read back as the very weights, and adding one is `+=`.
            let coded = c.finish_coded().unwrap();
            prop_assert_eq!(coded.to_array(), whole.clone());
            let mut row = Vec::new();
            for r in 0..rows {
                coded.row_into(r, &mut row);
                prop_assert_eq!(row.clone(), whole.row(r).to_vec());
                let mut sum = ndarray::Array1::from_elem(cols, 0.1f32);
                let mut by_codes = sum.to_vec();
                sum += &whole.row(r);
                coded.add_row(r, &mut by_codes);
                prop_assert_eq!(by_codes, sum.to_vec());
            }
        }
    }

    #[test]
    fn only_a_code_keeping_unpacker_gives_codes() {
        let w = Array2::from_shape_vec((2, 3), vec![1.0, -1.0, 0.5, 0.0, 0.25, 0.0]).unwrap();
        let (scales, packed) = encode(&w, 5);
        let mut u = Unpacker::new(2, 3, 5, scales.clone()).unwrap();
        u.feed(&packed);
        assert!(u.finish_coded().is_none());
        let mut c = Unpacker::keeping_codes(2, 3, 5, scales).unwrap();
        c.feed(&packed[..1]);
        assert_eq!(c.remaining(), packed.len() - 1);
        c.feed(&packed[1..]);
        assert_eq!(
            c.finish().unwrap(),
            decode(2, 3, 5, &encode(&w, 5).0, &packed).unwrap()
        );
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
