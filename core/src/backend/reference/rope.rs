//! Rotary position embedding in llama.cpp's two pairings, with ggml's arithmetic.

use super::libc_trig::{cosf, powf, sinf};
use crate::model::config::limits::MAX_HEAD_DIM;
use crate::model::{ModelConfig, RopeStyle};

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

/// `(cos, sin)` of the angle of each dimension pair at `pos`, as ggml builds its rotation
/// cache: pair `i` turns by `freq_scale * pos * s^i` with `s = theta^(-2 / rope_dim)`, the
/// power taken by repeated multiplication, and the C library's `cosf`/`sinf` (see
/// [`super::libc_trig`]). Mathematically run.c's `pos / theta^(2i / rope_dim)`, and within a
/// few ulps of it.
pub fn rope_angles(c: &ModelConfig, pos: usize, out: &mut [(f32, f32)]) {
    let theta_scale = powf(c.rope_theta, -2.0 / c.rope_dim as f32);
    let mut theta = pos as f32;
    for cs in out {
        let angle = c.rope_freq_scale * theta;
        *cs = (cosf(angle), sinf(angle));
        theta *= theta_scale;
    }
}

/// Rotates the `half` dimension pairs of one head, paired as `style` says, pair `i` by the
/// angle whose `(cos, sin)` is `cos_sin(i)`. The first product of each output is fused with
/// the sum, as ggml's compiled `rotate_pairs` does.
pub fn rotate_head(
    head: &mut [f32],
    style: RopeStyle,
    half: usize,
    cos_sin: impl Fn(usize) -> (f32, f32),
) {
    for i in 0..half {
        let (cos, sin) = cos_sin(i);
        let (a, b) = match style {
            RopeStyle::AdjacentPairs => (2 * i, 2 * i + 1),
            RopeStyle::HalfSplit => (i, i + half),
        };
        let (v0, v1) = (head[a], head[b]);
        head[a] = libm::fmaf(v0, cos, -(v1 * sin));
        head[b] = libm::fmaf(v0, sin, v1 * cos);
    }
}
