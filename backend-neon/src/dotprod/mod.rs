//! FEAT_DotProd kernels: `sdot` (four byte products summed into each 32-bit lane) on the
//! portable panel layout, for decode and prefill alike.

pub(crate) mod gemm_codes;
pub(crate) mod sdot;
