//! Arithmetic shared by every backend that must reproduce ggml's numbers: ggml's `exp`, SiLU
//! and softmax lane orders, glibc's `sinf`/`cosf`, the K-quant integer sums and their float
//! steps, the rounding of activations to a matmul's partner format, and RoPE's angles.
//!
//! The reference backend defines results with these; the CPU driver, the ISA crates and the
//! GPU backends use the same functions (or port them bit for bit), so they live here rather
//! than inside the oracle.

pub mod activation;
pub mod ggml_kquant;
pub mod ggml_math;
pub mod libc_trig;
pub mod rope;

pub use activation::{ActivationFormat, q8_1_sum, round as round_activations};
