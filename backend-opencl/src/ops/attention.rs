//! The KV cache in device memory, storing rows into it, and attention over it.

pub use tern_core::exec::device::AttentionShape;
use tern_core::exec::device::KvShape;

use super::{Arg, Result, View, expect_len, groups, threads, word};
use crate::batch::Batch;
use crate::error::ClError;
use crate::gpu::{Buffer, Gpu};
use crate::programs::Source;

/// Zeros written per copy while a cache is cleared, so a large cache needs no host buffer of
/// its own size.
const ZERO_CHUNK: usize = 1 << 20;

/// How cache rows are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvFormat {
    /// Four bytes per element, exactly what the step computed.
    F32,
    /// Rounded to nearest even, as `half` and the reference's f16 cache round.
    F16,
}

impl KvFormat {
    /// Bytes per stored element.
    fn bytes(self) -> usize {
        match self {
            KvFormat::F32 => 4,
            KvFormat::F16 => 2,
        }
    }

    /// Whether the kernels' f16 variant reads and writes this format.
    fn f16(self) -> bool {
        self == KvFormat::F16
    }
}

/// Keys and values laid out `[layer][pos][width]`, as core's `DenseKv`.
pub struct DeviceKv {
    /// Every layer's key rows, `n_layer * n_ctx * width` elements in `format`.
    pub keys: Buffer,
    /// Every layer's value rows, laid out as `keys`.
    pub values: Buffer,
    /// Layers the cache covers.
    pub n_layer: usize,
    /// Positions per layer: the longest context the cache holds.
    pub n_ctx: usize,
    /// Elements per row: every key (or value) head of one position, `n_head_kv * head_dim`.
    pub width: usize,
    /// How each element is stored (4 or 2 bytes).
    pub format: KvFormat,
}

impl DeviceKv {
    /// A zero-filled cache of `n_layer` x `n_ctx` rows of `width` elements, keys and values in
    /// buffers of their own: zeros, so that reading a position never written is defined. Errs
    /// when the element count overflows or does not fit the kernels' 32-bit indexing.
    pub fn new(
        gpu: &Gpu,
        n_layer: usize,
        n_ctx: usize,
        width: usize,
        format: KvFormat,
    ) -> Result<DeviceKv> {
        const OP: &str = "kv cache";
        let elements = n_layer
            .checked_mul(n_ctx)
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| ClError::shape(OP, "size overflows"))?;
        word(OP, elements)?;
        let bytes = elements
            .checked_mul(format.bytes())
            .ok_or_else(|| ClError::shape(OP, "size overflows"))?;
        let zeros = vec![0u8; bytes.min(ZERO_CHUNK)];
        let cleared = || -> Result<Buffer> {
            let buffer = gpu.buffer(bytes)?;
            for at in (0..bytes).step_by(ZERO_CHUNK) {
                gpu.write(&buffer, at, &zeros[..(bytes - at).min(ZERO_CHUNK)])?;
            }
            Ok(buffer)
        };
        Ok(DeviceKv {
            keys: cleared()?,
            values: cleared()?,
            n_layer,
            n_ctx,
            width,
            format,
        })
    }

    /// Device memory the cache takes: keys and values together.
    pub fn bytes(&self) -> u64 {
        (self.keys.bytes() + self.values.bytes()) as u64
    }

    /// The cache's extent, whose rules the ops check.
    pub fn shape(&self) -> KvShape {
        KvShape {
            n_layer: self.n_layer,
            n_ctx: self.n_ctx,
            width: self.width,
        }
    }

    /// Element index of row `pos` of `layer`.
    fn row_start(&self, layer: usize, pos: usize) -> usize {
        (layer * self.n_ctx + pos) * self.width
    }
}

impl Gpu {
    /// Stores the key and value rows of the step's positions `first..first + n` of `layer`
    /// (`n` rows of `kv.width` in `k` and `v`), `first` being the word `at` holds when the
    /// batch runs: a batch serves every step. Rows that would pass the cache's end are not
    /// written; the caller checks positions before it submits.
    pub fn kv_store(
        &self,
        batch: &mut Batch,
        kv: &DeviceKv,
        layer: usize,
        at: View<'_>,
        k: View<'_>,
        v: View<'_>,
    ) -> Result<()> {
        const OP: &str = "kv_store";
        kv.shape()
            .store_rows(layer, k.len, v.len)
            .map_err(|why| ClError::shape(OP, why))?;
        expect_len(OP, "position", &at, 1)?;
        for view in [k, v, at] {
            word(OP, view.offset + view.len)?;
        }
        let source = Source::KvStore {
            f16: kv.format.f16(),
        };
        for (src, cache) in [(k, &kv.keys), (v, &kv.values)] {
            let args = [
                Arg::Buf(src.buf),
                Arg::Buf(cache),
                Arg::Buf(at.buf),
                Arg::U32(word(OP, k.len)?),
                Arg::U32(word(OP, src.offset)?),
                Arg::U32(word(OP, kv.row_start(layer, 0))?),
                Arg::U32(word(OP, kv.width)?),
                Arg::U32(word(OP, kv.n_ctx * kv.width)?),
                Arg::U32(word(OP, at.offset)?),
            ];
            self.record(batch, source, &args, threads(k.len))?;
        }
        Ok(())
    }

    /// Causal grouped-query attention of the query rows in `q` (positions `first..`, rows of
    /// `n_head * head_dim`) over positions `0..=first + t` of `layer`, `first` being the word
    /// `at` holds when the batch runs. `scores` is scratch of `rows * n_head * kv.n_ctx`
    /// floats. A step that would pass the cache's end writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        batch: &mut Batch,
        q: View<'_>,
        kv: &DeviceKv,
        layer: usize,
        shape: AttentionShape,
        at: View<'_>,
        scores: View<'_>,
        out: View<'_>,
    ) -> Result<()> {
        const OP: &str = "attention";
        let rows = kv
            .shape()
            .attention_rows(shape, layer, q.len)
            .map_err(|why| ClError::shape(OP, why))?;
        let AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
        } = shape;
        expect_len(OP, "position", &at, 1)?;
        expect_len(OP, "out", &out, q.len)?;
        expect_len(OP, "scores", &scores, rows * n_head * kv.n_ctx)?;
        for view in [q, at, scores, out] {
            word(OP, view.offset + view.len)?;
        }
        if rows == 0 {
            return Ok(());
        }
        let scale = 1.0 / (head_dim as f32).sqrt();
        let args = [
            Arg::Buf(q.buf),
            Arg::Buf(&kv.keys),
            Arg::Buf(&kv.values),
            Arg::Buf(scores.buf),
            Arg::Buf(out.buf),
            Arg::Buf(at.buf),
            Arg::U32(word(OP, n_head)?),
            Arg::U32(word(OP, n_head / n_head_kv)?),
            Arg::U32(word(OP, head_dim)?),
            Arg::U32(word(OP, kv.width)?),
            Arg::U32(word(OP, kv.row_start(layer, 0))?),
            Arg::U32(word(OP, at.offset)?),
            Arg::U32(word(OP, q.offset)?),
            Arg::U32(word(OP, out.offset)?),
            Arg::U32(word(OP, scores.offset)?),
            Arg::U32(word(OP, kv.n_ctx)?),
            Arg::F32(scale),
        ];
        let source = Source::Attention {
            f16: kv.format.f16(),
        };
        // One work-group per (head, token row).
        self.record(batch, source, &args, groups(n_head, rows, 1))
    }
}
