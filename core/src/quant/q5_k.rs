//! Q5_K: 256 weights in eight 32-weight sub-blocks, 5-bit codes, each sub-block with its own
//! 6-bit scale and 6-bit minimum, themselves scaled by two f16 super-block factors. Q4_K
//! with a fifth bit per weight.
//!
//! Block layout, 176 bytes:
//!
//! - `0..2`: `d`, the f16 factor of the sub-block scales;
//! - `2..4`: `dmin`, the f16 factor of the sub-block minimums;
//! - `4..16`: `scales[12]`, eight 6-bit scales and mins packed exactly as in Q4_K;
//! - `16..48`: `qh[32]`; bit `k` of byte `l` is the fifth bit of weight `32k + l`;
//! - `48..176`: `qs[128]`, the low four bits, grouped as Q4_K's `qs`.
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
pub const BLOCK_BYTES: usize = 176;

/// Decodes one block as ggml's `dequantize_row_q5_K`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    let min = read_f16([block[2], block[3]]);
    let mut s = [0u8; K_SCALE_BYTES];
    s.copy_from_slice(&block[4..16]);
    let qh = &block[16..48];
    for (c, (ql, y)) in block[48..]
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(64))
        .enumerate()
    {
        let (sc1, m1) = scale_min_k4(2 * c, &s);
        let (sc2, m2) = scale_min_k4(2 * c + 1, &s);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
        let (lo, hi) = y.split_at_mut(32);
        for (((&q, &h), y0), y1) in ql.iter().zip(qh).zip(lo).zip(hi) {
            let h0 = if h & u1 != 0 { 16 } else { 0 };
            let h1 = if h & u2 != 0 { 16 } else { 0 };
            *y0 = d1 * f32::from((q & 0x0f) + h0) - m1;
            *y1 = d2 * f32::from((q >> 4) + h1) - m2;
        }
    }
}

/// Encodes one block as ggml's `quantize_row_q5_K_ref`: as Q4_K, with codes `0..=31` and
/// a narrower scale search.
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
        let (scale, min) = make_qkx2_quants(31, xs, &weights, ls, &mut l_aux, -0.5, 0.1, 15);
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
            *li = nearest_int((v + dm) / dj).clamp(0, 31) as u8;
        }
    }

    let (head, ql) = block.split_at_mut(48);
    let qh = &mut head[16..48];
    qh.fill(0);
    for (c, (q, lc)) in ql.chunks_exact_mut(32).zip(l.chunks_exact(64)).enumerate() {
        let (m1, m2) = (1u8 << (2 * c), 2u8 << (2 * c));
        let (lo, hi) = lc.split_at(32);
        for (((q, h), &a), &b) in q.iter_mut().zip(qh.iter_mut()).zip(lo).zip(hi) {
            if a > 15 {
                *h |= m1;
            }
            if b > 15 {
                *h |= m2;
            }
            *q = (a & 0x0f) | (b & 0x0f) << 4;
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
        let low = bits(
            block,
            384 + 8 * (32 * group + within % 32) + 4 * (within / 32),
            4,
        );
        let high = bits(block, 128 + 8 * (i % 32) + i / 32, 1);
        let (sc, m) = scale_min(block, i / 32);
        (f16_at(block, 0) * sc as f32) * (low | high << 4) as f32 - f16_at(block, 16) * m as f32
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0, 2])) {
            check_row(DType::Q5_K, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q5_K, &row, oracle, true)?;
        }

        #[test]
        fn round_trip_within_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q5_K, &x, |b| span(b) / 31.0, 1.25)?;
        }
    }
}
