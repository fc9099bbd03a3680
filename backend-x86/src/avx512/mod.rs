//! AVX-512 VNNI kernels: only the integer dot products differ from the AVX2 level.

pub(crate) mod gemm_codes;
