//! Matrix times activations, one dot product at a time, accumulated in order like run.c.

use super::rows::for_each_chunk;
use crate::DType;
use crate::dtype::QK_K;
use crate::model::WeightView;
use crate::numerics::activation::{ActivationFormat, round, round_q8_1_block};
use crate::numerics::ggml_kquant;
use crate::quant::dequantize;

/// dot(row `r` of `w`, `x`) with a single f32 accumulator, left to right, after rounding `x`
/// to the activation format of `w`'s type (see [`crate::numerics::activation`]).
pub fn dot_row(w: &WeightView<'_>, r: usize, x: &[f32]) -> f32 {
    match w.dtype {
        DType::Q4_1 | DType::Q5_1 => return dot_row_with_minimum(w, r, x),
        DType::Q4_K | DType::Q5_K | DType::Q6_K => return ggml_kquant::dot_row(w, r, x),
        _ => {}
    }
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

/// [`dot_row`] for formats whose blocks add a minimum `m` to every weight (Q4_1, Q5_1), as
/// ggml pairs them with Q8_1: per block, `Σ (d q_i) x_i` over the rounded activations plus
/// `m * s`, with `s` the activations' block sum as Q8_1 stores it.
fn dot_row_with_minimum(w: &WeightView<'_>, r: usize, x: &[f32]) -> f32 {
    let Some(bytes) = w.row(r) else {
        return 0.0;
    };
    let mut sum = 0f32;
    let mut scaled = [0f32; 32];
    let mut block = [0u8; 24];
    let n = w.dtype.block_bytes();
    for (src, x) in bytes.chunks_exact(n).zip(x.chunks_exact(32)) {
        // The minimum (bytes 2..4, f16) on its own, and the codes times the scale alone by
        // decoding the block with a zero minimum.
        let m = half::f16::from_le_bytes([src[2], src[3]]).to_f32();
        block[..n].copy_from_slice(src);
        block[2..4].fill(0);
        if dequantize(w.dtype, &block[..n], &mut scaled).is_err() {
            return f32::NAN;
        }
        let mut xs = [0f32; 32];
        xs.copy_from_slice(x);
        let s = round_q8_1_block(&mut xs);
        for (a, b) in scaled.iter().zip(&xs) {
            sum += a * b;
        }
        sum += m * s;
    }
    sum
}
