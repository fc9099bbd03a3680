//! The CPU driver, shared by every CPU backend: weights repacked into row panels at load,
//! activations quantized to int8 blocks per step, the work split over threads in proportion
//! to their speed, attention with an online softmax. A backend crate supplies only the
//! microkernels ([`CpuKernels`]); [`ScalarKernels`] are their definitions. Its `unsafe`
//! integer kernels compile against the code formats as types ([`formats`]) and read operands
//! checked once per call ([`Codes`]).
//!
//! Formats with integer codes ([`codes`]: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)
//! multiply as W4A8/W8A8 integer dot products; float formats (F32, F16, BF16) become f32
//! panels at load.

mod act;
mod attention;
mod backend;
pub mod codes;
mod flash;
pub mod formats;
mod kernels;
mod matmul;
mod operands;
mod panel;
mod rope;
mod split;
#[cfg(test)]
mod tests;

pub use act::{ActLayout, ActRow, ActScale, quantize_row};
pub use attention::attention;
pub use backend::{Cpu, CpuWeight, PACKED_LAYOUT_VERSION, has_fast_path};
pub use kernels::{
    ActTile, CpuKernels, MAX_TILE_TOKENS, ScalarKernels, gemm_codes_scalar, gemm_f32_scalar,
};
pub use matmul::{Packed, matmul};
pub use operands::{Codes, rows_fit};
pub use panel::{F32Panels, PANEL_ROWS, PanelLayout, pack_codes, panel_count};
pub use split::{SharedMut, share, share_by_cost};
