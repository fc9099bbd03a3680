//! Element-wise ops.

use super::rows::for_each_chunk;
use crate::model::WeightView;
use crate::numerics::ggml_math;

/// `gate` = silu(`gate`) * `up`, computed as llama.cpp's `ggml_vec_swiglu_f32` computes it
/// (ggml-cpu/vec.cpp:417, AVX-512 build), with ggml's vectorized SiLU, so that the reference
/// stays on llama.cpp's side of every later quantization rounding step (see `ggml_math`).
/// ggml runs the op row by row and takes a scalar SiLU (libc `expf`) for the last
/// `width % 16` elements of each row; this op does not know the row width, so those elements
/// (none where the width is a multiple of 16, as in common models) can differ by an ulp.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = ggml_math::silu(*g) * u;
    }
}

/// Adds `bias` (one row) to every row of `x`.
pub fn add_bias(x: &mut [f32], bias: &WeightView<'_>) {
    for row in x.chunks_exact_mut(bias.cols) {
        for_each_chunk(bias, 0, |start, b| {
            for (v, b) in row[start..start + b.len()].iter_mut().zip(b) {
                *v += b;
            }
        });
    }
}

/// `x` += `y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
