//! Row and element-wise ops: norms, bias, residual add, SwiGLU, RoPE, and the raster copy.

pub use tern_core::exec::device::rope_table;
use tern_core::exec::device::shapes::rope_rows;
use tern_core::model::{ModelConfig, RopeStyle};
use tern_core::region::{Region, validate};

use super::{Arg, Result, View, expect_len, groups, threads, word};
use crate::batch::Batch;
use crate::error::ClError;
use crate::gpu::Gpu;
use crate::programs::Source;

impl Gpu {
    fn norm(
        &self,
        op: &'static str,
        batch: &mut Batch,
        x: View<'_>,
        weight: View<'_>,
        eps: f32,
        out: View<'_>,
    ) -> Result<()> {
        let cols = weight.len;
        if cols == 0 || x.len % cols != 0 {
            return Err(ClError::shape(
                op,
                format!("{} elements, not rows of {cols}", x.len),
            ));
        }
        expect_len(op, "out", &out, x.len)?;
        let rows = x.len / cols;
        word(op, x.offset + x.len)?;
        word(op, weight.offset + weight.len)?;
        word(op, out.offset + out.len)?;
        let args = [
            Arg::Buf(x.buf),
            Arg::Buf(weight.buf),
            Arg::Buf(out.buf),
            Arg::U32(word(op, rows)?),
            Arg::U32(word(op, cols)?),
            Arg::U32(word(op, x.offset)?),
            Arg::U32(word(op, weight.offset)?),
            Arg::U32(word(op, out.offset)?),
            Arg::F32(eps),
        ];
        // One work-group per row; the kernel skips the one group of an empty `x`.
        self.record(batch, Source::RmsNorm, &args, groups(rows.max(1), 1, 1))
    }

    /// Normalises each `weight.len`-wide row of `x` into `out` (RMS norm times `weight`, one
    /// row of f32).
    pub fn rms_norm(
        &self,
        batch: &mut Batch,
        x: View<'_>,
        weight: View<'_>,
        eps: f32,
        out: View<'_>,
    ) -> Result<()> {
        self.norm("rms_norm", batch, x, weight, eps, out)
    }

    /// Normalises every `weight.len`-wide head of `x` in place (qwen3's q/k norm).
    pub fn head_norm(
        &self,
        batch: &mut Batch,
        x: View<'_>,
        weight: View<'_>,
        eps: f32,
    ) -> Result<()> {
        self.norm("head_norm", batch, x, weight, eps, x)
    }

    fn binary(
        &self,
        op: &'static str,
        batch: &mut Batch,
        x: View<'_>,
        y: View<'_>,
        period: usize,
        code: u32,
    ) -> Result<()> {
        let args = [
            Arg::Buf(x.buf),
            Arg::Buf(y.buf),
            Arg::U32(word(op, x.len)?),
            Arg::U32(word(op, x.offset)?),
            Arg::U32(word(op, y.offset)?),
            Arg::U32(word(op, period)?),
            Arg::U32(code),
        ];
        self.record(batch, Source::Binary, &args, threads(x.len))
    }

    /// `x += y`.
    pub fn add(&self, batch: &mut Batch, x: View<'_>, y: View<'_>) -> Result<()> {
        expect_len("add", "y", &y, x.len)?;
        self.binary("add", batch, x, y, 0, 0)
    }

    /// Adds `bias` (one row of f32) to every row of `x`.
    pub fn add_bias(&self, batch: &mut Batch, x: View<'_>, bias: View<'_>) -> Result<()> {
        const OP: &str = "add_bias";
        if bias.len == 0 || x.len % bias.len != 0 {
            return Err(ClError::shape(
                OP,
                format!("{} elements, not rows of {}", x.len, bias.len),
            ));
        }
        self.binary(OP, batch, x, bias, bias.len, 0)
    }

    /// `gate = silu(gate) * up`.
    pub fn swiglu(&self, batch: &mut Batch, gate: View<'_>, up: View<'_>) -> Result<()> {
        expect_len("swiglu", "up", &up, gate.len)?;
        self.binary("swiglu", batch, gate, up, 0, 1)
    }

    /// Rotates every head of every token row of `x` (rows of `n_heads * head_dim`), with
    /// `table` from
    /// [`rope_table`] for the rows' positions.
    pub fn rope(
        &self,
        batch: &mut Batch,
        x: View<'_>,
        n_heads: usize,
        c: &ModelConfig,
        table: View<'_>,
    ) -> Result<()> {
        const OP: &str = "rope";
        let half = c.rope_dim / 2;
        let tokens = rope_rows(c, n_heads, x.len, table.offset, table.len)
            .map_err(|why| ClError::shape(OP, why))?;
        word(OP, x.offset + x.len)?;
        word(OP, table.offset + table.len)?;
        let style = match c.rope_style {
            RopeStyle::AdjacentPairs => 0,
            RopeStyle::HalfSplit => 1,
        };
        let n = tokens * n_heads * half;
        word(OP, n)?;
        let args = [
            Arg::Buf(x.buf),
            Arg::Buf(table.buf),
            Arg::U32(word(OP, tokens)?),
            Arg::U32(word(OP, n_heads)?),
            Arg::U32(word(OP, c.head_dim)?),
            Arg::U32(word(OP, half)?),
            Arg::U32(style),
            Arg::U32(word(OP, x.offset)?),
            Arg::U32(word(OP, table.offset / 2)?),
        ];
        self.record(batch, Source::Rope, &args, threads(n))
    }

    /// Copies each region from `src` to `dst` (32-bit elements), in order. The regions are
    /// checked against both views first. Within one region the steps run in parallel, so a
    /// region must not write one destination element twice (a later region may overwrite an
    /// earlier one: the queue runs them in order).
    pub fn raster(
        &self,
        batch: &mut Batch,
        src: View<'_>,
        dst: View<'_>,
        regions: &[Region],
    ) -> Result<()> {
        const OP: &str = "raster";
        validate(regions, src.len, dst.len).map_err(|e| ClError::shape(OP, format!("{e:?}")))?;
        word(OP, src.offset + src.len)?;
        word(OP, dst.offset + dst.len)?;
        for r in regions {
            if r.is_empty() {
                continue;
            }
            let n = r.elements().unwrap_or(usize::MAX);
            word(OP, n)?;
            let mut args = vec![
                Arg::Buf(src.buf),
                Arg::Buf(dst.buf),
                Arg::U32(word(OP, src.offset + r.src_offset)?),
                Arg::U32(word(OP, dst.offset + r.dst_offset)?),
            ];
            for v in r.size.iter().chain(&r.src_stride).chain(&r.dst_stride) {
                args.push(Arg::U32(word(OP, *v)?));
            }
            self.record(batch, Source::Raster, &args, threads(n))?;
        }
        Ok(())
    }
}
