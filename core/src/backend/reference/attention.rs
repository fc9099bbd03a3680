//! Causal grouped-query attention over the KV cache: scores, softmax, then the weighted sum of
//! values, as run.c computes it but in llama.cpp's arithmetic (flash attention off), so that
//! the reference tracks llama.cpp's logits to the bit where it can (see `ggml_math`). With an
//! f16 cache, queries meet the keys as f16 and the probabilities meet the values as f16, as
//! activations meet f16 weights in a matmul (see `activation`): that is how llama.cpp's
//! attention multiplies an f16 cache. Both products sum in the order of ggml's f16 matmul
//! kernels ([`DotOrder`]), and the softmax is ggml's. With q8_0 keys, queries meet them
//! rounded to q8_0 blocks, as an integer dot product takes them; quantized values (q8_0,
//! FP8), and values of any type beside quantized keys, meet f32 probabilities (as llama.cpp's
//! flash attention, the only one it runs on such caches), each element read as stored.

use crate::kv::{KvCache, KvType, KvTypes};
use crate::model::ModelConfig;
use crate::numerics::activation::{ActivationFormat, round};
use crate::numerics::ggml_math::{self, DotOrder};

/// For every query row `t` (position `first + t`) and head `h`, attends over positions
/// `0..=first + t` of KV head `h / group_size`. `scores` holds at least `first + rows` floats.
pub fn attention(
    q: &[f32],
    kv: &dyn KvCache,
    layer: usize,
    c: &ModelConfig,
    first: usize,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let hd = c.head_dim;
    let scale = 1.0 / libm::sqrtf(hd as f32);
    let query_format = match kv.key(layer, 0).kv_type() {
        KvType::F16 => ActivationFormat::F16,
        KvType::Q8_0 => ActivationFormat::Q8_0,
        KvType::F32 | KvType::Fp8 => ActivationFormat::F32,
    };
    // llama.cpp reads a cache with a quantized half only with flash attention, whose
    // probabilities stay f32 whatever the values' type.
    let types = KvTypes {
        keys: kv.key(layer, 0).kv_type(),
        values: kv.value(layer, 0).kv_type(),
    };
    let probability_format = match types.values {
        KvType::F16 if types.is_float() => ActivationFormat::F16,
        _ => ActivationFormat::F32,
    };
    // llama.cpp sums both products with tinyBLAS in steps of several tokens (when rows are a
    // multiple of 16 long) and with `ggml_vec_dot_f16` in single-token steps. The reference
    // keeps the first order for every step, so that its rows do not depend on how the tokens
    // were batched; the fixtures' references are prefill steps.
    let order = if hd % 16 == 0 {
        DotOrder::TinyBlas
    } else {
        DotOrder::VecDot
    };
    // llama.cpp's value products run over its padded positions; the padding's zero
    // probabilities leave every lane as it is, except that they fill whole lane groups.
    let lanes = match order {
        DotOrder::TinyBlas => 16,
        DotOrder::VecDot => 64,
    };
    let mut rounded = [0f32; crate::model::config::limits::MAX_HEAD_DIM];
    for (t, (q_row, out_row)) in q
        .chunks_exact(c.q_width())
        .zip(out.chunks_exact_mut(c.q_width()))
        .enumerate()
    {
        let n_pos = first + t + 1;
        for (h, oh) in out_row.chunks_exact_mut(hd).enumerate() {
            let kv_off = h / c.group_size() * hd;
            let qh = &mut rounded[..hd];
            qh.copy_from_slice(&q_row[h * hd..(h + 1) * hd]);
            round(query_format, qh);
            let scores = &mut scores[..n_pos];
            for (pos, s) in scores.iter_mut().enumerate() {
                let k = kv.key(layer, pos);
                *s = ggml_math::dot(order, hd, |i| qh[i], |i| k.get(kv_off + i)) * scale;
            }
            softmax(scores);
            round(probability_format, scores);
            let padded = n_pos.div_ceil(lanes) * lanes;
            let p = |pos: usize| if pos < n_pos { scores[pos] } else { 0.0 };
            for (i, o) in oh.iter_mut().enumerate() {
                let v = |pos: usize| {
                    if pos < n_pos {
                        kv.value(layer, pos).get(kv_off + i)
                    } else {
                        0.0
                    }
                };
                *o = ggml_math::dot(order, padded, p, v);
            }
        }
    }
}

/// In-place softmax of one row of scaled scores, computed as llama.cpp's `soft_max` op computes
/// it (ggml-cpu/ops.cpp:5896-5912 and `ggml_vec_soft_max_f32`, vec.cpp:531, AVX-512 build), so
/// that the probabilities carry ggml's bits: max-subtracted, ggml's vectorized `exp`, each
/// group of 16 summed in f32 by halving (`_mm512_reduce_add_ps`) and added to an f64 total,
/// then every value multiplied by `1 / total` rounded to f32. llama.cpp pads the row to a
/// multiple of 256 positions with masked scores whose exponentials are exact zeros, so it
/// never takes its scalar tail; the zero lanes of the last group here stand for them.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for group in x.chunks_mut(16) {
        let mut lanes = [0f32; 16];
        for (v, lane) in group.iter_mut().zip(&mut lanes) {
            *v = ggml_math::expf(*v - max);
            *lane = *v;
        }
        sum += f64::from(ggml_math::halving_sum(&mut lanes));
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
