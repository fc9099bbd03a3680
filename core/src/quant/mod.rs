//! Block formats: GGUF tensor bytes to f32, and the reference quantizers.
//!
//! Every decoder here reproduces ggml's `dequantize_row_*` bit for bit: the same f32 operations
//! in the same order, never fused. That makes this module the oracle every SIMD kernel of every
//! backend is tested against. The quantizers follow ggml's `quantize_row_*_ref`, the
//! deterministic variants `llama-quantize` uses when it has no importance matrix, so they both
//! quantize activations at run time and rebuild test data byte for byte.
//!
//! One module per format. Each documents its block layout and offers `BLOCK_LEN`,
//! `BLOCK_BYTES`, `dequantize_block` and `quantize_block`; the row functions below check sizes
//! once and walk the blocks.

pub mod codes;
pub mod float;
pub(crate) mod kquant;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;

#[cfg(test)]
mod oracle;

use crate::dtype::DType;
use core::fmt;

/// A row of elements and a byte buffer that do not fit each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DequantError {
    /// `elements` is not a multiple of the format's block length.
    NotWholeBlocks {
        /// The format.
        dtype: DType,
        /// Elements asked for.
        elements: usize,
    },
    /// `bytes` is not the encoded size of `elements` elements.
    SizeMismatch {
        /// The format.
        dtype: DType,
        /// Length of the encoded buffer given.
        bytes: usize,
        /// Elements asked for.
        elements: usize,
    },
}

/// Quantizing checks the same sizes as decoding, so it reports the same error.
pub type QuantError = DequantError;

impl fmt::Display for DequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DequantError::NotWholeBlocks { dtype, elements } => write!(
                f,
                "{dtype}: {elements} elements is not a whole number of {}-element blocks",
                dtype.block_len()
            ),
            DequantError::SizeMismatch {
                dtype,
                bytes,
                elements,
            } => match dtype.bytes_for(elements) {
                Some(expected) => write!(
                    f,
                    "{dtype}: {elements} elements take {expected} bytes, got {bytes}"
                ),
                None => write!(f, "{dtype}: {elements} elements overflow the address space"),
            },
        }
    }
}

/// Decodes `dst.len()` elements of `dtype` from `src`, which must hold exactly
/// `dtype.bytes_for(dst.len())` bytes. Bit-exact with ggml's `dequantize_row_*`.
pub fn dequantize(dtype: DType, src: &[u8], dst: &mut [f32]) -> Result<(), DequantError> {
    check_sizes(dtype, src.len(), dst.len())?;
    match dtype {
        DType::F32 => float::dequantize_f32(src, dst),
        DType::F16 => float::dequantize_f16(src, dst),
        DType::BF16 => float::dequantize_bf16(src, dst),
        DType::Q4_0 => decode_blocks(src, dst, q4_0::dequantize_block),
        DType::Q4_1 => decode_blocks(src, dst, q4_1::dequantize_block),
        DType::Q5_0 => decode_blocks(src, dst, q5_0::dequantize_block),
        DType::Q5_1 => decode_blocks(src, dst, q5_1::dequantize_block),
        DType::Q8_0 => decode_blocks(src, dst, q8_0::dequantize_block),
        DType::Q4_K => decode_blocks(src, dst, q4_k::dequantize_block),
        DType::Q5_K => decode_blocks(src, dst, q5_k::dequantize_block),
        DType::Q6_K => decode_blocks(src, dst, q6_k::dequantize_block),
    }
    Ok(())
}

/// Encodes `src` as `dtype` into `dst`, which must hold exactly `dtype.bytes_for(src.len())`
/// bytes. Byte-identical with ggml's `quantize_row_*_ref` (and its f16 / bf16 conversions).
pub fn quantize(dtype: DType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    check_sizes(dtype, dst.len(), src.len())?;
    match dtype {
        DType::F32 => float::quantize_f32(src, dst),
        DType::F16 => float::quantize_f16(src, dst),
        DType::BF16 => float::quantize_bf16(src, dst),
        DType::Q4_0 => encode_blocks(src, dst, q4_0::quantize_block),
        DType::Q4_1 => encode_blocks(src, dst, q4_1::quantize_block),
        DType::Q5_0 => encode_blocks(src, dst, q5_0::quantize_block),
        DType::Q5_1 => encode_blocks(src, dst, q5_1::quantize_block),
        DType::Q8_0 => encode_blocks(src, dst, q8_0::quantize_block),
        DType::Q4_K => encode_blocks(src, dst, q4_k::quantize_block),
        DType::Q5_K => encode_blocks(src, dst, q5_k::quantize_block),
        DType::Q6_K => encode_blocks(src, dst, q6_k::quantize_block),
    }
    Ok(())
}

