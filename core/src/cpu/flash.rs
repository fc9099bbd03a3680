//! Attention over a cache with a quantized half (q8_0 keys or values, FP8 values), in one
//! pass over the positions as flash attention computes it: per block of [`CHUNK`] positions,
//! each query head's scores, then its running maximum, the running sum of exponentials and
//! the accumulated value rows, rescaled whenever the maximum grows. No score row longer than
//! a block exists, the keys are read once, and quantized rows are read as stored: q8_0 keys
//! meet the query quantized to q8_0 in integer dot products, values are dequantized inside
//! the accumulating kernel.

use half::f16;

use super::attention::{CHUNK, QUERY_FLOATS};
use super::kernels::CpuKernels;
use crate::kv::{BlockQ8_0, KvCache, KvRow, Q8_BLOCK, quantize_q8_0_row};
use crate::numerics::ggml_math;

/// Query blocks a thread keeps on its stack: [`QUERY_FLOATS`] floats' worth.
const QUERY_BLOCKS: usize = QUERY_FLOATS / Q8_BLOCK;

/// The query heads `q` (at most [`QUERY_FLOATS`] floats, back to back, `hd` wide) sharing the
/// KV head at offset `kv_off`, over positions `0..n_pos` of `layer`, into `out`.
#[allow(clippy::too_many_arguments)]
pub(super) fn heads<K: CpuKernels + ?Sized>(
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
    let n_heads = q.len() / hd;
    let query = Query::new(q, hd, kv.key(layer, 0), kv_off, width);
    let scale = 1.0 / libm::sqrtf(hd as f32);
    let mut max = [f32::NEG_INFINITY; QUERY_FLOATS];
    let mut sum = [0f32; QUERY_FLOATS];
    let (max, sum) = (&mut max[..n_heads], &mut sum[..n_heads]);
    let mut scores = [0f32; CHUNK];
    out.fill(0.0);
    for start in (0..n_pos).step_by(CHUNK) {
        let n = CHUNK.min(n_pos - start);
        let (keys, values) = (kv.keys(layer, start, n), kv.values(layer, start, n));
        for (h, oh) in out.chunks_exact_mut(hd).enumerate() {
            let scores = &mut scores[..n];
            query.scores(k, h, keys, kv_off, width, scores);
            scores.iter_mut().for_each(|s| *s *= scale);
            let block_max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if block_max > max[h] {
                // The sum and the accumulator so far were relative to the old maximum (and
                // are zero before the first block, where the factor is `exp(-inf)`).
                let r = ggml_math::expf(max[h] - block_max);
                sum[h] *= r;
                oh.iter_mut().for_each(|o| *o *= r);
                max[h] = block_max;
            }
            k.exp_shifted(scores, max[h]);
            sum[h] += scores.iter().sum::<f32>();
            for (j, &p) in scores.iter().enumerate() {
                add_value(k, oh, p, values, j * width + kv_off);
            }
        }
    }
    for (oh, &s) in out.chunks_exact_mut(hd).zip(sum.iter()) {
        let inv = 1.0 / s;
        oh.iter_mut().for_each(|o| *o *= inv);
    }
}

/// The query heads in the form the keys multiply: q8_0 blocks for q8_0 keys (when heads are
/// whole blocks), rounded to f16 for f16 keys, else as given.
struct Query<'q> {
    floats: &'q [f32],
    rounded: [f32; QUERY_FLOATS],
    blocks: [BlockQ8_0; QUERY_BLOCKS],
    hd: usize,
}

impl<'q> Query<'q> {
    fn new(q: &'q [f32], hd: usize, keys: KvRow<'_>, kv_off: usize, width: usize) -> Self {
        let mut query = Query {
            floats: q,
            rounded: [0.0; QUERY_FLOATS],
            blocks: [BlockQ8_0::default(); QUERY_BLOCKS],
            hd,
        };
        match keys {
            KvRow::Q8_0(_) if whole_blocks(hd, kv_off, width) => {
                quantize_q8_0_row(q, &mut query.blocks[..q.len() / Q8_BLOCK]);
            }
            KvRow::F16(_) => {
                for (r, &v) in query.rounded.iter_mut().zip(q) {
                    *r = f16::from_f32(v).to_f32();
                }
            }
            _ => query.rounded[..q.len()].copy_from_slice(q),
        }
        query
    }

    /// Head `h`'s unscaled scores against the rows of `keys` (from column `at`).
    fn scores<K: CpuKernels + ?Sized>(
        &self,
        k: &K,
        h: usize,
        keys: KvRow<'_>,
        at: usize,
        width: usize,
        out: &mut [f32],
    ) {
        let hd = self.hd;
        let rounded = &self.rounded[h * hd..(h + 1) * hd];
        match keys {
            KvRow::Q8_0(r) if whole_blocks(hd, at, width) => {
                let per = hd / Q8_BLOCK;
                let q = &self.blocks[h * per..(h + 1) * per];
                k.dot_rows_q8_0(q, &r[at / Q8_BLOCK..], width / Q8_BLOCK, out);
            }
            KvRow::F16(r) => k.dot_rows_f16(rounded, &r[at..], width, out),
            KvRow::F32(r) => k.dot_rows_f32(rounded, &r[at..], width, out),
            _ => dot_rows_any(&self.floats[h * hd..(h + 1) * hd], keys, at, width, out),
        }
    }
}

/// Whether a head of `hd` elements at column `at` of rows `width` wide is whole q8_0 blocks.
fn whole_blocks(hd: usize, at: usize, width: usize) -> bool {
    hd % Q8_BLOCK == 0 && at % Q8_BLOCK == 0 && width % Q8_BLOCK == 0
}

/// `oh += p * (value row at element `at` of `values`)`, dequantized on the way.
fn add_value<K: CpuKernels + ?Sized>(k: &K, oh: &mut [f32], p: f32, values: KvRow<'_>, at: usize) {
    let hd = oh.len();
    match values {
        KvRow::F32(v) => k.axpy_f32(oh, p, &v[at..at + hd]),
        KvRow::F16(v) => k.axpy_f16(oh, p, &v[at..at + hd]),
        KvRow::Q8_0(v) if hd % Q8_BLOCK == 0 && at % Q8_BLOCK == 0 => {
            k.axpy_q8_0(oh, p, &v[at / Q8_BLOCK..(at + hd) / Q8_BLOCK]);
        }
        KvRow::Fp8(v) => k.axpy_fp8(oh, p, &v[at..at + hd]),
        KvRow::Q8_0(_) => axpy_any(oh, p, values, at),
    }
}

/// `out[j]` = dot(`q`, row `j` of `rows` from column `at`), reading each element as stored:
/// for the layouts no kernel covers (FP8 keys, q8_0 blocks that straddle heads).
pub(super) fn dot_rows_any(q: &[f32], rows: KvRow<'_>, at: usize, stride: usize, out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        let row = at + j * stride;
        *o = q
            .iter()
            .enumerate()
            .map(|(i, &x)| x * rows.get(row + i))
            .sum();
    }
}

/// `y[i] += a * rows[at + i]`, reading each element as stored (as [`dot_rows_any`]).
pub(super) fn axpy_any(y: &mut [f32], a: f32, rows: KvRow<'_>, at: usize) {
    for (i, y) in y.iter_mut().enumerate() {
        *y += a * rows.get(at + i);
    }
}
