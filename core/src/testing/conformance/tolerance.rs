//! How close each kernel's result must come to its scalar definition in [`crate::cpu`]: one
//! table for every ISA, so that no backend's tests can drift to a weaker rule.
//!
//! | kernel | rule |
//! | --- | --- |
//! | `quantize_row` | the same bytes, and nothing written past the row |
//! | `gemm_codes` of a K-quant ([`gemm_codes`]) | [`Agreement::Bits`] |
//! | `gemm_codes` of a legacy format ([`gemm_codes`]) | [`SUMMATION`] of `Σ (\|s\| (q + o) + \|m\|) \|a\|` |
//! | a `gemm_codes` row alone and in a batch | [`Agreement::Bits`] |
//! | the driver's matmul ([`matmul`]) | `gemm_codes`' rule for formats with codes, else [`SUMMATION`] of `Σ \|w x\|` |
//! | `gemm_f32`, `dot_f32`, `dot_f16`, `dot_rows_f32` | [`SUMMATION`] of `Σ \|a b\|` |
//! | `dot_rows_f16` ([`dot_rows_f16_bound`]) | [`SUMMATION`], or f16 rounding where it computes in f16 |
//! | a `dot_rows_*` row alone and in a block | the same bits |
//! | `axpy_*`, `swiglu`, `exp_shifted` | [`Agreement::Bits`] |
//!
//! Why K-quants are bit exact on every ISA: their kernels sum each sub-block's code products
//! in 32-bit integers, which is exact in any order, and only then take the float steps
//! [`crate::numerics::ggml_kquant::Accumulator`] defines — per super-block
//! `v = fma(-dmin, s2, s1 * d)`, `acc = fma(v, d_a, acc)`; per pair of sub-blocks
//! `acc = fma(s1, d * d_a, acc)`, `acc_min = fma(s2, dmin * d_a, acc_min)`, the result
//! `acc - acc_min`. x86 (`_mm256/512_mul_ps`, `_fnmadd_ps`, `_fmadd_ps`) and NEON
//! (`vmulq_f32`, `vfmsq_f32`, `vfmaq_f32`) perform exactly these fused operations on the same
//! operands in the same order, and `_mm256/512_cvtepi32_ps` and `vcvtq_f32_s32` round the
//! integer sums as `as f32` does. Legacy formats turn each sub-block into a float at once
//! and may add them in any order: their results differ from the definition by float
//! summation order.

use crate::cpu::codes::{CodeFormat, Scales};
use crate::dtype::DType;

/// How a kernel's result must agree with its scalar definition's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agreement {
    /// The same bits, any NaN matching any NaN: the kernel performs the definition's
    /// operations in the definition's order.
    Bits,
    /// Where the definition is finite, within `tol` times the magnitude of the summed terms
    /// (`Σ |term|`, which bounds what summation order can change, however much the terms
    /// cancel); elsewhere the definition's infinity or NaN ([`Agreement::Bits`]).
    Summation(f64),
}

/// The summation-order rule of every float sum.
pub const SUMMATION: Agreement = Agreement::Summation(1e-5);

impl Agreement {
    /// Whether `got` agrees with `want`, whose terms' magnitudes sum to `magnitude`; the
    /// bound is rounded to f32, as the sums themselves are.
    pub fn holds(self, got: f32, want: f32, magnitude: f32) -> bool {
        match self {
            Agreement::Summation(tol) if want.is_finite() => {
                (got - want).abs() <= tol as f32 * magnitude
            }
            _ => same_bits(got, want),
        }
    }

    /// [`Agreement::holds`] with a magnitude summed in f64.
    pub fn holds_f64(self, got: f32, want: f32, magnitude: f64) -> bool {
        match self {
            Agreement::Summation(tol) if want.is_finite() => {
                f64::from(got - want).abs() <= tol * magnitude
            }
            _ => same_bits(got, want),
        }
    }
}

/// The same bits, or both NaN.
pub fn same_bits(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || got.is_nan() && want.is_nan()
}

/// The rule of `gemm_codes` for `format` (see the module docs for why K-quants are exact).
pub fn gemm_codes(format: CodeFormat) -> Agreement {
    match format.scales {
        Scales::SuperBlock(_) => Agreement::Bits,
        Scales::PerSubBlock => SUMMATION,
    }
}

/// The rule of the driver's matmul of `dtype`: its kernel's rule (activations are quantized
/// bit for bit, so a K-quant matmul stays exact), or float summation for float formats.
pub fn matmul(dtype: DType) -> Agreement {
    CodeFormat::of(dtype).map_or(SUMMATION, gemm_codes)
}

/// The rule of `gemm_f32`, `dot_f32`, `dot_f16` and `dot_rows_f32`.
pub const FLOAT_DOTS: Agreement = SUMMATION;

/// The rule of `axpy_f32`, `axpy_f16`, `swiglu` and `exp_shifted`: element-wise, nothing to
/// reorder.
pub const ELEMENTWISE: Agreement = Agreement::Bits;

/// How a kernel set computes `dot_rows_f16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F16Dots {
    /// Products and sums in f32, as the definition does.
    InF32,
    /// In f16 arithmetic (aarch64's FEAT_FP16): the query and the partial sums are rounded
    /// to f16.
    InF16,
}

/// How far a `dot_rows_f16` row of `len` values may be from the definition, for products
/// whose magnitudes sum to `magnitude`: [`SUMMATION`] in f32, or in f16 the rounding of the
/// query and of each of a lane's `len / 16 + 1` steps, plus f16's absolute spacing near zero.
pub fn dot_rows_f16_bound(how: F16Dots, len: usize, magnitude: f32) -> f32 {
    match how {
        F16Dots::InF32 => 1e-5 * magnitude,
        F16Dots::InF16 => {
            (len / 16 + 2) as f32 * 2f32.powi(-10) * magnitude + len as f32 * 2f32.powi(-23)
        }
    }
}
