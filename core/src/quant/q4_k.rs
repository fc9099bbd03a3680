//! Q4_K: 256 weights in eight 32-weight sub-blocks, 4-bit codes, each sub-block with its own
//! 6-bit scale and 6-bit minimum, themselves scaled by two f16 super-block factors.
//!
//! Block layout, 144 bytes:
//!
//! - `0..2`: `d`, the f16 factor of the sub-block scales;
//! - `2..4`: `dmin`, the f16 factor of the sub-block minimums;
//! - `4..16`: `scales[12]`, eight 6-bit scales `sc_j` and eight 6-bit mins `m_j`: for
//!   `j < 4`, `sc_j` and `m_j` are the low six bits of bytes `j` and `j + 4`; for `j >= 4`,
//!   byte `j + 4` holds the low four bits of `sc_j` (low nibble) and `m_j` (high nibble),
//!   and the top two bits of bytes `j - 4` and `j` hold their high two bits;
//! - `16..144`: `qs[128]`, four 32-byte groups; group `c` holds weight `64c + l` in the low
//!   nibble of its byte `l` and weight `64c + 32 + l` in the high nibble.
//!
//! Weight `i` of sub-block `j` is `(d * sc_j) * q_i - (dmin * m_j)`: both products first,
//! then a multiply and a subtract (not fused).

use super::float::{read_f16, write_f16};
use super::kquant::{
    K_SCALE_BYTES, make_qkx2_quants, nearest_int, pack_scale_min_k4, scale_min_k4,
};
use crate::dtype::QK_K;

/// Weights per block.
pub const BLOCK_LEN: usize = QK_K;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 144;

fn scales(block: &[u8; BLOCK_BYTES]) -> [u8; K_SCALE_BYTES] {
    let mut s = [0u8; K_SCALE_BYTES];
    s.copy_from_slice(&block[4..16]);
    s
}

/// Decodes one block as ggml's `dequantize_row_q4_K`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    let min = read_f16([block[2], block[3]]);
    let s = scales(block);
    for (c, (q, y)) in block[16..]
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min_k4(2 * c, &s);
        let (sc2, m2) = scale_min_k4(2 * c + 1, &s);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (lo, hi) = y.split_at_mut(32);
        for ((&q, y0), y1) in q.iter().zip(lo).zip(hi) {
            *y0 = d1 * f32::from(q & 0x0f) - m1;
            *y1 = d2 * f32::from(q >> 4) - m2;
        }
    }
}

/// Encodes one block as ggml's `quantize_row_q4_K_ref`: a weighted search for each
/// sub-block's scale and minimum, those quantized to 6 bits, then every weight re-coded
/// against the scales as stored.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let mut l = [0u8; BLOCK_LEN];
    let mut l_aux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let (mut sub_scales, mut sub_mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let sum_x2 = xs.iter().fold(0.0f32, |s, v| s + v * v);
        let av_x = libm::sqrtf(sum_x2 / 32.0);
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (scale, min) = make_qkx2_quants(15, xs, &weights, ls, &mut l_aux, -1.0, 0.1, 20);
        sub_scales[j] = scale;
        sub_mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let ls = sub_scales.map(|v| (nearest_int(inv_scale * v) as u8).min(63));
    let lm = sub_mins.map(|v| (nearest_int(inv_min * v) as u8).min(63));
    let mut s = [0u8; K_SCALE_BYTES];
    pack_scale_min_k4(&ls, &lm, &mut s);
    block[4..16].copy_from_slice(&s);
    block[..2].copy_from_slice(&write_f16(max_scale / 63.0));
    block[2..4].copy_from_slice(&write_f16(max_min / 63.0));

    let d = read_f16([block[0], block[1]]);
    let dmin = read_f16([block[2], block[3]]);
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = scale_min_k4(j, &s);
        let dj = d * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for (li, &v) in ls.iter_mut().zip(xs) {
            *li = nearest_int((v + dm) / dj).clamp(0, 15) as u8;
        }
    }
    for (q, lc) in block[16..].chunks_exact_mut(32).zip(l.chunks_exact(64)) {
        let (lo, hi) = lc.split_at(32);
        for ((q, &a), &b) in q.iter_mut().zip(lo).zip(hi) {
            *q = a | b << 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::quant::oracle::{
        any_blocks, bits, check_round_trip, check_row, f16_at, finite_blocks, span, values,
    };
    use proptest::prelude::*;

    /// The 6-bit scale and min of sub-block `j`, assembled from their bit positions.
    fn scale_min(block: &[u8], j: usize) -> (u32, u32) {
        let byte = |k: usize| 32 + 8 * k; // bit index of scales[k]
        if j < 4 {
            (bits(block, byte(j), 6), bits(block, byte(j + 4), 6))
        } else {
            let sc = bits(block, byte(j + 4), 4) | bits(block, byte(j - 4) + 6, 2) << 4;
            let m = bits(block, byte(j + 4) + 4, 4) | bits(block, byte(j) + 6, 2) << 4;
            (sc, m)
        }
    }

    fn oracle(block: &[u8], i: usize) -> f32 {
        let (group, within) = (i / 64, i % 64);
        let q = bits(
            block,
            128 + 8 * (32 * group + within % 32) + 4 * (within / 32),
            4,
        );
        let (sc, m) = scale_min(block, i / 32);
        (f16_at(block, 0) * sc as f32) * q as f32 - f16_at(block, 16) * m as f32
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0, 2])) {
            check_row(DType::Q4_K, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q4_K, &row, oracle, true)?;
        }

        /// Within one step of the coarsest sub-block: the 6-bit scales and mins can push a
        /// weight past the last code of its sub-block, but never by more than that.
        #[test]
        fn round_trip_within_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q4_K, &x, |b| span(b) / 15.0, 1.25)?;
        }
    }

    #[test]
    fn zero_block_round_trips_to_zero() {
        let mut block = [0xffu8; BLOCK_BYTES];
        quantize_block(&[0.0; BLOCK_LEN], &mut block);
        let mut out = [1.0f32; BLOCK_LEN];
        dequantize_block(&block, &mut out);
        assert!(out.iter().all(|v| *v == 0.0));
    }
}
