//! Q8_0: 32 weights as signed bytes times one f16 scale; ggml's 8-bit format, also the
//! format activations are quantized to for integer dot products.
//!
//! Block layout, 34 bytes:
//!
//! - `0..2`: `d`, the f16 scale;
//! - `2..34`: `qs[32]`, weight `i` as an i8 in byte `i + 2`.
//!
//! Weight `i` is `qs[i] as f32 * d`.

use super::float::{read_f16, write_f16};

/// Weights per block.
pub const BLOCK_LEN: usize = 32;
/// Bytes per block.
pub const BLOCK_BYTES: usize = 34;

/// Decodes one block as ggml's `dequantize_row_q8_0`.
pub fn dequantize_block(block: &[u8; BLOCK_BYTES], out: &mut [f32; BLOCK_LEN]) {
    let d = read_f16([block[0], block[1]]);
    for (y, &q) in out.iter_mut().zip(&block[2..]) {
        *y = f32::from(q as i8) * d;
    }
}

/// Encodes one block as ggml's `quantize_row_q8_0_ref`: the scale maps the largest magnitude
/// to 127 and each weight rounds half away from zero.
pub fn quantize_block(x: &[f32; BLOCK_LEN], block: &mut [u8; BLOCK_BYTES]) {
    let amax = x
        .iter()
        .fold(0.0f32, |m, v| if m > v.abs() { m } else { v.abs() });
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let [d0, d1] = write_f16(d);
    block[0] = d0;
    block[1] = d1;
    for (q, &v) in block[2..].iter_mut().zip(x) {
        *q = libm::roundf(v * id) as i8 as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::quant::oracle::{
        amax, any_blocks, bits, check_round_trip, check_row, f16_at, finite_blocks,
    };
    use proptest::prelude::*;

    fn oracle(block: &[u8], i: usize) -> f32 {
        let q = bits(block, 16 + 8 * i, 8) as u8 as i8;
        q as f32 * f16_at(block, 0)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matches_bit_oracle(row in finite_blocks(BLOCK_BYTES, &[0])) {
            check_row(DType::Q8_0, &row, oracle, false)?;
        }

        #[test]
        fn arbitrary_bytes_agree_or_both_nan(row in any_blocks(BLOCK_BYTES)) {
            check_row(DType::Q8_0, &row, oracle, true)?;
        }

        /// Rounding costs half a step, the f16 scale up to 127 * 2^-11 steps more.
        #[test]
        fn round_trip_within_half_a_step(x in crate::quant::oracle::values(BLOCK_LEN)) {
            check_round_trip(DType::Q8_0, &x, |b| amax(b) / 127.0, 0.57)?;
        }
    }

    #[test]
    fn known_block() {
        let mut block = [0u8; BLOCK_BYTES];
        block[..2].copy_from_slice(&[0x00, 0x38]); // 0.5
        block[2] = 0x81; // -127
        block[3] = 3;
        let mut out = [0.0; BLOCK_LEN];
        dequantize_block(&block, &mut out);
        assert_eq!(&out[..3], &[-63.5, 1.5, 0.0]);

        let mut x = [0.0f32; BLOCK_LEN];
        x[0] = -127.0;
        x[1] = 2.5;
        quantize_block(&x, &mut block);
        assert_eq!(&block[..4], &[0x00, 0x3c, 0x81, 3]); // d = 1, 2.5 rounds away from zero
    }
}
