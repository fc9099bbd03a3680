//! Matrix times activations, one dot product at a time, accumulated in order like run.c.

use super::activation::{ActivationFormat, round};
use super::rows::for_each_chunk;
use crate::dtype::QK_K;
use crate::model::WeightView;

/// dot(row `r` of `w`, `x`) with a single f32 accumulator, left to right, after rounding `x`
/// to the activation format of `w`'s type (see [`super::activation`]).
pub fn dot_row(w: &WeightView<'_>, r: usize, x: &[f32]) -> f32 {
    let format = ActivationFormat::for_weights(w.dtype);
    let mut rounded = [0f32; QK_K];
    let mut sum = 0f32;
    for_each_chunk(w, r, |start, values| {
        let xs = &mut rounded[..values.len()];
        xs.copy_from_slice(&x[start..start + values.len()]);
        round(format, xs);
        for (a, b) in values.iter().zip(xs.iter()) {
            sum += a * b;
        }
    });
    sum
}

/// `out[t][r]` = dot(row r of w, `x[t]`) for every token row `t`.
pub fn matmul(w: &WeightView<'_>, x: &[f32], out: &mut [f32]) {
    for (x_row, out_row) in x.chunks_exact(w.cols).zip(out.chunks_exact_mut(w.rows)) {
        for (r, o) in out_row.iter_mut().enumerate() {
            *o = dot_row(w, r, x_row);
        }
    }
}
