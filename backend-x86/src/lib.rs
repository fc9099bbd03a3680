//! tern-backend-x86: the microkernels of Tern's CPU driver (`tern_core::cpu`) for x86-64,
//! with the instruction set chosen at run time.
//!
//! [`X86Kernels`] implements [`CpuKernels`] at one [`Level`]: AVX-512 VNNI (`vpdpbusd`, two
//! panels' 16 rows per 512-bit vector), AVX2 (`vpmaddubsw` + `vpmaddwd`, with FMA and F16C),
//! or the scalar definitions. Detection uses `cpuid` and `xgetbv` directly, so it works
//! without `std`. Every fast kernel is property-tested against the scalar definition.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(test)]
extern crate std;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod detect;
#[cfg(target_arch = "x86_64")]
mod gemm_codes;
#[cfg(test)]
mod tests;

use half::f16;
#[cfg(target_arch = "x86_64")]
use tern_core::cpu::rows_fit;
use tern_core::cpu::{
    ActLayout, ActTile, CpuKernels, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout, ScalarKernels,
    gemm_f32_scalar,
};
use tern_core::kv::{BlockQ8_0, Fp8E4M3};

/// An instruction-set level, from least to most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The scalar definitions.
    Scalar,
    /// AVX2, FMA and F16C.
    Avx2,
    /// AVX-512 F, BW, VL and VNNI, plus everything of [`Level::Avx2`].
    Avx512Vnni,
}

impl Level {
    /// Every level, least capable first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512Vnni];

    /// The level's name in messages and benchmarks ("x86-...").
    pub const fn name(self) -> &'static str {
        match self {
            Level::Scalar => "x86-scalar",
            Level::Avx2 => "x86-avx2",
            Level::Avx512Vnni => "x86-avx512vnni",
        }
    }

    /// Whether this CPU (and its OS) can run the level.
    pub fn is_available(self) -> bool {
        let f = detect::features();
        match self {
            Level::Scalar => true,
            Level::Avx2 => f.avx2,
            Level::Avx512Vnni => f.avx512vnni,
        }
    }
}

/// The x86 microkernels at one [`Level`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86Kernels {
    level: Level,
}

impl X86Kernels {
    /// The most capable level this CPU runs.
    pub fn detect() -> X86Kernels {
        let f = detect::features();
        let level = if f.avx512vnni {
            Level::Avx512Vnni
        } else if f.avx2 {
            Level::Avx2
        } else {
            Level::Scalar
        };
        X86Kernels { level }
    }

    /// The kernels of `level`, or `None` if this CPU cannot run it.
    pub fn with_level(level: Level) -> Option<X86Kernels> {
        level.is_available().then_some(X86Kernels { level })
    }

    /// The instruction-set level these kernels run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Whether the AVX2 kernels (which the AVX-512 level shares) may run.
    #[cfg(target_arch = "x86_64")]
    fn simd(&self) -> bool {
        self.level >= Level::Avx2
    }
}

impl Default for X86Kernels {
    fn default() -> Self {
        X86Kernels::detect()
    }
}

