//! Plain floating-point tensors: F32, F16 and BF16, one little-endian value per element.
//!
//! Decoding is exact for every format (f16 and bf16 widen to f32 without rounding; NaNs stay
//! NaN). Encoding rounds to nearest, ties to even, as ggml's `GGML_FP32_TO_FP16` and
//! `GGML_FP32_TO_BF16` do. The row functions convert as many elements as both slices hold;
//! [`super::dequantize`] and [`super::quantize`] check the sizes first.

use half::{bf16, f16};

/// Decodes an f16 scale field as ggml's `GGML_FP16_TO_FP32` does.
#[inline]
pub(crate) fn read_f16(bytes: [u8; 2]) -> f32 {
    f16::from_le_bytes(bytes).to_f32()
}

/// Encodes an f16 scale field as ggml's `GGML_FP32_TO_FP16` does (round to nearest even).
#[inline]
pub(crate) fn write_f16(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

/// Little-endian f32 bytes to f32.
pub fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(4).zip(dst) {
        *y = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// Little-endian f16 bytes to f32.
pub fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst) {
        *y = read_f16([b[0], b[1]]);
    }
}

/// Little-endian bf16 bytes to f32.
pub fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    for (b, y) in src.chunks_exact(2).zip(dst) {
        *y = bf16::from_le_bytes([b[0], b[1]]).to_f32();
    }
}

/// f32 to little-endian f32 bytes.
pub fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(4)) {
        b.copy_from_slice(&x.to_le_bytes());
    }
}

/// f32 to little-endian f16 bytes, rounding to nearest even.
pub fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&write_f16(*x));
    }
}

/// f32 to little-endian bf16 bytes, rounding to nearest even; NaNs stay quiet NaNs.
pub fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.iter().zip(dst.chunks_exact_mut(2)) {
        b.copy_from_slice(&bf16::from_f32(*x).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::super::oracle::{f16_value, same_or_both_nan};
    use crate::DType;
    use crate::quant::{dequantize, quantize};
    use proptest::prelude::*;

    extern crate std;
    use std::{vec, vec::Vec};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn f32_reads_little_endian(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let n = bytes.len() / 4;
            let bytes = &bytes[..n * 4];
            let mut out = vec![0.0f32; n];
            dequantize(DType::F32, bytes, &mut out).unwrap();
            for (i, y) in out.iter().enumerate() {
                let b = &bytes[4 * i..4 * i + 4];
                let bits = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
                    | u32::from(b[3]) << 24;
                prop_assert_eq!(y.to_bits(), bits);
            }
        }

        #[test]
        fn f16_matches_field_decoding(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let n = bytes.len() / 2;
            let bytes = &bytes[..n * 2];
            let mut out = vec![0.0f32; n];
            dequantize(DType::F16, bytes, &mut out).unwrap();
            for (i, y) in out.iter().enumerate() {
                let raw = u32::from(bytes[2 * i]) | u32::from(bytes[2 * i + 1]) << 8;
                prop_assert!(same_or_both_nan(*y, f16_value(raw)), "{} {}", i, raw);
            }
        }

        #[test]
        fn bf16_is_the_top_half_of_f32(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let n = bytes.len() / 2;
            let bytes = &bytes[..n * 2];
            let mut out = vec![0.0f32; n];
            dequantize(DType::BF16, bytes, &mut out).unwrap();
            for (i, y) in out.iter().enumerate() {
                let raw = u32::from(bytes[2 * i]) | u32::from(bytes[2 * i + 1]) << 8;
                let expect = f32::from_bits(raw << 16);
                prop_assert!(same_or_both_nan(*y, expect));
            }
        }

        /// Every finite f16 / bf16 value survives encode-then-decode unchanged.
        #[test]
        fn halves_round_trip(raw in prop::collection::vec(any::<u16>(), 0..32)) {
            for dtype in [DType::F16, DType::BF16] {
                let bytes: Vec<u8> = raw.iter().flat_map(|r| r.to_le_bytes()).collect();
                let mut x = vec![0.0f32; raw.len()];
                dequantize(dtype, &bytes, &mut x).unwrap();
                let mut again = vec![0u8; bytes.len()];
                quantize(dtype, &x, &mut again).unwrap();
                for (i, v) in x.iter().enumerate() {
                    if !v.is_nan() {
                        prop_assert_eq!(&again[2 * i..2 * i + 2], &bytes[2 * i..2 * i + 2]);
                    }
                }
            }
        }

        #[test]
        fn f32_round_trips(x in prop::collection::vec(any::<f32>(), 0..32)) {
            let mut bytes = vec![0u8; 4 * x.len()];
            quantize(DType::F32, &x, &mut bytes).unwrap();
            let mut y = vec![0.0f32; x.len()];
            dequantize(DType::F32, &bytes, &mut y).unwrap();
            for (a, b) in x.iter().zip(&y) {
                prop_assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    }

    #[test]
    fn f16_rounds_to_nearest_even() {
        // 1 + 2^-11 lies halfway between 1 and the next f16; ties go to the even mantissa.
        let mut b = [0u8; 4];
        quantize(
            DType::F16,
            &[1.0 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0],
            &mut b,
        )
        .unwrap();
        assert_eq!(b, [0x00, 0x3c, 0x02, 0x3c]);
    }
}
