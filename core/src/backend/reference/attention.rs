//! Causal grouped-query attention over the KV cache, as run.c computes it: scores, softmax,
//! then the weighted sum of values. With an f16 cache, queries meet the keys as f16 and the
//! probabilities meet the values as f16, as activations meet f16 weights in a matmul (see
//! `activation`): that is how llama.cpp's attention multiplies an f16 cache.

use super::activation::{ActivationFormat, round};
use crate::kv::{KvCache, KvRow};
use crate::model::ModelConfig;

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
    let format = match kv.key(layer, 0) {
        KvRow::F16(_) => ActivationFormat::F16,
        KvRow::F32(_) => ActivationFormat::F32,
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
            round(format, qh);
            let scores = &mut scores[..n_pos];
            for (pos, s) in scores.iter_mut().enumerate() {
                let k = kv.key(layer, pos);
                let mut dot = 0f32;
                for (i, &qv) in qh.iter().enumerate() {
                    dot += qv * k.get(kv_off + i);
                }
                *s = dot * scale;
            }
            softmax(scores);
            round(format, scores);
            oh.fill(0.0);
            for (pos, &p) in scores.iter().enumerate() {
                let v = kv.value(layer, pos);
                for (i, o) in oh.iter_mut().enumerate() {
                    *o += p * v.get(kv_off + i);
                }
            }
        }
    }
}

/// In-place softmax, max-subtracted as run.c does.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}
