//! RMS normalisation, as run.c's `rmsnorm`: `w * (x / sqrt(mean(x^2) + eps))`, with ggml's
//! f64 sum of squares.

use super::rows::for_each_chunk;
use crate::model::WeightView;

/// Normalises each `weight.cols`-wide row of `x` into `out`.
pub fn rms_norm(x: &[f32], weight: &WeightView<'_>, eps: f32, out: &mut [f32]) {
    let n = weight.cols;
    for (x_row, out_row) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let scale = inverse_rms(x_row, eps);
        for_each_chunk(weight, 0, |start, w| {
            let end = start + w.len();
            for ((o, &v), &w) in out_row[start..end]
                .iter_mut()
                .zip(&x_row[start..end])
                .zip(w)
            {
                *o = w * (scale * v);
            }
        });
    }
}

/// Normalises every `weight.cols`-wide head of `x` in place (qwen3's q/k norm).
pub fn head_norm(x: &mut [f32], weight: &WeightView<'_>, eps: f32) {
    for head in x.chunks_exact_mut(weight.cols) {
        let scale = inverse_rms(head, eps);
        for_each_chunk(weight, 0, |start, w| {
            for (v, &w) in head[start..start + w.len()].iter_mut().zip(w) {
                *v = w * (scale * *v);
            }
        });
    }
}

/// `1 / sqrt(mean(x^2) + eps)` as ggml computes it: each square in f32, summed in f64, the
/// mean rounded to f32. Activations from quantized embeddings sit on rounding ties of the
/// next quantization, so even the last bit of this scale decides results.
fn inverse_rms(x: &[f32], eps: f32) -> f32 {
    let mut ss = 0f64;
    for &v in x {
        ss += f64::from(v * v);
    }
    let mean = (ss / x.len() as f64) as f32;
    1.0 / libm::sqrtf(mean + eps)
}
