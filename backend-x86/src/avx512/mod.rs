//! AVX-512 kernels: the integer dot products (VNNI) on one panel and on two, the f32
//! attention dots, and ggml's exp and SiLU with `vscalefps`.

pub(crate) mod exp;
pub(crate) mod gemm_codes;
pub(crate) mod gemm_pair;
pub(crate) mod vector;
