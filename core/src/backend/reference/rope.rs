//! Rotary position embedding in llama.cpp's two pairings, with ggml's arithmetic.

use crate::model::ModelConfig;
use crate::model::config::limits::MAX_HEAD_DIM;
use crate::numerics::rope::{rope_angles, rotate_head};

/// Rotates the first `rope_dim` dimensions of each of the `n_heads` heads of every token row
/// of `x`; row `t` is at position `first + t`.
pub fn rope(x: &mut [f32], n_heads: usize, c: &ModelConfig, first: usize) {
    let half = c.rope_dim / 2;
    let mut cos_sin = [(0f32, 0f32); MAX_HEAD_DIM / 2];
    for (t, row) in x.chunks_exact_mut(n_heads * c.head_dim).enumerate() {
        rope_angles(c, first + t, &mut cos_sin[..half]);
        for head in row.chunks_exact_mut(c.head_dim) {
            rotate_head(head, c.rope_style, half, |i| cos_sin[i]);
        }
    }
}
