//! FEAT_I8MM kernels: `smmla` (a 2x8 by 8x2 byte matrix product into four 32-bit lanes) for
//! prefill, `sdot` for decode, both on this level's own panel layout ([`layout`]).

pub(crate) mod gemm_codes;
pub(crate) mod layout;
pub(crate) mod smmla;
