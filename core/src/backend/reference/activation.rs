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
use crate::quant::{dequantize, quantize};

/// The format activations take when multiplied by weights of `weights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationFormat {
    /// Kept as f32 (f32 weights).
    F32,
    F16,
    BF16,
    /// 32-element blocks, `d = max|x| / 127` stored as f16, `q = round(x / d)` (ggml Q8_0;
    /// Q8_1 rounds the same values and adds a block sum).
    Q8_0,
    /// 256-element blocks, `d = max / -127` of the signed value of largest magnitude, stored
    /// as f32, `q = min(127, round_even(x / d))` (ggml Q8_K).
    Q8K,
}

impl ActivationFormat {
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
        ActivationFormat::Q8_0 => {
            for block in x.chunks_exact_mut(32) {
                let mut bytes = [0u8; 34];
                // One whole block each way, so both calls succeed.
                let ok = quantize(DType::Q8_0, block, &mut bytes).is_ok()
                    && dequantize(DType::Q8_0, &bytes, block).is_ok();
                debug_assert!(ok);
            }
        }
        ActivationFormat::Q8K => x.chunks_exact_mut(QK_K).for_each(round_q8k_block),
    }
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