fn check_sizes(dtype: DType, bytes: usize, elements: usize) -> Result<(), DequantError> {
    if elements % dtype.block_len() != 0 {
        return Err(DequantError::NotWholeBlocks { dtype, elements });
    }
    match dtype.bytes_for(elements) {
        Some(expected) if expected == bytes => Ok(()),
        _ => Err(DequantError::SizeMismatch {
            dtype,
            bytes,
            elements,
        }),
    }
}

/// Walks matching blocks of `src` and `dst`; sizes are checked by the caller, so the
/// conversions to arrays always succeed.
fn decode_blocks<const B: usize, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    decode: fn(&[u8; B], &mut [f32; N]),
) {
    for (block, out) in src.chunks_exact(B).zip(dst.chunks_exact_mut(N)) {
        if let (Ok(block), Ok(out)) = (block.try_into(), out.try_into()) {
            decode(block, out);
        }
    }
}

fn encode_blocks<const B: usize, const N: usize>(
    src: &[f32],
    dst: &mut [u8],
    encode: fn(&[f32; N], &mut [u8; B]),
) {
    for (x, block) in src.chunks_exact(N).zip(dst.chunks_exact_mut(B)) {
        if let (Ok(x), Ok(block)) = (x.try_into(), block.try_into()) {
            encode(x, block);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    extern crate std;
    use std::{format, vec, vec::Vec};

    #[test]
    fn partial_blocks_are_rejected() {
        for dtype in DType::ALL.into_iter().filter(|t| t.is_quantized()) {
            let n = dtype.block_len() + 1;
            let mut dst = vec![0.0f32; n];
            let src = vec![0u8; dtype.block_bytes() * 2];
            assert_eq!(
                dequantize(dtype, &src, &mut dst),
                Err(DequantError::NotWholeBlocks { dtype, elements: n })
            );
            let mut bytes = vec![0u8; dtype.block_bytes() * 2];
            assert!(quantize(dtype, &dst, &mut bytes).is_err());
        }
    }

    #[test]
    fn wrong_byte_counts_are_rejected() {
        for dtype in DType::ALL {
            let n = dtype.block_len() * 2;
            let mut dst = vec![0.0f32; n];
            for bytes in [0, dtype.block_bytes(), 2 * dtype.block_bytes() + 1] {
                let src = vec![0u8; bytes];
                assert_eq!(
                    dequantize(dtype, &src, &mut dst),
                    Err(DequantError::SizeMismatch {
                        dtype,
                        bytes,
                        elements: n
                    }),
                );
                let mut enc = vec![0u8; bytes];
                assert!(quantize(dtype, &dst, &mut enc).is_err());
            }
        }
    }

    #[test]
    fn empty_rows_are_fine() {
        for dtype in DType::ALL {
            assert_eq!(dequantize(dtype, &[], &mut []), Ok(()));
            assert_eq!(quantize(dtype, &[], &mut []), Ok(()));
        }
    }

    #[test]
    fn errors_say_what_and_how_big() {
        let e = DequantError::NotWholeBlocks {
            dtype: DType::Q8_0,
            elements: 33,
        };
        assert_eq!(
            format!("{e}"),
            "Q8_0: 33 elements is not a whole number of 32-element blocks"
        );
        let e = DequantError::SizeMismatch {
            dtype: DType::Q8_0,
            bytes: 33,
            elements: 32,
        };
        assert_eq!(format!("{e}"), "Q8_0: 32 elements take 34 bytes, got 33");
        let e = DequantError::SizeMismatch {
            dtype: DType::F32,
            bytes: 0,
            elements: usize::MAX,
        };
        assert_eq!(
            format!("{e}"),
            format!("F32: {} elements overflow the address space", usize::MAX)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any pair of lengths is either accepted (exactly the encoded size) or an error.
        #[test]
        fn any_lengths_never_panic(
            dtype_idx in 0..DType::ALL.len(),
            elements in 0usize..600,
            bytes in 0usize..700,
        ) {
            let dtype = DType::ALL[dtype_idx];
            let src: Vec<u8> = vec![0x55; bytes];
            let mut dst = vec![0.0f32; elements];
            let fits = dtype.bytes_for(elements) == Some(bytes);
            prop_assert_eq!(dequantize(dtype, &src, &mut dst).is_ok(), fits);
            let mut enc = vec![0u8; bytes];
            prop_assert_eq!(quantize(dtype, &dst, &mut enc).is_ok(), fits);
        }
    }
}
