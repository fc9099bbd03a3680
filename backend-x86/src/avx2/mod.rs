//! AVX2 + FMA + F16C kernels. Everything but `gemm_codes` also serves the AVX-512 level:
//! those kernels stream memory or are short, and gain nothing from wider vectors on the CPUs
//! that have both.

pub(crate) mod exp;
pub(crate) mod gemm_codes;
pub(crate) mod gemm_f32;
pub(crate) mod kv_quant;
pub(crate) mod quantize;
pub(crate) mod sub_block;
pub(crate) mod vector;
