//! RoPE's angles and rotation with ggml's arithmetic: the angle table built by repeated
//! multiplication with the C library's `cosf`/`sinf`, and the rotation with its first product
//! fused. Shared by the reference backend, the CPU driver and the Vulkan backend's tables.

use super::libc_trig::{cosf, powf, sinf};
use crate::model::{ModelConfig, RopeStyle};

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
