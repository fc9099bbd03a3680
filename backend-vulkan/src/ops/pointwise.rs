//! Row and element-wise ops: norms, bias, residual add, SwiGLU, RoPE, and the raster copy.

pub use tern_core::exec::device::rope_table;
use tern_core::exec::device::shapes::rope_rows;
use tern_core::model::{ModelConfig, RopeStyle};
use tern_core::region::{Region, validate};

use super::{View, expect_len, grid, threads, word};
use crate::batch::Batch;
use crate::error::{Result, VkError};
use crate::gpu::Gpu;
use crate::ops::DeviceWeight;
use crate::shaders::Shader;

impl Gpu {
    fn norm<'a>(
        &self,
        op: &'static str,
        batch: &mut Batch,
        x: View<'a>,
        weight: &'a DeviceWeight,
        eps: f32,
        out: View<'a>,
    ) -> Result<()> {
        let w = weight.f32_view(op)?;
        let cols = weight.cols;
        if cols == 0 || weight.rows != 1 || x.len % cols != 0 {
            return Err(VkError::shape(
                op,
                format!("{} elements, weight {} x {cols}", x.len, weight.rows),
            ));
        }
        expect_len(op, "out", &out, x.len)?;
        let rows = x.len / cols;
        let push = [
            word(op, rows)?,
            word(op, cols)?,
            word(op, x.offset)?,
            word(op, w.offset)?,
            word(op, out.offset)?,
            eps.to_bits(),
        ];
        let k = self.kernel(Shader::RmsNorm)?;
        batch.dispatch(&k, &[x.buf, w.buf, out.buf], &push, grid(op, rows, 1)?)
    }

    /// Normalises each `weight.cols`-wide row of `x` into `out` (RMS norm times weight).
    pub fn rms_norm<'a>(
        &self,
        batch: &mut Batch,
        x: View<'a>,
        weight: &'a DeviceWeight,
        eps: f32,
        out: View<'a>,
    ) -> Result<()> {
        self.norm("rms_norm", batch, x, weight, eps, out)
    }

    /// Normalises every `weight.cols`-wide head of `x` in place (qwen3's q/k norm).
    pub fn head_norm<'a>(
        &self,
        batch: &mut Batch,
        x: View<'a>,
        weight: &'a DeviceWeight,
        eps: f32,
    ) -> Result<()> {
        self.norm("head_norm", batch, x, weight, eps, x)
    }

    fn binary<'a>(
        &self,
        op: &'static str,
        batch: &mut Batch,
        x: View<'a>,
        y: View<'a>,
        period: usize,
        code: u32,
    ) -> Result<()> {
        let push = [
            word(op, x.len)?,
            word(op, x.offset)?,
            word(op, y.offset)?,
            word(op, period)?,
            code,
        ];
        let k = self.kernel(Shader::Binary)?;
        batch.dispatch(&k, &[x.buf, y.buf], &push, threads(op, x.len)?)
    }

    /// `x += y`.
    pub fn add<'a>(&self, batch: &mut Batch, x: View<'a>, y: View<'a>) -> Result<()> {
        expect_len("add", "y", &y, x.len)?;
        self.binary("add", batch, x, y, 0, 0)
    }

    /// Adds `bias` (one row) to every row of `x`.
    pub fn add_bias<'a>(
        &self,
        batch: &mut Batch,
        x: View<'a>,
        bias: &'a DeviceWeight,
    ) -> Result<()> {
        const OP: &str = "add_bias";
        let b = bias.f32_view(OP)?;
        if b.len == 0 || x.len % b.len != 0 {
            return Err(VkError::shape(
                OP,
                format!("{} elements, not rows of {}", x.len, b.len),
            ));
        }
        self.binary(OP, batch, x, b, b.len, 0)
    }

    /// `gate = silu(gate) * up`.
    pub fn swiglu<'a>(&self, batch: &mut Batch, gate: View<'a>, up: View<'a>) -> Result<()> {
        expect_len("swiglu", "up", &up, gate.len)?;
        self.binary("swiglu", batch, gate, up, 0, 1)
    }

    /// Rotates every head of every token row of `x` (rows of `n_heads * head_dim`), with
    /// `table` from
    /// [`rope_table`] for the rows' positions.
    pub fn rope<'a>(
        &self,
        batch: &mut Batch,
        x: View<'a>,
        n_heads: usize,
        c: &ModelConfig,
        table: View<'a>,
    ) -> Result<()> {
        const OP: &str = "rope";
        let half = c.rope_dim / 2;
        let tokens = rope_rows(c, n_heads, x.len, table.offset, table.len)
            .map_err(|why| VkError::shape(OP, why))?;
        let style = match c.rope_style {
            RopeStyle::AdjacentPairs => 0,
            RopeStyle::HalfSplit => 1,
        };
        let push = [
            word(OP, tokens)?,
            word(OP, n_heads)?,
            word(OP, c.head_dim)?,
            word(OP, half)?,
            style,
            word(OP, x.offset)?,
            word(OP, table.offset / 2)?,
        ];
        let k = self.kernel(Shader::Rope)?;
        batch.dispatch(
            &k,
            &[x.buf, table.buf],
            &push,
            threads(OP, tokens * n_heads * half)?,
        )
    }

    /// Copies each region from `src` to `dst` (32-bit elements), in order. The regions are
    /// checked against both views first. Within one region the steps run in parallel, so a
    /// region must not write one destination element twice (a later region may overwrite an
    /// earlier one: regions are separated by barriers).
    pub fn raster<'a>(
        &self,
        batch: &mut Batch,
        src: View<'a>,
        dst: View<'a>,
        regions: &[Region],
    ) -> Result<()> {
        const OP: &str = "raster";
        validate(regions, src.len, dst.len).map_err(|e| VkError::shape(OP, format!("{e:?}")))?;
        word(OP, src.offset + src.len)?;
        word(OP, dst.offset + dst.len)?;
        let k = self.kernel(Shader::Raster)?;
        for r in regions {
            if r.is_empty() {
                continue;
            }
            let n = r.elements().unwrap_or(usize::MAX);
            let push = [
                word(OP, src.offset + r.src_offset)?,
                word(OP, dst.offset + r.dst_offset)?,
                word(OP, r.size[0])?,
                word(OP, r.size[1])?,
                word(OP, r.size[2])?,
                word(OP, r.src_stride[0])?,
                word(OP, r.src_stride[1])?,
                word(OP, r.src_stride[2])?,
                word(OP, r.dst_stride[0])?,
                word(OP, r.dst_stride[1])?,
                word(OP, r.dst_stride[2])?,
            ];
            word(OP, n)?;
            batch.dispatch(&k, &[src.buf, dst.buf], &push, threads(OP, n)?)?;
        }
        Ok(())
    }
}
