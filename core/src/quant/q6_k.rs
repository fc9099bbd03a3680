//! Q6_K: 256 weights in sixteen 16-weight sub-blocks, 6-bit codes around 32, each sub-block
//! with a signed 8-bit scale, all scaled by one f16 factor.
//!
//! Block layout, 210 bytes, in two halves `n` of 128 weights (`l < 32` below):
//!
//! - `0..128`: `ql[128]`, the low four bits; half `n` uses bytes `64n..64n + 64`, holding
//!   weight `128n + l` in the low nibble of byte `l`, `+ 32` in the low nibble of byte
//!   `l + 32`, `+ 64` in the high nibble of byte `l` and `+ 96` in the high nibble of byte
//!   `l + 32`;
//! - `128..192`: `qh[64]`, the high two bits; byte `32n + l` holds weight `128n + 32k + l`
//!   in bits `2k..2k + 2`;
//! - `192..208`: `scales[16]`, one i8 per 16 weights;
//! - `208..210`: `d`, the f16 factor.
//!
//! Weight `i` is `(d * sc_{i/16}) * (q_i - 32)`.

use super::float::{read_f16, write_f16};
use super::kquant::{GROUP_MAX_EPS, make_qx_quants, nearest_int};
use crate::dtype::QK_K;

/// Weights per block.
pub const BLOCK_LEN: usize = QK_K;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 210;

/// Decodes one block as ggml's `dequantize_row_q6_K`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[208], block[209]]);
    let (ql, rest) = block.split_at(128);
    let (qh, sc) = rest.split_at(64);
    let halves = ql
        .chunks_exact(64)
        .zip(qh.chunks_exact(32))
        .zip(sc.chunks_exact(8));
    for (((ql, qh), sc), y) in halves.zip(out.chunks_exact_mut(128)) {
        let sc = |k: usize| f32::from(sc[k] as i8);
        for l in 0..32 {
            let is = l / 16;
            let (a, b, h) = (ql[l], ql[l + 32], qh[l]);
            let q1 = i32::from((a & 0x0f) | (h & 3) << 4) - 32;
            let q2 = i32::from((b & 0x0f) | ((h >> 2) & 3) << 4) - 32;
            let q3 = i32::from((a >> 4) | ((h >> 4) & 3) << 4) - 32;
            let q4 = i32::from((b >> 4) | ((h >> 6) & 3) << 4) - 32;
            y[l] = d * sc(is) * q1 as f32;
            y[l + 32] = d * sc(is + 2) * q2 as f32;
            y[l + 64] = d * sc(is + 4) * q3 as f32;
            y[l + 96] = d * sc(is + 6) * q4 as f32;
        }
    }
}

/// Encodes one block as ggml's `quantize_row_q6_K_ref`: a signed scale search per 16
/// weights, the scales quantized to i8 against the largest, then every weight re-coded
/// against the scales as stored.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let mut l = [0i8; BLOCK_LEN];
    let mut sub_scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ((xs, ls), s) in x
        .chunks_exact(16)
        .zip(l.chunks_exact_mut(16))
        .zip(&mut sub_scales)
    {
        *s = make_qx_quants(32, xs, ls);
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = *s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        block.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    block[208..].copy_from_slice(&write_f16(1.0 / iscale));
    let d = read_f16([block[208], block[209]]);
    for (j, (xs, ls)) in x.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
        let sc = nearest_int(iscale * sub_scales[j]).min(127) as i8;
        block[192 + j] = sc as u8;
        let dj = d * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        for (li, &v) in ls.iter_mut().zip(xs) {
            *li = (nearest_int(v / dj).clamp(-32, 31) + 32) as i8;
        }
    }

    let (ql, qh) = block.split_at_mut(128);
    let halves = ql.chunks_exact_mut(64).zip(qh[..64].chunks_exact_mut(32));
    for ((ql, qh), lc) in halves.zip(l.chunks_exact(128)) {
        for i in 0..32 {
            let q = [lc[i], lc[i + 32], lc[i + 64], lc[i + 96]].map(|v| v as u8);
            ql[i] = (q[0] & 0x0f) | (q[2] & 0x0f) << 4;
            ql[i + 32] = (q[1] & 0x0f) | (q[3] & 0x0f) << 4;
            qh[i] = (q[0] >> 4) | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::quant::oracle::{
        amax, any_blocks, bits, check_round_trip, check_row, f16_at, finite_blocks, values,
    };
    use proptest::prelude::*;

    fn oracle(block: &[u8], i: usize) -> f32 {
        let (half, r) = (i / 128, i % 128);
        let (quarter, l) = (r / 32, r % 32);
        let low_byte = 64 * half + l + 32 * (quarter % 2);
        let low = bits(block, 8 * low_byte + 4 * (quarter / 2), 4);
        let high = bits(block, 8 * (128 + 32 * half + l) + 2 * quarter, 2);
        let sc = bits(block, 8 * (192 + i / 16), 8) as u8 as i8;
        (f16_at(block, 8 * 208) * sc as f32) * ((low | high << 4) as i32 - 32) as f32
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[208])) {
            check_row(DType::Q6_K, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q6_K, &row, oracle, true)?;
        }

        #[test]
        fn round_trip_within_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q6_K, &x, |b| amax(b) / 32.0, 1.25)?;
        }
    }

    #[test]
    fn zero_block_encodes_as_zeros() {
        let mut block = [0xffu8; BLOCK_BYTES];
        quantize_block(&[0.0; BLOCK_LEN], &mut block);
        assert!(block.iter().all(|b| *b == 0));
    }
}
