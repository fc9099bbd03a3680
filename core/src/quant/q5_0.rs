//! Q5_0: 32 weights as 5-bit codes around 16, times one f16 scale; symmetric 5-bit.
//!
//! Block layout, 22 bytes:
//!
//! - `0..2`: `d`, the f16 scale;
//! - `2..6`: `qh`, a little-endian u32 whose bit `i` is the fifth bit of weight `i`;
//! - `6..22`: `qs[16]`, the low four bits; byte `i` holds weight `i` in its low nibble and
//!   weight `i + 16` in its high nibble.
//!
//! Weight `i` is `(q_i - 16) as f32 * d`.

use super::float::{read_f16, write_f16};

/// Weights per block.
pub const BLOCK_LEN: usize = 32;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 22;

/// Decodes one block as ggml's `dequantize_row_q5_0`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let (lo, hi) = out.split_at_mut(BLOCK_LEN / 2);
    for (j, ((&q, y0), y1)) in block[6..].iter().zip(lo).zip(hi).enumerate() {
        let h0 = ((qh >> j) << 4) as u8 & 0x10;
        let h1 = (qh >> (j + 12)) as u8 & 0x10;
        *y0 = (i32::from(q & 0x0f | h0) - 16) as f32 * d;
        *y1 = (i32::from(q >> 4 | h1) - 16) as f32 * d;
    }
}

/// Encodes one block as ggml's `quantize_row_q5_0_ref`: the weight of largest magnitude maps
/// exactly to code 0 (`-16 * d`), the rest round half up.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    block[..2].copy_from_slice(&write_f16(d));
    let mut qh = 0u32;
    let (lo, hi) = x.split_at(BLOCK_LEN / 2);
    for (j, ((q, &v0), &v1)) in block[6..].iter_mut().zip(lo).zip(hi).enumerate() {
        let q0 = ((v0 * id + 16.5) as i8).min(31) as u8;
        let q1 = ((v1 * id + 16.5) as i8).min(31) as u8;
        *q = (q0 & 0x0f) | (q1 & 0x0f) << 4;
        qh |= u32::from((q0 & 0x10) >> 4) << j;
        qh |= u32::from((q1 & 0x10) >> 4) << (j + 16);
    }
    block[2..6].copy_from_slice(&qh.to_le_bytes());
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
        let low = bits(block, 48 + 8 * (i % 16) + 4 * (i / 16), 4);
        let high = bits(block, 16 + i, 1);
        ((low | high << 4) as i32 - 16) as f32 * f16_at(block, 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0])) {
            check_row(DType::Q5_0, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q5_0, &row, oracle, true)?;
        }

        /// As Q4_0: half a step, one step near `-max` where code 32 would be needed.
        #[test]
        fn round_trip_within_a_step(x in values(BLOCK_LEN)) {
            check_round_trip(DType::Q5_0, &x, |b| amax(b) / 16.0, 1.01)?;
        }
    }
}
