//! Rounding of activations to the format a quantized matmul multiplies them in.
//!
//! Integer kernels (ggml's, MNN's, and Tern's fast backends) do not multiply quantized weights
//! by f32 activations: they first quantize each activation row to a partner format and take
//! integer dot products (W4A8, W8A8), or round activations to f16 for f16 weights. The
//! reference backend models that contract plainly: it rounds the activations exactly as the
//! partner format stores them, then multiplies in f32. The partner formats are ggml's
//! `vec_dot_type`s, so results agree with llama.cpp to its own rounding.

use half::{bf16, f16};

use crate::DType;
use crate::dtype::QK_K;

/// The format activations take when multiplied by weights of `weights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationFormat {
    /// Kept as f32 (f32 weights).
    F32,
    /// Rounded to f16, round half to even (F16 weights).
    F16,
    /// Rounded to bf16, round half to even (BF16 weights).
    BF16,
    /// 32-element blocks, `d = max|x| / 127` stored as f16, `q = round_even(x * 127 / max|x|)`
    /// (ggml Q8_0; Q8_1 rounds the same values and adds a block sum).
    Q8_0,
    /// 256-element blocks, `d = max / -127` of the signed value of largest magnitude, stored
    /// as f32, `q = min(127, round_even(x / d))` (ggml Q8_K).
    Q8K,
}

impl ActivationFormat {
    /// The partner format of `weights`: ggml's `vec_dot_type` for that type.
    pub fn for_weights(weights: DType) -> ActivationFormat {
        match weights {
            DType::F32 => ActivationFormat::F32,
            DType::F16 => ActivationFormat::F16,
            DType::BF16 => ActivationFormat::BF16,
            DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => {
                ActivationFormat::Q8_0
            }
            DType::Q4_K | DType::Q5_K | DType::Q6_K => ActivationFormat::Q8K,
        }
    }

    /// Elements that round together.
    pub fn block_len(self) -> usize {
        match self {
            ActivationFormat::F32 | ActivationFormat::F16 | ActivationFormat::BF16 => 1,
            ActivationFormat::Q8_0 => 32,
            ActivationFormat::Q8K => QK_K,
        }
    }
}

/// Rounds `x` in place through `format`: element-wise formats take any length, block formats
/// a whole number of their blocks (a partial block at the end is left as it is).
pub fn round(format: ActivationFormat, x: &mut [f32]) {
    match format {
        ActivationFormat::F32 => {}
        ActivationFormat::F16 => {
            for v in x {
                *v = f16::from_f32(*v).to_f32();
            }
        }
        ActivationFormat::BF16 => {
            for v in x {
                *v = bf16::from_f32(*v).to_f32();
            }
        }
        ActivationFormat::Q8_0 => x.chunks_exact_mut(32).for_each(round_q8_0_block),
        ActivationFormat::Q8K => x.chunks_exact_mut(QK_K).for_each(round_q8k_block),
    }
}

/// As ggml's SIMD `quantize_row_q8_0` (not its `_ref`, which llama.cpp never uses for
/// activations): `q = round_even(x * (127 / amax))`, times the f16 of `amax / 127`.
fn round_q8_0_block(x: &mut [f32]) {
    round_q8_1_block(x);
}

/// Rounds one 32-element block as [`round_q8_0_block`] and returns Q8_1's block sum as
/// ggml stores it: `s = f16(d * Σq)` with the unrounded scale `d = amax / 127`. Weights
/// with a minimum `m` (Q4_1, Q5_1) add `m * s` per block.
pub(crate) fn round_q8_1_block(x: &mut [f32]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(libm::fabsf(*v)));
    let d = amax / 127.0;
    let d16 = f16::from_f32(d).to_f32();
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0f32;
    for v in x {
        let q = libm::rintf(*v * id);
        sum += q;
        *v = d16 * q;
    }
    q8_1_sum(d * sum)
}

/// Q8_1's block sum `s` as ggml stores it, in f16, except that a sum beyond f16's range stays
/// f32 where ggml's would become infinite (activation outliers of thousands exist in real
/// models; an infinite logit helps no one).
pub fn q8_1_sum(s: f32) -> f32 {
    let rounded = f16::from_f32(s).to_f32();
    if rounded.is_finite() { rounded } else { s }
}

fn round_q8k_block(x: &mut [f32]) {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x.iter() {
        if libm::fabsf(v) > amax {
            amax = libm::fabsf(v);
            max = v;
        }
    }
    if amax == 0.0 {
        x.fill(0.0);
        return;
    }
    let iscale = -127.0 / max;
    let d = 1.0 / iscale;
    for v in x {
        *v = d * libm::rintf(iscale * *v).min(127.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_rounding_keeps_the_largest_value_and_quantizes_the_rest() {
        let x: [f32; 32] = core::array::from_fn(|i| i as f32 * 0.37 - 5.0);
        let mut out = x;
        round(ActivationFormat::Q8_0, &mut out);
        let d = f16::from_f32(x.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0).to_f32();
        for (o, v) in out.iter().zip(x) {
            assert!((o - v).abs() <= d / 2.0 + 1e-6, "{o} vs {v}");
            assert_eq!((o / d).round() * d, *o);
        }
    }

    #[test]
    fn q8k_rounding_is_within_half_a_step_and_zero_stays_zero() {
        let x: [f32; QK_K] = core::array::from_fn(|i| libm::sinf(i as f32) * 3.0);
        let mut out = x;
        round(ActivationFormat::Q8K, &mut out);
        let step = 3.0 / 127.0;
        for (o, v) in out.iter().zip(x) {
            assert!((o - v).abs() <= step, "{o} vs {v}");
        }
        out = [0.0; QK_K];
        round(ActivationFormat::Q8K, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
