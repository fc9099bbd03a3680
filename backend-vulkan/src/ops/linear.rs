//! Weights on the device, the matmul and the embedding lookup.

use tern_core::DType;
use tern_core::model::WeightView;

use super::{View, expect_len, grid, threads, word};
use crate::batch::Batch;
use crate::error::{Result, VkError};
use crate::gpu::Gpu;
use crate::memory::Buffer;
use crate::shaders::Shader;

/// A weight tensor uploaded once, in the file's own block layout (or dequantized).
pub struct DeviceWeight {
    pub(crate) buf: Buffer,
    pub dtype: DType,
    /// The format the file stores, whose activation rounding the matmul applies (the
    /// reference rounds activations to the partner format of the stored weights), so a
    /// weight dequantized at upload computes what the stored one would.
    pub stored: DType,
    pub rows: usize,
    pub cols: usize,
}

impl DeviceWeight {
    pub fn upload(gpu: &Gpu, w: &WeightView<'_>) -> Result<DeviceWeight> {
        let block = w.dtype.block_len();
        let expected = w
            .rows
            .checked_mul(w.cols / block)
            .and_then(|b| b.checked_mul(w.dtype.block_bytes()));
        if w.cols % block != 0 || expected != Some(w.data.len()) {
            return Err(VkError::shape(
                "weight upload",
                format!(
                    "`{}`: {} bytes for {} x {} {:?}",
                    w.name,
                    w.data.len(),
                    w.rows,
                    w.cols,
                    w.dtype
                ),
            ));
        }
        word("weight upload", w.data.len())?;
        Ok(DeviceWeight {
            buf: gpu.buffer_bytes(w.data)?,
            dtype: w.dtype,
            stored: w.dtype,
            rows: w.rows,
            cols: w.cols,
        })
    }

    /// Uploads `w`, dequantized to f32 by the caller from `stored`, keeping `stored`'s
    /// activation rounding.
    pub fn upload_dequantized(
        gpu: &Gpu,
        w: &WeightView<'_>,
        stored: DType,
    ) -> Result<DeviceWeight> {
        let mut weight = DeviceWeight::upload(gpu, w)?;
        weight.stored = stored;
        Ok(weight)
    }

    /// Bytes of device memory the weight takes.
    pub fn bytes(&self) -> u64 {
        self.buf.size()
    }

