//! Baseline Advanced SIMD (ARMv8.0) kernels, and the pieces every level shares: reading a
//! sub-block's code vectors, and scaling its integer dots into the row sums.

pub(crate) mod codes;
pub(crate) mod exp;
pub(crate) mod gemm_codes;
pub(crate) mod gemm_f32;
pub(crate) mod quantize;
pub(crate) mod sub_block;
pub(crate) mod vector;
