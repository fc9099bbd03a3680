//! Activations quantized for the integer kernels, one token row at a time.
//!
//! A row of `cols` activations becomes `cols` signed bytes plus, per sub-block of the weight
//! format (16 or 32 elements), its scale `d`, the integer sum of its codes `isum`, and that
//! sum scaled, `fsum = d * isum`. The sums carry the weights' zero points and minimums (see
//! [`super::codes`]), so kernels spend nothing per element on them.
//!
//! Row layout (`stride` bytes, a multiple of 64): `q: [i8; cols]`, `d: [f32; n]`,
//! `isum: [i32; n]`, `fsum: [f32; n]` with `n = cols / sub_block`.
//!
//! The scale follows ggml's partner format of the weights, so results agree with llama.cpp
//! to its own rounding: legacy formats pair with Q8_0/Q8_1 (a scale per 32, stored as f16),
//! K-quants with Q8_K (one f32 scale per 256); both round half to even. The exact formulas
//! matter: a quantized embedding row often puts activations exactly on rounding ties.

use half::f16;

use super::codes::{CodeFormat, Scales};
use crate::dtype::QK_K;
use crate::numerics::q8_1_sum;

/// How activation scales are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActScale {
    /// ggml Q8_0: per 32 elements, `d = f16(max|x| / 127)`, `q = round_even(x * 127 / max|x|)`.
    PerBlock32,
    /// ggml Q8_K: per 256 elements, `d = max / -127` of the signed value of largest
    /// magnitude, `q = min(127, round_even(x * -127 / max))`.
    PerBlock256,
}

/// Where the parts of a quantized activation row lie.
///
/// A row is [`stride`](Self::stride) bytes: `q: [i8; cols]`, then `d: [f32; n]`,
/// `isum: [i32; n]` and `fsum: [f32; n]` (little-endian, `n` = [`n_sub_blocks`]), then
/// padding. Entry `b` of each array belongs to sub-block `b`: its scale, the sum of its
/// codes, and that sum times the scale as ggml stores it. The sums carry the weights' zero
/// points and minimums, so kernels spend nothing per element on them.
///
/// [`n_sub_blocks`]: Self::n_sub_blocks
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActLayout {
    /// Activations per row (elements): a multiple of the weight format's block.
    pub cols: usize,
    /// Elements per sum: the weight format's sub-block.
    pub sub_block: usize,
    /// How the scales are chosen: as ggml's partner format of the weights does.
    pub scale: ActScale,
}

impl ActLayout {
    /// The layout that weights of `format` multiply, for rows of `cols` (a multiple of the
    /// format's block).
    pub fn for_codes(format: CodeFormat, cols: usize) -> ActLayout {
        let scale = match format.scales {
            Scales::PerSubBlock => ActScale::PerBlock32,
            Scales::SuperBlock(_) => ActScale::PerBlock256,
        };
        ActLayout {
            cols,
            sub_block: format.sub_block,
            scale,
        }
    }

    /// Sub-blocks per row (`cols / sub_block`): the length of `d`, `isum` and `fsum`.
    pub fn n_sub_blocks(&self) -> usize {
        self.cols / self.sub_block
    }

    /// Byte offset of `d` (f32 scales) within a row: right after the `cols` codes.
    pub fn d_offset(&self) -> usize {
        self.cols
    }

    /// Byte offset of `isum` (i32 code sums) within a row: right after `d`.
    pub fn isum_offset(&self) -> usize {
        self.cols + 4 * self.n_sub_blocks()
    }

    /// Byte offset of `fsum` (f32 scaled sums) within a row: right after `isum`.
    pub fn fsum_offset(&self) -> usize {
        self.cols + 8 * self.n_sub_blocks()
    }

    /// Bytes between consecutive rows: a multiple of 64, so rows start on cache lines.
    pub fn stride(&self) -> usize {
        (self.cols + 12 * self.n_sub_blocks()).next_multiple_of(64)
    }
}

/// One quantized row, read-only: what kernels see.
#[derive(Clone, Copy)]
pub struct ActRow<'a> {
    /// Where the parts of `bytes` lie.
    pub layout: ActLayout,
    /// The row as [`quantize_row`] wrote it: `layout.stride()` bytes.
    pub bytes: &'a [u8],
}

impl<'a> ActRow<'a> {
    /// The `cols` codes, each an `i8` kept as its byte.
    pub fn q(&self) -> &'a [u8] {
        &self.bytes[..self.layout.cols]
    }

    /// Code `i` as a signed value.
    pub fn code(&self, i: usize) -> i8 {
        self.bytes[i] as i8
    }

    /// Scale of sub-block `b`: that of the 32- or 256-element group holding it, so that
    /// `d(b) * code(i)` is activation `i` as rounded, for `i` in sub-block `b`.
    pub fn d(&self, b: usize) -> f32 {
        f32::from_le_bytes(self.word(self.layout.d_offset(), b))
    }

    /// Sum of the codes of sub-block `b`: what a weight zero point multiplies.
    pub fn isum(&self, b: usize) -> i32 {
        i32::from_le_bytes(self.word(self.layout.isum_offset(), b))
    }

    /// `d * isum` of sub-block `b` as ggml's partner format stores it (Q8_1's f16 product
    /// with the unrounded scale, Q8_K's f32 one): what a weight minimum multiplies.
    pub fn fsum(&self, b: usize) -> f32 {
        f32::from_le_bytes(self.word(self.layout.fsum_offset(), b))
    }

    fn word(&self, base: usize, b: usize) -> [u8; 4] {
        let at = base + 4 * b;
        [
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ]
    }
}

