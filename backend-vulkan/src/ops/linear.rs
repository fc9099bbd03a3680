//! Weights on the device, the matmul and the embedding lookup.

use tern_core::DType;
pub use tern_core::exec::device::ROW_GROUP;
use tern_core::exec::device::weights::{check_weight_bytes, interleave_rows};
use tern_core::model::WeightView;

use super::{View, expect_len, grid, threads, word};
use crate::batch::Batch;
use crate::error::{Result, VkError};
use crate::gpu::Gpu;
use crate::memory::Buffer;
use crate::shaders::Shader;

/// How a weight's blocks lie in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// As the file stores them, row after row: embedding tables (one row read per token),
    /// norm weights and biases.
    Rows,
    /// Matrices for the matmul kernels: rows in groups of [`ROW_GROUP`], block `b` of the
    /// group's rows side by side, so the threads of a workgroup (one row each) read
    /// neighbouring bytes at every step (coalesced loads on a GPU).
    Interleaved,
}

/// How a matmul computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// The reference's arithmetic, bit for bit.
    #[default]
    Reference,
    /// f16 products and block sums, f32 accumulation (W4A16 for Q4_0, W8A16 for Q8_0,
    /// W16A16 for F16), on devices with shaderFloat16; other formats stay as the reference.
    F16,
}

/// A weight tensor uploaded once (dequantized to f32 where no kernel reads its format).
pub struct DeviceWeight {
    pub(crate) buf: Buffer,
    /// How the blocks lie in `buf`: as the file stores them, or interleaved for the matmuls.
    pub layout: Layout,
    /// The arithmetic the matmul uses; [`Precision::F16`] only where the device and the
    /// format allow it.
    pub precision: Precision,
    /// Encoding of the bytes on the device: the file's type, or F32 for a weight dequantized at
    /// upload.
    pub dtype: DType,
    /// The format the file stores, whose activation rounding the matmul applies (the
    /// reference rounds activations to the partner format of the stored weights), so a
    /// weight dequantized at upload computes what the stored one would.
    pub stored: DType,
    /// Rows of the matrix: a matmul's outputs, or an embedding table's tokens.
    pub rows: usize,
    /// Elements per row: a matmul's inputs; a whole number of `dtype` blocks.
    pub cols: usize,
}

impl DeviceWeight {
    /// Uploads `w` in the file's layout ([`Layout::Rows`]): for embedding tables, norm
    /// weights and biases.
    pub fn rows(gpu: &Gpu, w: &WeightView<'_>) -> Result<DeviceWeight> {
        check_weight_bytes(w).map_err(|why| VkError::shape("weight upload", why))?;
        Ok(DeviceWeight {
            buf: gpu.buffer_bytes(w.data)?,
            layout: Layout::Rows,
            precision: Precision::Reference,
            dtype: w.dtype,
            stored: w.dtype,
            rows: w.rows,
            cols: w.cols,
        })
    }

    /// Uploads `w` repacked for the matmul kernels ([`Layout::Interleaved`]).
    pub fn matrix(gpu: &Gpu, w: &WeightView<'_>) -> Result<DeviceWeight> {
        DeviceWeight::matrix_in(gpu, w, Precision::Reference)
    }

    /// [`DeviceWeight::matrix`], multiplied in `precision` where the format and the device
    /// allow it (F16 for Q4_0, Q8_0 and F16 on a device with shaderFloat16).
    pub fn matrix_in(gpu: &Gpu, w: &WeightView<'_>, precision: Precision) -> Result<DeviceWeight> {
        check_weight_bytes(w).map_err(|why| VkError::shape("weight upload", why))?;
        let precision = match precision {
            Precision::F16
                if gpu.info().shader_float16
                    && matches!(w.dtype, DType::F16 | DType::Q4_0 | DType::Q8_0) =>
            {
                Precision::F16
            }
            _ => Precision::Reference,
        };
        let packed = interleave_rows(w);
        Ok(DeviceWeight {
            buf: gpu.buffer_bytes(&packed)?,
            layout: Layout::Interleaved,
            precision,
            dtype: w.dtype,
            stored: w.dtype,
            rows: w.rows,
            cols: w.cols,
        })
    }

    /// A matrix dequantized to f32 by the caller from `stored`, keeping `stored`'s
    /// activation rounding.
    pub fn dequantized_matrix(
        gpu: &Gpu,
        w: &WeightView<'_>,
        stored: DType,
    ) -> Result<DeviceWeight> {
        let mut weight = DeviceWeight::matrix(gpu, w)?;
        weight.stored = stored;
        Ok(weight)
    }

    /// Bytes of device memory the weight takes.
    pub fn bytes(&self) -> u64 {
        self.buf.size()
    }

    fn expect_layout(&self, op: &'static str, layout: Layout) -> Result<()> {
        if self.layout == layout {
            Ok(())
        } else {
            Err(VkError::shape(
                op,
                format!(
                    "weights in the {:?} layout, the kernel reads {layout:?}",
                    self.layout
                ),
            ))
        }
    }
}

impl DeviceWeight {
    /// The weight as f32 words, for kernels that read plain f32 rows (norms, biases).
    pub(crate) fn f32_view(&self, op: &'static str) -> Result<View<'_>> {
        self.expect_layout(op, Layout::Rows)?;
        if self.dtype != DType::F32 {
            return Err(VkError::Unsupported {
                op,
                what: format!("{:?} weights (only F32)", self.dtype),
            });
        }
        self.buf.view(0, self.rows * self.cols)
    }
}

/// Weight formats the matmul kernels read as stored.
pub const MATMUL_FORMATS: [DType; 9] = [
    DType::F32,
    DType::F16,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
];

/// Table formats the embedding kernel reads as stored.
pub const EMBED_FORMATS: [DType; 6] = [
    DType::F32,
    DType::F16,
    DType::Q4_0,
    DType::Q8_0,
    DType::Q4_K,
    DType::Q6_K,
];

fn matmul_shader(dtype: DType, precision: Precision) -> Option<Shader> {
    if precision == Precision::F16 {
        return Some(match dtype {
            DType::F16 => Shader::MatmulF16A16,
            DType::Q4_0 => Shader::MatmulQ4_0A16,
            DType::Q8_0 => Shader::MatmulQ8_0A16,
            _ => return None,
        });
    }
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
/// `stored`; `None` keeps them f32 (F32 weights, and BF16, which has no rounding kernel).
/// The K-quant kernels quantize their activations themselves (and K-quants are never
/// dequantized at upload).
fn round_shader(stored: DType) -> Option<Shader> {
    match stored {
        DType::F16 => Some(Shader::RoundF16),
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => {
            Some(Shader::RoundQ8_0)
        }
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
        let shader = matmul_shader(w.dtype, w.precision).ok_or_else(|| VkError::Unsupported {
            op: OP,
            what: format!("{:?} weights", w.dtype),
        })?;
        w.expect_layout(OP, Layout::Interleaved)?;
        let round = match w.precision {
            Precision::F16 => Some(Shader::RoundF16),
            Precision::Reference => round_shader(w.stored),
        };
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
        table.expect_layout(OP, Layout::Rows)?;
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
