//! Causal grouped-query attention with an online softmax: the maximum and the sum of the
//! exponentials are found in one streaming pass (rescaled as the maximum grows), so no score
//! row, let alone the score matrix, is ever stored and long contexts cost no extra memory.
//! Query heads read their group's key/value head in place: K and V are never repeated.
//! A cache with a quantized half takes the one-pass path of [`flash`] instead.

use half::f16;

use super::flash;
use super::kernels::CpuKernels;
use super::split::{SharedMut, share, share_by_cost};
use crate::backend::Parallel;
use crate::kv::{KvCache, KvRow, KvTypes};
use crate::model::ModelConfig;
use crate::numerics::ggml_math;

/// Positions scored at a time: one block of the cache, the most a cache hands out at once.
pub(super) const CHUNK: usize = crate::kv::KV_BLOCK;

/// Floats of rounded queries a thread keeps on its stack: query heads are taken this many
/// floats' worth at a time (32 heads of 64).
pub(super) const QUERY_FLOATS: usize = 2048;

/// For every query row `t` (position `first + t`) and head `h`, attends over positions
/// `0..=first + t` of KV head `h / group_size` into `out`. The query heads of one group are
/// computed together, so each key and value row is read once per group, not once per head.
#[allow(clippy::too_many_arguments)]
pub fn attention<K: CpuKernels + ?Sized>(
    k: &K,
    q: &[f32],
    kv: &dyn KvCache,
    layer: usize,
    c: &ModelConfig,
    first: usize,
    out: &mut [f32],
    par: &dyn Parallel,
) {
    let (hd, qw, group, n_kv) = (c.head_dim, c.q_width(), c.group_size(), c.n_head_kv);
    let n_tok = q.len() / qw;
    let threads = par.n_threads().max(1);
    let out = SharedMut::new(out);
    // The query heads of KV head `g` are `g * group..(g + 1) * group`: one contiguous run.
    let one = |t: usize, g: usize| {
        let heads = t * qw + g * group * hd..t * qw + (g + 1) * group * hd;
        // SAFETY: each (token, KV head) pair is computed by exactly one thread (see below),
        // and the pairs' output ranges are disjoint.
        let o = unsafe { out.range(heads.clone()) };
        group_attention(k, &q[heads], hd, kv, layer, g * hd, first + t + 1, o);
    };
    if n_tok >= 2 * threads {
        // Prefill: whole tokens per thread, balanced by their causal length.
        par.run(threads, &|i| {
            for t in share_by_cost(n_tok, par, i, |t| (first + t + 1) as u64) {
                (0..n_kv).for_each(|g| one(t, g));
            }
        });
    } else {
        // Decode: (token, KV head) pairs per thread.
        par.run(threads, &|i| {
            for pair in share(n_tok * n_kv, par, i) {
                one(pair / n_kv, pair % n_kv);
            }
        });
    }
}

/// The query heads `q` (back to back, `hd` wide) that share the KV head at offset `kv_off`,
/// over `n_pos` positions, a stack's worth of heads at a time.
#[allow(clippy::too_many_arguments)]
fn group_attention<K: CpuKernels + ?Sized>(
    k: &K,
    q: &[f32],
    hd: usize,
    kv: &dyn KvCache,
    layer: usize,
    kv_off: usize,
    n_pos: usize,
    out: &mut [f32],
) {
    let per_batch = (QUERY_FLOATS / hd).max(1) * hd;
    let types = KvTypes {
        keys: kv.key(layer, 0).kv_type(),
        values: kv.value(layer, 0).kv_type(),
    };
    for (q, out) in q.chunks(per_batch).zip(out.chunks_mut(per_batch)) {
        if types.is_float() {
            heads(k, q, hd, kv, layer, kv_off, n_pos, out);
        } else {
            flash::heads(k, q, hd, kv, layer, kv_off, n_pos, out);
        }
    }
}

