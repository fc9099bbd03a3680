//! Q4_0: 32 weights as 4-bit codes around 8, times one f16 scale; symmetric 4-bit.
//!
//! Block layout, 18 bytes:
//!
//! - `0..2`: `d`, the f16 scale;
//! - `2..18`: `qs[16]`; byte `i` holds weight `i` in its low nibble and weight `i + 16` in
//!   its high nibble.
//!
//! Weight `i` is `(q_i - 8) as f32 * d`.

use super::float::{read_f16, write_f16};

/// Weights per block.
pub const BLOCK_LEN: usize = 32;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 18;

/// Decodes one block as ggml's `dequantize_row_q4_0`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    let (lo, hi) = out.split_at_mut(BLOCK_LEN / 2);
    for ((&q, y0), y1) in block[2..].iter().zip(lo).zip(hi) {
        *y0 = (i32::from(q & 0x0f) - 8) as f32 * d;
        *y1 = (i32::from(q >> 4) - 8) as f32 * d;
    }
}

/// Encodes one block as ggml's `quantize_row_q4_0_ref`: the weight of largest magnitude maps
/// exactly to code 0 (`-8 * d`, so `d` takes its sign), the rest round half up.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let [d0, d1] = write_f16(d);
    block[0] = d0;
    block[1] = d1;
    let (lo, hi) = x.split_at(BLOCK_LEN / 2);
    for ((q, &v0), &v1) in block[2..].iter_mut().zip(lo).zip(hi) {
        let q0 = ((v0 * id + 8.5) as i8).min(15) as u8;
        let q1 = ((v1 * id + 8.5) as i8).min(15) as u8;
        *q = q0 | q1 << 4;
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
        let at = 16 + 8 * (i % 16) + 4 * (i / 16);
        (bits(block, at, 4) as i32 - 8) as f32 * f16_at(block, 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0])) {
            check_row(DType::Q4_0, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q4_0, &row, oracle, true)?;
        }

        /// Half a step, except that code 16 does not exist: weights near `-max` clamp to 15,
        /// one full step away.
        #[test]
        fn round_trip_within_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q4_0, &x, |b| amax(b) / 8.0, 1.01)?;
        }
    }

    #[test]
    fn known_block() {
        let mut block = [0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&[0x00, 0x40]); // 2.0
        block[2] = 0xf0; // weight 0: 0 - 8, weight 16: 15 - 8
        let mut out = [0.0; BLOCK_LEN];
        dequantize_block(&block, &mut out);
        assert_eq!((out[0], out[16], out[1]), (-16.0, 14.0, -16.0));
    }
}
