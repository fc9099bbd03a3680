//! The KV cache in device memory, storing rows into it, and attention over it.

pub use tern_core::exec::device::AttentionShape;
use tern_core::exec::device::KvShape;

use super::{View, expect_len, threads, word};
use crate::batch::Batch;
use crate::error::{Result, VkError};
use crate::gpu::Gpu;
use crate::memory::Buffer;
use crate::shaders::Shader;

/// How cache rows are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvFormat {
    /// Four bytes per element, exactly what the step computed.
    F32,
    /// Rounded to nearest even, as `half` and the reference's f16 cache round.
    F16,
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
    /// buffers of their own. Errs when the element count overflows or does not fit the kernels'
    /// 32-bit indexing.
    pub fn new(
        gpu: &Gpu,
        n_layer: usize,
        n_ctx: usize,
        width: usize,
        format: KvFormat,
    ) -> Result<DeviceKv> {
        let elements = n_layer
            .checked_mul(n_ctx)
            .and_then(|n| n.checked_mul(width))
            .ok_or_else(|| VkError::shape("kv cache", "size overflows"))?;
        word("kv cache", elements)?;
        let bytes = match format {
            KvFormat::F32 => elements as u64 * 4,
            KvFormat::F16 => elements as u64 * 2,
        };
        Ok(DeviceKv {
            keys: gpu.buffer(bytes)?,
            values: gpu.buffer(bytes)?,
            n_layer,
            n_ctx,
            width,
            format,
        })
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
    /// batch runs: a recording serves every step. Rows that would pass the cache's end are
    /// not written; the caller checks positions before it submits.
    pub fn kv_store<'a>(
        &self,
        batch: &mut Batch,
        kv: &DeviceKv,
        layer: usize,
        at: View<'a>,
        k: View<'a>,
        v: View<'a>,
    ) -> Result<()> {
        const OP: &str = "kv_store";
        kv.shape()
            .store_rows(layer, k.len, v.len)
            .map_err(|why| VkError::shape(OP, why))?;
        expect_len(OP, "position", &at, 1)?;
        let layer_off = kv.row_start(layer, 0);
        let (shader, threads_needed) = match kv.format {
            KvFormat::F32 => (Shader::KvStoreF32, k.len),
            // One thread per word touched, edge words included (a row may start mid-word).
            KvFormat::F16 => (Shader::KvStoreF16, k.len / 2 + 2),
        };
        let kernel = self.kernel(shader)?;
        for (src, cache) in [(k, &kv.keys), (v, &kv.values)] {
            let push = [
                word(OP, k.len)?,
                word(OP, src.offset)?,
                word(OP, layer_off)?,
                word(OP, kv.width)?,
                word(OP, kv.n_ctx * kv.width)?,
                word(OP, at.offset)?,
            ];
            batch.dispatch(
                &kernel,
                &[src.buf, cache, at.buf],
                &push,
                threads(OP, threads_needed)?,
            )?;
        }
        Ok(())
    }

    /// Causal grouped-query attention of the query rows in `q` (positions `first..`, rows of
    /// `n_head * head_dim`) over positions `0..=first + t` of `layer`, `first` being the word
    /// `at` holds when the batch runs. `scores` is scratch of `rows * n_head * kv.n_ctx`
    /// floats. A step that would pass the cache's end writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn attention<'a>(
        &self,
        batch: &mut Batch,
        q: View<'a>,
        kv: &DeviceKv,
        layer: usize,
        shape: AttentionShape,
        at: View<'a>,
        scores: View<'a>,
        out: View<'a>,
    ) -> Result<()> {
        const OP: &str = "attention";
        let rows = kv
            .shape()
            .attention_rows(shape, layer, q.len)
            .map_err(|why| VkError::shape(OP, why))?;
        let AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
        } = shape;
        expect_len(OP, "position", &at, 1)?;
        expect_len(OP, "out", &out, q.len)?;
        expect_len(OP, "scores", &scores, rows * n_head * kv.n_ctx)?;
        if n_head > 65535 || rows > 65535 {
            return Err(VkError::shape(OP, "more than 65535 heads or rows"));
        }
        let scale = 1.0 / (head_dim as f32).sqrt();
        let push = [
            word(OP, n_head)?,
            word(OP, n_head / n_head_kv)?,
            word(OP, head_dim)?,
            word(OP, kv.width)?,
            word(OP, kv.row_start(layer, 0))?,
            word(OP, at.offset)?,
            word(OP, q.offset)?,
            word(OP, out.offset)?,
            word(OP, scores.offset)?,
            word(OP, kv.n_ctx)?,
            scale.to_bits(),
        ];
        let shader = match kv.format {
            KvFormat::F32 => Shader::AttentionF32,
            KvFormat::F16 => Shader::AttentionF16,
        };
        let k = self.kernel(shader)?;
        batch.dispatch(
            &k,
            &[q.buf, &kv.keys, &kv.values, scores.buf, out.buf, at.buf],
            &push,
            [n_head as u32, rows as u32, 1],
        )
    }
}
