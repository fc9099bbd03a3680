//! RoPE for the CPU backend: the reference's angles and rotation
//! ([`crate::numerics::rope::rope_angles`]), each token's angles computed once for all of
//! its heads, tokens spread over the threads.

use super::split::{SharedMut, share};
use crate::backend::Parallel;
use crate::model::ModelConfig;
use crate::model::config::limits::MAX_HEAD_DIM;
use crate::numerics::rope::{rope_angles, rotate_head};

/// Rotates the first `rope_dim` dimensions of each of the `n_heads` heads of every token row
/// of `x`; row `t` is at position `first + t`. Tokens are spread over the threads.
pub fn rope(x: &mut [f32], n_heads: usize, c: &ModelConfig, first: usize, par: &dyn Parallel) {
    let width = n_heads * c.head_dim;
    let n_tok = x.len() / width;
    let threads = par.n_threads().max(1);
    if n_tok < 2 * threads {
        for (t, row) in x.chunks_exact_mut(width).enumerate() {
            rotate(row, c, first + t);
        }
        return;
    }
    let x = SharedMut::new(x);
    par.run(threads, &|i| {
        for t in share(n_tok, par, i) {
            // SAFETY: each token row belongs to the one thread whose share holds it.
            let row = unsafe { x.range(t * width..(t + 1) * width) };
            rotate(row, c, first + t);
        }
    });
}

/// Rotates every head of one token row at position `pos`.
fn rotate(row: &mut [f32], c: &ModelConfig, pos: usize) {
    let half = c.rope_dim / 2;
    let mut cos_sin = [(0f32, 0f32); MAX_HEAD_DIM / 2];
    rope_angles(c, pos, &mut cos_sin[..half]);
    for head in row.chunks_exact_mut(c.head_dim) {
        rotate_head(head, c.rope_style, half, |i| cos_sin[i]);
    }
}
