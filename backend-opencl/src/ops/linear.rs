//! Weights on the device, the matmul and the embedding lookup.

use tern_core::DType;
pub use tern_core::exec::device::ROW_GROUP;
use tern_core::exec::device::weights::{check_weight_bytes, interleave_rows};
use tern_core::model::WeightView;

use super::{Arg, Result, View, expect_len, groups, planar, threads, word};
use crate::batch::Batch;
use crate::error::ClError;
use crate::gpu::{Buffer, Gpu};
use crate::programs::Source;

/// How a weight's blocks lie in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// As the file stores them, row after row: embedding tables (one row read per token),
    /// norm weights and biases.
    Rows,
    /// Matrices for the matmul kernels: rows in groups of [`ROW_GROUP`], block `b` of the
    /// group's rows side by side, so the work-items of a work-group (one row each) read
    /// neighbouring bytes at every step (coalesced loads on a GPU).
    Interleaved,
    /// Matrices for the fast matmuls ([`Precision::Fast`]): a structure of arrays, all the
    /// codes (as 32-bit words) then all the f16 scales (with Q4_1's minimums), each plane
    /// with the rows of a tile of [`ROW_GROUP`] side by side word by word, so that
    /// work-items on neighbouring rows load neighbouring words and decode whole words of
    /// codes at once (see `ops/planar.rs`).
    Planar,
}

/// What a matrix's matmuls compute: the reference backend's bits, or a faster sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// The reference backend's exact bits: one work-item per (row, token) adds the products
    /// in the reference's order ([`Layout::Interleaved`]). On random-weight models a last-bit
    /// difference can cross a rounding step of a later quantized activation, so this is what
    /// comparisons with the CPU backends rely on.
    #[default]
    Reference,
    /// A GEMV for decode steps and a tiled GEMM for prefill, on weights repacked into
    /// [`Layout::Planar`]: the activations are rounded as the reference rounds them, the sums
    /// reassociated, within the bound `ops/planar.rs` derives (about `(n + 3 n/32) 2^-24`
    /// of `Σ |w x|` for a row of `n` columns). Only Q4_0, Q4_1 and Q8_0 matrices
    /// ([`FAST_FORMATS`](super::FAST_FORMATS)) have these kernels: every other format (F32,
    /// F16, Q5_1, the K-quants, formats dequantized at upload) keeps the reference kernels
    /// and reports [`Precision::Reference`].
    Fast,
}

const _: () = assert!(ROW_GROUP == super::GROUP);

