//! Q4_1: 32 weights as 4-bit codes times an f16 scale plus an f16 offset; asymmetric 4-bit.
//!
//! Block layout, 20 bytes:
//!
//! - `0..2`: `d`, the f16 scale;
//! - `2..4`: `m`, the f16 offset (the block minimum);
//! - `4..20`: `qs[16]`; byte `i` holds weight `i` in its low nibble and weight `i + 16` in
//!   its high nibble.
//!
//! Weight `i` is `q_i as f32 * d + m`, a multiply then an add (not fused).

use super::float::{read_f16, write_f16};

/// Weights per block.
pub const BLOCK_LEN: usize = 32;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 20;

/// Decodes one block as ggml's `dequantize_row_q4_1`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    let m = read_f16([block[2], block[3]]);
    let (lo, hi) = out.split_at_mut(BLOCK_LEN / 2);
    for ((&q, y0), y1) in block[4..].iter().zip(lo).zip(hi) {
        *y0 = f32::from(q & 0x0f) * d + m;
        *y1 = f32::from(q >> 4) * d + m;
    }
}

/// Encodes one block as ggml's `quantize_row_q4_1_ref`: codes 0 and 15 span the block's
/// minimum and maximum, the rest round half up.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    block[..2].copy_from_slice(&write_f16(d));
    block[2..4].copy_from_slice(&write_f16(min));
    let (lo, hi) = x.split_at(BLOCK_LEN / 2);
    for ((q, &v0), &v1) in block[4..].iter_mut().zip(lo).zip(hi) {
        let q0 = (((v0 - min) * id + 0.5) as i8).min(15) as u8;
        let q1 = (((v1 - min) * id + 0.5) as i8).min(15) as u8;
        *q = q0 | q1 << 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::quant::oracle::{
        any_blocks, bits, check_round_trip, check_row, f16_at, finite_blocks, range, values,
    };
    use proptest::prelude::*;

    fn oracle(block: &[u8], i: usize) -> f32 {
        let q = bits(block, 32 + 8 * (i % 16) + 4 * (i / 16), 4);
        q as f32 * f16_at(block, 0) + f16_at(block, 16)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0, 2])) {
            check_row(DType::Q4_1, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q4_1, &row, oracle, true)?;
        }

        /// Half a step, plus the f16 rounding of the scale (15 codes) and of the offset.
        #[test]
        fn round_trip_within_half_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q4_1, &x, |b| range(b) / 15.0, 0.55)?;
        }
    }

    #[test]
    fn known_block() {
        let mut block = [0u8; BLOCK_BYTES];
        block[..4].copy_from_slice(&[0x00, 0x3c, 0x00, 0xc0]); // d = 1, m = -2
        block[4] = 0x3f;
        let mut out = [0.0; BLOCK_LEN];
        dequantize_block(&block, &mut out);
        assert_eq!((out[0], out[16], out[1]), (13.0, 1.0, -2.0));
    }
}
