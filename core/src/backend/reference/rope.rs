//! Rotary position embedding in llama.cpp's two pairings.

use crate::model::{ModelConfig, RopeStyle};

/// Rotates the first `rope_dim` dimensions of each of the `n_heads` heads of every token row
/// of `x`; row `t` is at position `first + t`. Frequencies follow run.c:
/// `1 / theta^(2i / rope_dim)` for pair `i`, angle `pos * freq_scale * freq`.
pub fn rope(x: &mut [f32], n_heads: usize, c: &ModelConfig, first: usize) {
    let hd = c.head_dim;
    let half = c.rope_dim / 2;
    for (t, row) in x.chunks_exact_mut(n_heads * hd).enumerate() {
        let pos = (first + t) as f32 * c.rope_freq_scale;
        for head in row.chunks_exact_mut(hd) {
            rotate_head(head, c.rope_style, half, |i| {
                let freq = 1.0 / libm::powf(c.rope_theta, (2 * i) as f32 / c.rope_dim as f32);
                let angle = pos * freq;
                (libm::cosf(angle), libm::sinf(angle))
            });
        }
    }
}

/// Rotates the `half` dimension pairs of one head, paired as `style` says, pair `i` by the
/// angle whose `(cos, sin)` is `cos_sin(i)`.
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
        head[a] = v0 * cos - v1 * sin;
        head[b] = v0 * sin + v1 * cos;
    }
}
