//! Weight blocks as integer codes: the form the integer microkernels multiply.
//!
//! Every fast format is, per sub-block of 16 or 32 weights, small unsigned codes `q` with a
//! scale, and either a fixed zero point (`w = scale * (q - offset)`) or a minimum
//! (`w = scale * q + min`). Unsigned codes let x86's `vpdpbusd`/`pmaddubsw` (unsigned times
//! signed bytes) take weights directly; the zero point or minimum becomes one correction per
//! sub-block from the activations' block sums, so no per-weight work is spent on it.

use crate::DType;
pub use crate::numerics::ggml_kquant::FloatSteps;
pub use crate::quant::codes::{BlockCodes, SuperBlock};

/// How codes become weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroPoint {
    /// `w = scale * (q - offset)`.
    Offset(u8),
    /// `w = scale * q + min`, a minimum per sub-block.
    Min,
}

/// Where a format's scales live, which decides how kernels accumulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scales {
    /// Legacy formats: an f16 scale (and minimum) per 32-weight sub-block; each sub-block's
    /// integer dot becomes a float at once.
    PerSubBlock,
    /// K-quants: small integer scales (and minimums) per sub-block under f16 factors `d`
    /// (and `dmin`) per 256-weight super-block. Kernels sum sub-blocks in integers and apply
    /// the factors in the steps ggml takes (see [`crate::numerics::ggml_kquant`]).
    SuperBlock(FloatSteps),
}

/// The integer shape of a format with a fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeFormat {
    /// Weights per sub-block (one scale each): 16 or 32.
    pub sub_block: usize,
    /// Bits per code: 4 (packed two per byte in panels) or up to 8 (one byte each).
    pub bits: u8,
    /// How codes become weights: a fixed offset, or a minimum per sub-block.
    pub zero: ZeroPoint,
    /// Where the scales live: per sub-block, or under super-block factors (K-quants).
    pub scales: Scales,
}

impl CodeFormat {
    /// Every format with integer codes (a fast path), in `ggml_type` order.
    pub const DTYPES: [DType; 8] = [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
    ];

    /// The integer shape of `dtype`, or `None` for formats without a fast path.
    pub const fn of(dtype: DType) -> Option<CodeFormat> {
        use FloatSteps::{PerPair, PerSuperBlock};
        use Scales::{PerSubBlock, SuperBlock};
        let (sub_block, bits, zero, scales) = match dtype {
            DType::Q4_0 => (32, 4, ZeroPoint::Offset(8), PerSubBlock),
            DType::Q4_1 => (32, 4, ZeroPoint::Min, PerSubBlock),
            DType::Q5_0 => (32, 5, ZeroPoint::Offset(16), PerSubBlock),
            DType::Q5_1 => (32, 5, ZeroPoint::Min, PerSubBlock),
            DType::Q8_0 => (32, 8, ZeroPoint::Offset(128), PerSubBlock),
            DType::Q4_K => (32, 4, ZeroPoint::Min, SuperBlock(PerPair)),
            DType::Q5_K => (32, 5, ZeroPoint::Min, SuperBlock(PerSuperBlock)),
            DType::Q6_K => (16, 6, ZeroPoint::Offset(32), SuperBlock(PerSuperBlock)),
            _ => return None,
        };
        Some(CodeFormat {
            sub_block,
            bits,
            zero,
            scales,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::QK_K;
    use crate::quant::dequantize;
    use proptest::prelude::*;

    /// Codes times scales (plus minimums) reproduce the dequantizer exactly.
    fn check(dtype: DType, block: &[u8]) {
        let f = CodeFormat::of(dtype).unwrap();
        let mut codes = BlockCodes::new();
        assert!(codes.unpack(dtype, block));
        let n = dtype.block_len();
        let mut want = [0f32; QK_K];
        dequantize(dtype, block, &mut want[..n]).unwrap();
        for (i, &w) in want[..n].iter().enumerate() {
            let j = i / f.sub_block;
            let q = f32::from(codes.q[i]);
            assert!(u32::from(codes.q[i]) < 1 << f.bits, "{dtype} code {i}");
            let got = match f.zero {
                ZeroPoint::Offset(o) => codes.scales[j] * (q - f32::from(o)),
                ZeroPoint::Min => codes.scales[j] * q + codes.mins[j],
            };
            assert!(
                got == w || (got.is_nan() && w.is_nan()) || (got - w).abs() <= w.abs() * 1e-6,
                "{dtype} weight {i}: {got} vs {w}"
            );
        }
    }

    proptest! {
        #[test]
        fn codes_reproduce_the_dequantizer(seed in any::<u64>(), which in 0usize..CodeFormat::DTYPES.len()) {
            let dtype = CodeFormat::DTYPES[which];
            let mut rng = crate::sample::Xoshiro256::seed_from_u64(seed);
            let mut block = [0u8; 256];
            let block = &mut block[..dtype.block_bytes()];
            for b in block.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            // Keep the f16 factors finite and modest so products stay exact-comparable.
            let f16_fields: &[usize] = match dtype {
                DType::Q4_0 | DType::Q5_0 | DType::Q8_0 => &[0],
                DType::Q4_1 | DType::Q5_1 | DType::Q4_K | DType::Q5_K => &[0, 2],
                _ => &[208],
            };
            for &at in f16_fields {
                let v = half::f16::from_f32((rng.next_u64() % 2000) as f32 / 1000.0 - 1.0);
                block[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
            check(dtype, block);
        }
    }

    #[test]
    fn the_list_of_code_formats_is_complete() {
        for dtype in DType::ALL {
            let listed = CodeFormat::DTYPES.contains(&dtype);
            assert_eq!(CodeFormat::of(dtype).is_some(), listed, "{dtype}");
        }
    }

    #[test]
    fn formats_without_a_fast_path_have_no_codes() {
        assert!(CodeFormat::of(DType::BF16).is_none());
    }
}