/// A weight tensor uploaded once (dequantized to f32 where no kernel reads its format).
pub struct DeviceWeight {
    pub(crate) buf: Buffer,
    /// How the blocks lie in `buf`: as the file stores them, or repacked for the matmuls.
    pub layout: Layout,
    /// What its matmuls compute: [`Precision::Fast`] only in [`Layout::Planar`].
    pub precision: Precision,
    /// Encoding of the bytes on the device: the file's type, or F32 for a weight dequantized
    /// at upload.
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
        check_weight_bytes(w).map_err(|why| ClError::shape("weight upload", why))?;
        Ok(DeviceWeight {
            buf: gpu.buffer_from(w.data)?,
            layout: Layout::Rows,
            precision: Precision::Reference,
            dtype: w.dtype,
            stored: w.dtype,
            rows: w.rows,
            cols: w.cols,
        })
    }

    /// Uploads `w` repacked for the reference matmul kernels ([`Layout::Interleaved`]).
    pub fn matrix(gpu: &Gpu, w: &WeightView<'_>) -> Result<DeviceWeight> {
        DeviceWeight::matrix_in(gpu, w, Precision::Reference)
    }

    /// Uploads `w` repacked for the matmul kernels of `precision`: [`Layout::Planar`] for
    /// [`Precision::Fast`] where its format has fast kernels (and the device the few KiB of
    /// local memory they stage activations in), else [`Layout::Interleaved`] (the reference
    /// kernels, whatever was asked). [`DeviceWeight::precision`] says which it got.
    pub fn matrix_in(gpu: &Gpu, w: &WeightView<'_>, precision: Precision) -> Result<DeviceWeight> {
        check_weight_bytes(w).map_err(|why| ClError::shape("weight upload", why))?;
        let planar = match precision {
            Precision::Fast if gpu.info().local_memory >= planar::LOCAL_BYTES => planar::repack(w),
            _ => None,
        };
        let (bytes, layout, precision) = match planar {
            Some(bytes) => (bytes, Layout::Planar, Precision::Fast),
            None => (
                interleave_rows(w),
                Layout::Interleaved,
                Precision::Reference,
            ),
        };
        Ok(DeviceWeight {
            buf: gpu.buffer_from(&bytes)?,
            layout,
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
        self.buf.bytes() as u64
    }

    /// The weight as f32 words, for kernels that read plain f32 rows (norms, biases).
    pub fn f32_view(&self, op: &'static str) -> Result<View<'_>> {
        self.expect_layout(op, Layout::Rows)?;
        if self.dtype != DType::F32 {
            return Err(ClError::Unsupported {
                op,
                what: format!("{:?} weights (only F32)", self.dtype),
            });
        }
        self.buf.view(0, self.rows * self.cols)
    }

    fn expect_layout(&self, op: &'static str, layout: Layout) -> Result<()> {
        if self.layout == layout {
            Ok(())
        } else {
            Err(ClError::shape(
                op,
                format!(
                    "weights in the {:?} layout, the kernel reads {layout:?}",
                    self.layout
                ),
            ))
        }
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

fn matmul_source(dtype: DType) -> Option<Source> {
    match dtype {
        DType::Q4_K | DType::Q5_K | DType::Q6_K => Some(Source::MatmulKQuant(dtype)),
        _ if MATMUL_FORMATS.contains(&dtype) => Some(Source::Matmul(dtype)),
        _ => None,
    }
}

/// The kernel that rounds activations as the reference does for weights stored as
/// `stored`, with the elements it rounds together; `None` keeps them f32 (F32 weights, and
/// BF16, which has no rounding kernel). The K-quant kernels quantize their activations
/// themselves (and K-quants are never dequantized at upload).
fn round_source(stored: DType) -> Option<(Source, usize)> {
    match stored {
        DType::F16 => Some((Source::RoundActivations(DType::F16), 1)),
        DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => {
            Some((Source::RoundActivations(DType::Q8_0), 32))
        }
        _ => None,
    }
}

/// `a * b`, or a shape error where it overflows.
fn product(op: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| ClError::shape(op, format!("{a} x {b} elements")))
}

/// Checks that `view` lies inside its buffer, at indices a kernel's 32-bit arithmetic
/// reaches.
fn inside(op: &'static str, what: &str, view: &View<'_>) -> Result<()> {
    match view.offset.checked_add(view.len) {
        Some(end) if end <= view.buf.words() => word(op, end).map(|_| ()),
        _ => Err(ClError::shape(
            op,
            format!(
                "{what}: words {}..+{} outside a {}-word buffer",
                view.offset,
                view.len,
                view.buf.words()
            ),
        )),
    }
}

impl Gpu {
    /// `out[t] = W x[t]` for every `w.cols`-wide row `t` of `x`. `scratch` (as long as `x`)
    /// receives `x` rounded to the activation format of W's type, as the reference rounds
    /// it (unused for F32 and K-quant weights; codes and scales in [`Layout::Planar`]).
    /// W's layout picks the kernels: [`Layout::Interleaved`] the reference's, one work-item
    /// per (row, token); [`Layout::Planar`] a GEMV for one token, a tiled GEMM for more.
    pub fn matmul(
        &self,
        batch: &mut Batch,
        w: &DeviceWeight,
        x: View<'_>,
        scratch: View<'_>,
        out: View<'_>,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let source = matmul_source(w.dtype).ok_or_else(|| ClError::Unsupported {
            op: OP,
            what: format!("{:?} weights", w.dtype),
        })?;
        if w.layout == Layout::Rows {
            return Err(ClError::shape(
                OP,
                "weights in the Rows layout, the matmuls read Interleaved or Planar",
            ));
        }
        if w.cols == 0 || x.len % w.cols != 0 {
            return Err(ClError::shape(
                OP,
                format!("x holds {} elements, not rows of {}", x.len, w.cols),
            ));
        }
        let tokens = x.len / w.cols;
        expect_len(OP, "out", &out, product(OP, tokens, w.rows)?)?;
        let round = round_source(w.stored);
        if round.is_some() {
            expect_len(OP, "scratch", &scratch, x.len)?;
            inside(OP, "scratch", &scratch)?;
        }
        inside(OP, "x", &x)?;
        inside(OP, "out", &out)?;
        if out.len == 0 {
            // No rows or no tokens: nothing to compute (and OpenCL 1.2 refuses empty ranges).
            return Ok(());
        }
        if w.layout == Layout::Planar {
            return self.planar_matmul(batch, w, x, scratch, out, tokens);
        }
        let (rows, cols) = (word(OP, w.rows)?, word(OP, w.cols)?);
        // Built before anything is recorded, so a failed build leaves the batch as it was.
        self.built(source)?;
        let input = match round {
            Some((round, block)) => {
                let args = [
                    Arg::Buf(x.buf),
                    Arg::Buf(scratch.buf),
                    Arg::U32(word(OP, x.len)?),
                    Arg::U32(word(OP, x.offset)?),
                    Arg::U32(word(OP, scratch.offset)?),
                ];
                self.record(batch, round, &args, threads(x.len.div_ceil(block)))?;
                scratch
            }
            None => x,
        };
        let mut args = vec![
            Arg::Buf(&w.buf),
            Arg::Buf(input.buf),
            Arg::Buf(out.buf),
            Arg::U32(rows),
            Arg::U32(cols),
            Arg::U32(word(OP, input.offset)?),
            Arg::U32(word(OP, out.offset)?),
        ];
        if matches!(w.dtype, DType::Q4_1 | DType::Q5_1) {
            // Their block sums come from the unrounded activations.
            args.extend([Arg::Buf(x.buf), Arg::U32(word(OP, x.offset)?)]);
        }
        let range = groups(w.rows.div_ceil(ROW_GROUP), 1, tokens);
        self.record(batch, source, &args, range)
    }

    /// `out[t]` = row `tokens[t]` of `table` as f32; ids past the last row give zeros.
    pub fn embed(
        &self,
        batch: &mut Batch,
        table: &DeviceWeight,
        tokens: View<'_>,
        out: View<'_>,
    ) -> Result<()> {
        const OP: &str = "embed";
        if !EMBED_FORMATS.contains(&table.dtype) {
            return Err(ClError::Unsupported {
                op: OP,
                what: format!("{:?} tables", table.dtype),
            });
        }
        table.expect_layout(OP, Layout::Rows)?;
        expect_len(OP, "out", &out, product(OP, tokens.len, table.cols)?)?;
        inside(OP, "tokens", &tokens)?;
        inside(OP, "out", &out)?;
        let args = [
            Arg::Buf(&table.buf),
            Arg::Buf(tokens.buf),
            Arg::Buf(out.buf),
            Arg::U32(word(OP, table.rows)?),
            Arg::U32(word(OP, table.cols)?),
            Arg::U32(word(OP, tokens.len)?),
            Arg::U32(word(OP, tokens.offset)?),
            Arg::U32(word(OP, out.offset)?),
        ];
        self.record(batch, Source::Embed(table.dtype), &args, threads(out.len))
    }
}