/// Quantizes `x` (`layout.cols` floats) into `row` (at least `layout.stride()` bytes): the
/// scalar definition every SIMD quantizer must reproduce.
pub fn quantize_row(layout: ActLayout, x: &[f32], row: &mut [u8]) {
    let cols = layout.cols;
    let (q, meta) = row[..layout.stride()].split_at_mut(cols);
    let group = match layout.scale {
        ActScale::PerBlock32 => 32,
        ActScale::PerBlock256 => QK_K,
    };
    let per_group = group / layout.sub_block;
    let n = layout.n_sub_blocks();
    let mut put = |array: usize, b: usize, v: [u8; 4]| {
        let at = array * 4 * n + 4 * b;
        meta[at..at + 4].copy_from_slice(&v);
    };
    for (g, (xs, qs)) in x
        .chunks_exact(group)
        .zip(q.chunks_exact_mut(group))
        .enumerate()
    {
        let d = match layout.scale {
            ActScale::PerBlock32 => quantize_q8_0(xs, qs),
            ActScale::PerBlock256 => {
                let d = quantize_q8_k(xs, qs);
                (d, d)
            }
        };
        for (s, sub) in qs.chunks_exact(layout.sub_block).enumerate() {
            let b = g * per_group + s;
            let isum: i32 = sub.iter().map(|&c| i32::from(c as i8)).sum();
            put(0, b, d.0.to_le_bytes());
            put(1, b, isum.to_le_bytes());
            put(2, b, scaled_sum(layout.scale, d.1, isum).to_le_bytes());
        }
    }
}

/// ggml's Q8_0 activation quantizer (`quantize_row_q8_0` as its SIMD paths and the
/// repacked kernels compute it) for one block: `q = round_even(x * 127 / amax)`. Returns the
/// scale as stored (f16) and unrounded.
fn quantize_q8_0(x: &[f32], q: &mut [u8]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(libm::fabsf(*v)));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = libm::rintf(v * id) as i8 as u8;
    }
    (f16::from_f32(d).to_f32(), d)
}

/// `fsum` as ggml's partner formats store it: Q8_1's `s = f16(d * Σq)` with the unrounded
/// scale (see [`q8_1_sum`]), or Q8_K's block sums times its f32 scale.
fn scaled_sum(scale: ActScale, d: f32, isum: i32) -> f32 {
    match scale {
        ActScale::PerBlock32 => q8_1_sum(d * isum as f32),
        ActScale::PerBlock256 => d * isum as f32,
    }
}

/// ggml `quantize_row_q8_K_ref` for one block; returns the scale.
fn quantize_q8_k(x: &[f32], q: &mut [u8]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        if libm::fabsf(v) > amax {
            amax = libm::fabsf(v);
            max = v;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (q, &v) in q.iter_mut().zip(x) {
        *q = libm::rintf(iscale * v).min(127.0) as i8 as u8;
    }
    1.0 / iscale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::numerics::{ActivationFormat, round_activations};

    /// Codes times scales are exactly the reference backend's rounded activations.
    fn matches_reference(dtype: DType) {
        let format = CodeFormat::of(dtype).unwrap();
        let cols = 512;
        let layout = ActLayout::for_codes(format, cols);
        let x: alloc::vec::Vec<f32> = (0..cols)
            .map(|i| libm::sinf(i as f32 * 0.7) * (1.0 + (i % 37) as f32))
            .collect();
        let mut row = alloc::vec![0u8; layout.stride()];
        quantize_row(layout, &x, &mut row);
        let row = ActRow {
            layout,
            bytes: &row,
        };
        let mut want = x.clone();
        round_activations(ActivationFormat::for_weights(dtype), &mut want);
        for (i, &want) in want.iter().enumerate() {
            let b = i / layout.sub_block;
            assert_eq!(
                row.d(b) * f32::from(row.code(i)),
                want,
                "{dtype} element {i}"
            );
        }
        for b in 0..layout.n_sub_blocks() {
            let sum: i32 = (0..layout.sub_block)
                .map(|k| i32::from(row.code(b * layout.sub_block + k)))
                .sum();
            assert_eq!(row.isum(b), sum);
            let fsum = match layout.scale {
                ActScale::PerBlock32 => {
                    // Q8_1: the unrounded scale of the 32-block times the sum, as f16.
                    let block = &x[b * layout.sub_block / 32 * 32..][..32];
                    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                    f16::from_f32(amax / 127.0 * sum as f32).to_f32()
                }
                ActScale::PerBlock256 => row.d(b) * sum as f32,
            };
            assert_eq!(row.fsum(b), fsum, "{dtype} block {b}");
        }
    }

    #[test]
    fn legacy_rows_round_like_q8_0() {
        matches_reference(DType::Q4_0);
        matches_reference(DType::Q8_0);
    }

    #[test]
    fn k_quant_rows_round_like_q8_k() {
        matches_reference(DType::Q4_K);
        matches_reference(DType::Q6_K);
    }

    #[test]
    fn rows_are_cache_line_aligned_and_fit_the_plan_scratch() {
        for dtype in [DType::Q4_0, DType::Q6_K] {
            for cols in [256, 896, 4864] {
                let l = ActLayout::for_codes(CodeFormat::of(dtype).unwrap(), cols);
                assert_eq!(l.stride() % 64, 0);
                assert!(l.stride() <= 4 * (cols + 16));
            }
        }
    }
}