impl CpuKernels for X86Kernels {
    fn name(&self) -> &'static str {
        self.level.name()
    }

    fn tile_tokens(&self) -> usize {
        match self.level {
            Level::Scalar => ScalarKernels.tile_tokens(),
            Level::Avx2 => 4,
            Level::Avx512Vnni => MAX_TILE_TOKENS,
        }
    }

    fn panels_per_call(&self) -> usize {
        match self.level {
            Level::Avx512Vnni => 2,
            Level::Scalar | Level::Avx2 => 1,
        }
    }

    fn gemm_codes(
        &self,
        layout: PanelLayout,
        panels: &[u8],
        acts: ActTile<'_>,
        out: &mut [[f32; PANEL_ROWS]],
    ) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            let vnni = self.level == Level::Avx512Vnni;
            // SAFETY: the level was detected.
            if unsafe { gemm_codes::gemm_codes(vnni, layout, panels, &acts, out) } {
                return;
            }
        }
        ScalarKernels.gemm_codes(layout, panels, acts, out);
    }

    fn gemm_f32(&self, cols: usize, panel: &[f32], x: &[f32], out: &mut [[f32; PANEL_ROWS]]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() && cols > 0 && panel.len() >= cols * PANEL_ROWS {
            let n = (x.len() / cols).min(out.len());
            for (t0, out) in (0..n)
                .step_by(MAX_TILE_TOKENS)
                .zip(out.chunks_mut(MAX_TILE_TOKENS))
            {
                let nt = MAX_TILE_TOKENS.min(n - t0);
                let x = &x[t0 * cols..(t0 + nt) * cols];
                // SAFETY: the level was detected; the panel holds `cols` columns, `x` holds
                // `nt` rows of `cols` and `out` at least `nt` rows.
                unsafe { avx2::gemm_f32::gemm_f32_n(nt, cols, panel, x, out) };
            }
            return;
        }
        gemm_f32_scalar(cols, panel, x, out);
    }

    fn quantize_row(&self, layout: ActLayout, x: &[f32], row: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() && matches!(layout.sub_block, 16 | 32) && row.len() >= layout.stride() {
            // SAFETY: the level was detected.
            unsafe { avx2::quantize::quantize_row(layout, x, row) };
            return;
        }
        ScalarKernels.quantize_row(layout, x, row);
    }

    fn swiglu(&self, gate: &mut [f32], up: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: the level was detected.
            Level::Avx512Vnni => return unsafe { avx512::exp::swiglu(gate, up) },
            // SAFETY: the level was detected.
            Level::Avx2 => return unsafe { avx2::exp::swiglu(gate, up) },
            Level::Scalar => {}
        }
        ScalarKernels.swiglu(gate, up);
    }

    fn exp_shifted(&self, x: &mut [f32], shift: f32) {
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: the level was detected.
            Level::Avx512Vnni => return unsafe { avx512::exp::exp_shifted(x, shift) },
            // SAFETY: the level was detected.
            Level::Avx2 => return unsafe { avx2::exp::exp_shifted(x, shift) },
            Level::Scalar => {}
        }
        ScalarKernels.exp_shifted(x, shift);
    }

    fn dot_rows_f16(&self, q: &[f32], rows: &[f16], stride: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() && rows_fit(q.len(), rows.len(), stride, out.len()) {
            // SAFETY: the level was detected; `rows` holds every row `out` asks for.
            unsafe { avx2::vector::dot_rows_f16(q, rows, stride, out) };
            return;
        }
        ScalarKernels.dot_rows_f16(q, rows, stride, out);
    }

    fn dot_rows_f32(&self, q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() && rows_fit(q.len(), rows.len(), stride, out.len()) {
            // SAFETY: the level was detected; `rows` holds every row `out` asks for.
            unsafe {
                match self.level {
                    Level::Avx512Vnni => avx512::vector::dot_rows_f32(q, rows, stride, out),
                    _ => avx2::vector::dot_rows_f32(q, rows, stride, out),
                }
            }
            return;
        }
        ScalarKernels.dot_rows_f32(q, rows, stride, out);
    }

    fn dot_f32(&self, a: &[f32], b: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            return unsafe { avx2::vector::dot_f32(a, b) };
        }
        ScalarKernels.dot_f32(a, b)
    }

    fn dot_f16(&self, a: &[f32], b: &[f16]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            return unsafe { avx2::vector::dot_f16(a, b) };
        }
        ScalarKernels.dot_f16(a, b)
    }

    fn axpy_f32(&self, y: &mut [f32], a: f32, x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            unsafe { avx2::vector::axpy_f32(y, a, x) };
            return;
        }
        ScalarKernels.axpy_f32(y, a, x);
    }

    fn axpy_f16(&self, y: &mut [f32], a: f32, x: &[f16]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            unsafe { avx2::vector::axpy_f16(y, a, x) };
            return;
        }
        ScalarKernels.axpy_f16(y, a, x);
    }

    fn dot_rows_q8_0(&self, q: &[BlockQ8_0], rows: &[BlockQ8_0], stride: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() && rows_fit(q.len(), rows.len(), stride, out.len()) {
            // SAFETY: the level was detected; `rows` holds every row `out` asks for.
            unsafe { avx2::kv_quant::dot_rows_q8_0(q, rows, stride, out) };
            return;
        }
        ScalarKernels.dot_rows_q8_0(q, rows, stride, out);
    }

    fn axpy_q8_0(&self, y: &mut [f32], a: f32, x: &[BlockQ8_0]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            unsafe { avx2::kv_quant::axpy_q8_0(y, a, x) };
            return;
        }
        ScalarKernels.axpy_q8_0(y, a, x);
    }

    fn axpy_fp8(&self, y: &mut [f32], a: f32, x: &[Fp8E4M3]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd() {
            // SAFETY: the level was detected.
            unsafe { avx2::kv_quant::axpy_fp8(y, a, x) };
            return;
        }
        ScalarKernels.axpy_fp8(y, a, x);
    }
}