    /// The weight as f32 words, for kernels that read plain f32 rows (norms, biases).
    pub(crate) fn f32_view(&self, op: &'static str) -> Result<View<'_>> {
        if self.dtype != DType::F32 {
            return Err(VkError::Unsupported {
                op,
                what: format!("{:?} weights (only F32)", self.dtype),
            });
        }
        self.buf.view(0, self.rows * self.cols)
    }
}

fn matmul_shader(dtype: DType) -> Option<Shader> {
    Some(match dtype {
        DType::F32 => Shader::MatmulF32,
        DType::F16 => Shader::MatmulF16,
        DType::Q4_0 => Shader::MatmulQ4_0,
        DType::Q4_1 => Shader::MatmulQ4_1,
        DType::Q5_1 => Shader::MatmulQ5_1,
        DType::Q8_0 => Shader::MatmulQ8_0,
        DType::Q4_K => Shader::MatmulQ4K,
        DType::Q5_K => Shader::MatmulQ5K,
        DType::Q6_K => Shader::MatmulQ6K,
        _ => return None,
    })
}

/// The kernel that rounds activations as the reference does for weights stored as
/// `stored` and multiplied as `dtype`; `None` keeps them f32 (F32 weights, and BF16, which
/// has no rounding kernel). The K-quant kernels quantize their activations themselves.
fn round_shader(dtype: DType, stored: DType) -> Option<Shader> {
    if matches!(dtype, DType::Q4_K | DType::Q5_K | DType::Q6_K) {
        return None;
    }
    match stored {
        DType::F16 => Some(Shader::RoundF16),
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => {
            Some(Shader::RoundQ8_0)
        }
        DType::Q4_K | DType::Q5_K | DType::Q6_K => Some(Shader::RoundQ8K),
        _ => None,
    }
}

fn embed_shader(dtype: DType) -> Option<Shader> {
    Some(match dtype {
        DType::F32 => Shader::EmbedF32,
        DType::F16 => Shader::EmbedF16,
        DType::Q4_0 => Shader::EmbedQ4_0,
        DType::Q8_0 => Shader::EmbedQ8_0,
        DType::Q4_K => Shader::EmbedQ4K,
        DType::Q6_K => Shader::EmbedQ6K,
        _ => return None,
    })
}

impl Gpu {
    /// `out[t] = W x[t]` for every `w.cols`-wide row `t` of `x`. `scratch` (as long as `x`)
    /// receives `x` rounded to the activation format of W's type, as the reference rounds
    /// it (unused for F32 weights).
    pub fn matmul<'a>(
        &self,
        batch: &mut Batch,
        w: &'a DeviceWeight,
        x: View<'a>,
        scratch: View<'a>,
        out: View<'a>,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let shader = matmul_shader(w.dtype).ok_or_else(|| VkError::Unsupported {
            op: OP,
            what: format!("{:?} weights", w.dtype),
        })?;
        let round = round_shader(w.dtype, w.stored);
        if w.cols == 0 || x.len % w.cols != 0 {
            return Err(VkError::shape(
                OP,
                format!("x holds {} elements, not rows of {}", x.len, w.cols),
            ));
        }
        let tokens = x.len / w.cols;
        expect_len(OP, "out", &out, tokens * w.rows)?;
        let input = match round {
            Some(round) => {
                expect_len(OP, "scratch", &scratch, x.len)?;
                let k = self.kernel(round)?;
                let push = [
                    word(OP, x.len)?,
                    word(OP, x.offset)?,
                    word(OP, scratch.offset)?,
                ];
                let block = match round {
                    Shader::RoundQ8_0 => 32,
                    Shader::RoundQ8K => 256,
                    _ => 1,
                };
                batch.dispatch(
                    &k,
                    &[x.buf, scratch.buf],
                    &push,
                    threads(OP, x.len.div_ceil(block))?,
                )?;
                scratch
            }
            None => x,
        };
        let k = self.kernel(shader)?;
        let push = [
            word(OP, w.rows)?,
            word(OP, w.cols)?,
            0,
            word(OP, input.offset)?,
            word(OP, out.offset)?,
            // The unrounded activations: K-quant kernels quantize them, Q4_1 and Q5_1 take
            // their block sums from them; the other kernels ignore the word.
            word(OP, x.offset)?,
        ];
        let groups = grid(OP, w.rows.div_ceil(64), tokens)?;
        match w.dtype {
            DType::Q4_1 | DType::Q5_1 => {
                batch.dispatch(&k, &[&w.buf, input.buf, out.buf, x.buf], &push, groups)
            }
            DType::Q4_K | DType::Q5_K | DType::Q6_K => {
                batch.dispatch(&k, &[&w.buf, input.buf, out.buf], &push[..5], groups)
            }
            _ => batch.dispatch(&k, &[&w.buf, input.buf, out.buf], &push, groups),
        }
    }

    /// `out[t]` = row `tokens[t]` of `table` as f32; ids past the last row give zeros.
    pub fn embed<'a>(
        &self,
        batch: &mut Batch,
        table: &'a DeviceWeight,
        tokens: View<'a>,
        out: View<'a>,
    ) -> Result<()> {
        const OP: &str = "embed";
        let shader = embed_shader(table.dtype).ok_or_else(|| VkError::Unsupported {
            op: OP,
            what: format!("{:?} tables", table.dtype),
        })?;
        expect_len(OP, "out", &out, tokens.len * table.cols)?;
        let push = [
            word(OP, table.rows)?,
            word(OP, table.cols)?,
            word(OP, tokens.len)?,
            0,
            word(OP, tokens.offset)?,
            word(OP, out.offset)?,
        ];
        let k = self.kernel(shader)?;
        batch.dispatch(
            &k,
            &[&table.buf, tokens.buf, out.buf],
            &push,
            threads(OP, out.len)?,
        )
    }
}