/// Query heads (at most [`QUERY_FLOATS`] floats) sharing one KV head, in two passes over the
/// positions: the first finds each head's softmax maximum and sum online, the second
/// recomputes each score and adds the value row times the normalized probability. The
/// probabilities meet an f16 cache in f16, as llama.cpp's attention multiplies them (so
/// results track it to its own rounding); the second score pass costs a re-read of the keys,
/// never a stored score row.
#[allow(clippy::too_many_arguments)]
fn heads<K: CpuKernels + ?Sized>(
    k: &K,
    q: &[f32],
    hd: usize,
    kv: &dyn KvCache,
    layer: usize,
    kv_off: usize,
    n_pos: usize,
    out: &mut [f32],
) {
    let width = kv.width();
    let f16_cache = matches!(kv.key(layer, 0), KvRow::F16(_));
    // An f16 cache meets the query in f16, as llama.cpp's attention does (and the reference).
    let mut rounded = [0f32; QUERY_FLOATS];
    let rounded = &mut rounded[..q.len()];
    for (r, &v) in rounded.iter_mut().zip(q) {
        *r = if f16_cache {
            f16::from_f32(v).to_f32()
        } else {
            v
        };
    }
    let n_heads = q.len() / hd;
    let scale = 1.0 / libm::sqrtf(hd as f32);
    let mut max = [f32::NEG_INFINITY; QUERY_FLOATS];
    let mut sum = [0f64; QUERY_FLOATS];
    let (max, sum) = (&mut max[..n_heads], &mut sum[..n_heads]);
    let mut scores = [0f32; CHUNK];
    for start in (0..n_pos).step_by(CHUNK) {
        let n = CHUNK.min(n_pos - start);
        let keys = kv.keys(layer, start, n);
        for (h, qh) in rounded.chunks_exact(hd).enumerate() {
            let scores = &mut scores[..n];
            dot_rows(k, qh, keys, kv_off, width, scores, scale);
            let chunk_max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if chunk_max > max[h] {
                // The sum so far was relative to the old maximum.
                sum[h] *= f64::from(ggml_math::expf(max[h] - chunk_max));
                max[h] = chunk_max;
            }
            k.exp_shifted(scores, max[h]);
            sum[h] += scores.iter().map(|&e| f64::from(e)).sum::<f64>();
        }
    }
    out.fill(0.0);
    for start in (0..n_pos).step_by(CHUNK) {
        let n = CHUNK.min(n_pos - start);
        let (keys, values) = (kv.keys(layer, start, n), kv.values(layer, start, n));
        let heads = rounded.chunks_exact(hd).zip(out.chunks_exact_mut(hd));
        for (h, (qh, oh)) in heads.enumerate() {
            let scores = &mut scores[..n];
            dot_rows(k, qh, keys, kv_off, width, scores, scale);
            k.exp_shifted(scores, max[h]);
            let inv_sum = (1.0 / sum[h]) as f32;
            for (j, &e) in scores.iter().enumerate() {
                let (at, p) = (j * width + kv_off, e * inv_sum);
                match values {
                    KvRow::F16(v) => k.axpy_f16(oh, f16::from_f32(p).to_f32(), &v[at..at + hd]),
                    KvRow::F32(v) => k.axpy_f32(oh, p, &v[at..at + hd]),
                    // A quantized half goes the way of `flash::heads`.
                    KvRow::Q8_0(_) | KvRow::Fp8(_) => flash::axpy_any(oh, p, values, at),
                }
            }
        }
    }
}

/// `scores[j]` = dot(`q`, row `j` of `rows` from column `at`) times `scale`.
fn dot_rows<K: CpuKernels + ?Sized>(
    k: &K,
    q: &[f32],
    rows: KvRow<'_>,
    at: usize,
    stride: usize,
    scores: &mut [f32],
    scale: f32,
) {
    match rows {
        KvRow::F16(r) => k.dot_rows_f16(q, &r[at..], stride, scores),
        KvRow::F32(r) => k.dot_rows_f32(q, &r[at..], stride, scores),
        // A quantized half goes the way of `flash::heads`.
        KvRow::Q8_0(_) | KvRow::Fp8(_) => flash::dot_rows_any(q, rows, at, stride, scores),
    }
    scores.iter_mut().for_each(|s| *s *= scale);
}
