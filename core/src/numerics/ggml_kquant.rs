//! K-quant dot products (Q4_K, Q5_K, Q6_K) in the order llama.cpp computes them on x86 for a
//! batch of tokens.
//!
//! ggml multiplies K-quant weights by activations quantized to Q8_K and sums sub-blocks
//! exactly in integers: the sub-blocks' dot products times their integer scales (`s1`), and
//! the minimums times the activations' sub-block sums (`s2`). Only then does f32 arithmetic
//! start, in one of two patterns ([`FloatSteps`]):
//!
//! - the tiled K-quant matmul (Q5_K, Q6_K, batches of 8 rows or more), per super-block:
//!   `v = s1 * d`, `v -= dmin * s2` (fused), `acc += v * d_a` (fused);
//! - the repacked Q4_K GEMM, per pair of sub-blocks: `acc += s1 * (d * d_a)` and
//!   `acc_min += s2 * (dmin * d_a)` (both fused), the result `acc - acc_min`.
//!
//! Random-weight test models turn one-ulp differences into whole percents of logits, so the
//! reference keeps these orders rather than a left-to-right float sum; the CPU backend's
//! integer kernels compute the same sums.

use core::ops::Range;

use crate::DType;
use crate::dtype::QK_K;
use crate::model::WeightView;
use crate::quant::codes::BlockCodes;
use crate::quant::kquant::nearest_int;

/// When a K-quant's exact integer sums become floats: as in the ggml kernel llama.cpp runs
/// for the format on x86, so that results agree bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatSteps {
    /// Once per super-block (ggml's tiled K-quant matmul; Q5_K, Q6_K).
    PerSuperBlock,
    /// Once per pair of sub-blocks, minimums in their own sum (ggml's repacked Q4_K GEMM).
    PerPair,
}

impl FloatSteps {
    /// Sub-blocks whose integer sums become floats together, of `per_block` in a
    /// super-block.
    pub const fn sub_blocks_per_step(self, per_block: usize) -> usize {
        match self {
            FloatSteps::PerSuperBlock => per_block,
            FloatSteps::PerPair => 2,
        }
    }
}

/// One super-block of activations as ggml's Q8_K stores it.
pub struct Q8K {
    /// The codes, in -127..=127: activation `i` is about `q[i] as f32 * d`.
    pub q: [i8; QK_K],
    /// The block's scale; 0 when every activation is 0.
    pub d: f32,
    /// Sums of each 16 codes.
    pub bsums: [i32; QK_K / 16],
}

impl Q8K {
    /// Quantizes 256 activations as ggml's `quantize_row_q8_K_ref` (which its x86 build
    /// uses): the signed value of largest magnitude maps to -127, codes round half to even
    /// and clamp at 127, and the scale is the reciprocal of the inverse scale.
    pub fn quantize(x: &[f32]) -> Q8K {
        let mut out = Q8K {
            q: [0; QK_K],
            d: 0.0,
            bsums: [0; QK_K / 16],
        };
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if libm::fabsf(v) > amax {
                amax = libm::fabsf(v);
                max = v;
            }
        }
        if amax == 0.0 {
            return out;
        }
        let iscale = -127.0 / max;
        for (q, &v) in out.q.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, q) in out.bsums.iter_mut().zip(out.q.chunks_exact(16)) {
            *s = q.iter().map(|&q| i32::from(q)).sum();
        }
        out.d = 1.0 / iscale;
        out
    }
}

/// The exact integer sums of sub-blocks `subs` of one super-block: `s1 = Σ_j sc_j *
/// (Σ q_w q_a - offset * s_j)` and (formats with minimums) `s2 = Σ_j m_j * s_j`, with `s_j`
/// the activations' sum over sub-block `j`.
pub fn sub_block_sums(dtype: DType, w: &BlockCodes, a: &Q8K, subs: Range<usize>) -> (i32, i32) {
    let (len, offset) = match dtype {
        DType::Q6_K => (16, 32),
        _ => (32, 0),
    };
    let (mut s1, mut s2) = (0i32, 0i32);
    for j in subs {
        let (wq, aq) = (&w.q[j * len..(j + 1) * len], &a.q[j * len..(j + 1) * len]);
        let raw: i32 = wq
            .iter()
            .zip(aq)
            .map(|(&w, &a)| i32::from(w) * i32::from(a))
            .sum();
        let sum: i32 = a.bsums[j * len / 16..(j + 1) * len / 16].iter().sum();
        s1 += i32::from(w.k.sc[j]) * (raw - offset * sum);
        s2 += i32::from(w.k.m[j]) * sum;
    }
    (s1, s2)
}

/// A row's running sum in one of ggml's two float patterns.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accumulator {
    acc: f32,
    /// The minimums' own sum ([`FloatSteps::PerPair`]).
    acc_min: f32,
}

impl Accumulator {
    /// Adds one step's integer sums with the block's factors `[d, dmin, d_a]`.
    pub fn add(&mut self, steps: FloatSteps, [d, dmin, d_a]: [f32; 3], s1: i32, s2: i32) {
        match steps {
            FloatSteps::PerSuperBlock => {
                let v = libm::fmaf(-dmin, s2 as f32, s1 as f32 * d);
                self.acc = libm::fmaf(v, d_a, self.acc);
            }
            FloatSteps::PerPair => {
                self.acc = libm::fmaf(s1 as f32, d * d_a, self.acc);
                self.acc_min = libm::fmaf(s2 as f32, dmin * d_a, self.acc_min);
            }
        }
    }

    /// The row's sum so far: the main sum less the minimums' own sum (which stays 0 under
    /// [`FloatSteps::PerSuperBlock`]).
    pub fn value(&self) -> f32 {
        self.acc - self.acc_min
    }
}

/// The float steps llama.cpp's x86 build takes for `dtype`.
pub fn steps_of(dtype: DType) -> FloatSteps {
    if dtype == DType::Q4_K {
        FloatSteps::PerPair
    } else {
        FloatSteps::PerSuperBlock
    }
}

/// dot(row `r` of `w`, `x`) for a K-quant `w`, in ggml's order (see the module docs).
pub fn dot_row(w: &WeightView<'_>, r: usize, x: &[f32]) -> f32 {
    let Some(bytes) = w.row(r) else {
        return 0.0;
    };
    let steps = steps_of(w.dtype);
    let subs = if w.dtype == DType::Q6_K { 16 } else { 8 };
    let step = steps.sub_blocks_per_step(subs);
    let mut codes = BlockCodes::new();
    let mut acc = Accumulator::default();
    for (block, x) in bytes
        .chunks_exact(w.dtype.block_bytes())
        .zip(x.chunks_exact(QK_K))
    {
        if !codes.unpack(w.dtype, block) {
            return f32::NAN;
        }
        let a = Q8K::quantize(x);
        for first in (0..subs).step_by(step) {
            let (s1, s2) = sub_block_sums(w.dtype, &codes, &a, first..first + step);
            acc.add(steps, [codes.k.d, codes.k.dmin, a.d], s1, s2);
        }
    }
    acc.value()
}
