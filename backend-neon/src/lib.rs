//! tern-backend-neon: the microkernels of Tern's CPU driver (`tern_core::cpu`) for aarch64,
//! with the instruction set chosen at run time.
//!
//! [`NeonKernels`] implements [`CpuKernels`] at one [`Level`] of integer dot product
//! (baseline NEON `smull`/`smlal`, `sdot`, or `smmla`), with or without FEAT_FP16 for the
//! f16 attention kernels. With the `std` feature (on by default) the level is detected with
//! `is_aarch64_feature_detected!`; without it, from the target features the crate was
//! compiled with (`-C target-feature=+dotprod,+i8mm,+fp16` for firmware), or from features
//! the caller detected itself ([`NeonKernels::from_features`]). On other architectures it
//! builds and runs the scalar definitions. Every fast kernel is property-tested against the
//! scalar definition.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

mod detect;
#[cfg(target_arch = "aarch64")]
mod dotprod;
#[cfg(target_arch = "aarch64")]
mod fp16;
#[cfg(target_arch = "aarch64")]
mod gemm_codes;
#[cfg(target_arch = "aarch64")]
mod i8mm;
#[cfg(target_arch = "aarch64")]
mod kquant;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(test)]
mod tests;

pub use detect::Features;

use alloc::vec::Vec;
use half::f16;
#[cfg(target_arch = "aarch64")]
use tern_core::cpu::rows_fit;
use tern_core::cpu::{
    ActLayout, ActTile, CpuKernels, PANEL_ROWS, PanelLayout, ScalarKernels, gemm_f32_scalar,
};
use tern_core::model::WeightView;

/// The integer dot product in use, from least to most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The scalar definitions.
    Scalar,
    /// ARMv8.0 Advanced SIMD: `smull`/`smlal` into 16-bit sums, `sadalp` into 32 bits.
    Neon,
    /// FEAT_DotProd: `sdot`, four byte products per 32-bit lane.
    Dotprod,
    /// FEAT_I8MM (with FEAT_DotProd): `smmla`, a 2x8 by 8x2 byte matrix product per
    /// instruction for prefill; `sdot` for decode.
    I8mm,
}

impl Level {
    /// Every level, least capable first.
    pub const ALL: [Level; 4] = [Level::Scalar, Level::Neon, Level::Dotprod, Level::I8mm];

    /// The level's name in messages and benchmarks ("neon-...").
    pub const fn name(self) -> &'static str {
        match self {
            Level::Scalar => "neon-scalar",
            Level::Neon => "neon",
            Level::Dotprod => "neon-dotprod",
            Level::I8mm => "neon-i8mm",
        }
    }

    /// Whether `f` allows the level.
    pub const fn is_allowed_by(self, f: Features) -> bool {
        match self {
            Level::Scalar => true,
            Level::Neon => f.neon,
            Level::Dotprod => f.neon && f.dotprod,
            Level::I8mm => f.neon && f.dotprod && f.i8mm,
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_available(self) -> bool {
        self.is_allowed_by(Features::detect())
    }

    /// The most capable level `f` allows.
    pub const fn best(f: Features) -> Level {
        if Level::I8mm.is_allowed_by(f) {
            Level::I8mm
        } else if Level::Dotprod.is_allowed_by(f) {
            Level::Dotprod
        } else if Level::Neon.is_allowed_by(f) {
            Level::Neon
        } else {
            Level::Scalar
        }
    }
}

/// The aarch64 microkernels at one [`Level`], with the FEAT_FP16 kernels or without.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeonKernels {
    level: Level,
    fp16: bool,
}

impl NeonKernels {
    /// The most capable kernels this CPU runs (see [`Features::detect`]).
    pub fn detect() -> NeonKernels {
        // SAFETY: the features were detected on (or compiled for) this CPU.
        unsafe { NeonKernels::from_features(Features::detect()) }
    }

    /// The most capable kernels `features` allow.
    ///
    /// # Safety
    /// The CPU running the kernels has every feature `features` claims: for firmware that
    /// reads the ID registers (or a device tree) itself.
    pub unsafe fn from_features(features: Features) -> NeonKernels {
        NeonKernels {
            level: Level::best(features),
            fp16: features.neon && features.fp16,
        }
    }

    /// The kernels of `level`, with the fp16 kernels if `fp16`, or `None` if this CPU cannot
    /// run them.
    pub fn with_level(level: Level, fp16: bool) -> Option<NeonKernels> {
        let f = Features::detect();
        let fp16_ok = !fp16 || (f.neon && f.fp16);
        (level.is_allowed_by(f) && fp16_ok).then_some(NeonKernels { level, fp16 })
    }

    /// The instruction-set level these kernels run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Whether attention's f16 kernels compute in f16 (FEAT_FP16).
    pub fn fp16(&self) -> bool {
        self.fp16
    }

    /// Whether the baseline NEON kernels (which every higher level shares) may run.
    #[cfg(target_arch = "aarch64")]
    fn simd(&self) -> bool {
        self.level >= Level::Neon
    }
}

impl Default for NeonKernels {
    fn default() -> Self {
        NeonKernels::detect()
    }
}

impl CpuKernels for NeonKernels {
    /// The level's name, with `+fp16` where the f16 kernels are on: "neon-i8mm+fp16".
    fn name(&self) -> &'static str {
        match (self.level, self.fp16) {
            (Level::Scalar, _) => "neon-scalar",
            (Level::Neon, false) => "neon",
            (Level::Neon, true) => "neon+fp16",
            (Level::Dotprod, false) => "neon-dotprod",
            (Level::Dotprod, true) => "neon-dotprod+fp16",
            (Level::I8mm, false) => "neon-i8mm",
            (Level::I8mm, true) => "neon-i8mm+fp16",
        }
    }

    fn tile_tokens(&self) -> usize {
        match self.level {
            Level::Scalar => ScalarKernels.tile_tokens(),
            Level::Neon | Level::Dotprod => 4,
            Level::I8mm => tern_core::cpu::MAX_TILE_TOKENS,
        }
    }

    fn pack_codes(&self, w: &WeightView<'_>, layout: PanelLayout) -> Vec<u8> {
        #[cfg(target_arch = "aarch64")]
        if self.level == Level::I8mm && i8mm::layout::covers(layout.format) {
            return i8mm::layout::pack_codes(w, layout);
        }
        tern_core::cpu::pack_codes(w, layout)
    }

    fn gemm_codes(
        &self,
        layout: PanelLayout,
        panels: &[u8],
        acts: ActTile<'_>,
        out: &mut [[f32; PANEL_ROWS]],
    ) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: the level was detected.
            if unsafe { gemm_codes::gemm_codes(self.level, layout, panels, &acts, out) } {
                return;
            }
            if self.level == Level::I8mm && i8mm::layout::covers(layout.format) {
                // Panels of this format were packed in the i8mm layout.
                return i8mm::layout::gemm_codes_scalar(layout, panels, acts, out);
            }
        }
        ScalarKernels.gemm_codes(layout, panels, acts, out);
    }

    fn gemm_f32(&self, cols: usize, panel: &[f32], x: &[f32], out: &mut [[f32; PANEL_ROWS]]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() && cols > 0 && panel.len() >= cols * PANEL_ROWS {
            let n = (x.len() / cols).min(out.len());
            // SAFETY: NEON was detected; the panel holds `cols` columns, `x` holds `n` rows
            // of `cols` and `out` at least `n` rows.
            unsafe { neon::gemm_f32::gemm_f32_n(n, cols, panel, &x[..n * cols], out) };
            return;
        }
        gemm_f32_scalar(cols, panel, x, out);
    }

    fn quantize_row(&self, layout: ActLayout, x: &[f32], row: &mut [u8]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd()
            && matches!(layout.sub_block, 16 | 32)
            && row.len() >= layout.stride()
            && x.len() >= layout.cols
        {
            // SAFETY: NEON was detected.
            unsafe { neon::quantize::quantize_row(layout, x, row) };
            return;
        }
        ScalarKernels.quantize_row(layout, x, row);
    }

    fn swiglu(&self, gate: &mut [f32], up: &[f32]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::exp::swiglu(gate, up) };
        }
        ScalarKernels.swiglu(gate, up);
    }

    fn exp_shifted(&self, x: &mut [f32], shift: f32) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::exp::exp_shifted(x, shift) };
        }
        ScalarKernels.exp_shifted(x, shift);
    }

    fn dot_rows_f16(&self, q: &[f32], rows: &[f16], stride: usize, out: &mut [f32]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() && rows_fit(q.len(), rows.len(), stride, out.len()) {
            if self.fp16 && fp16::dot_rows::fits(q.len()) {
                // SAFETY: NEON and FP16 were detected; `rows` holds every row `out` asks for.
                unsafe { fp16::dot_rows::dot_rows_f16(q, rows, stride, out) };
            } else {
                // SAFETY: NEON was detected; `rows` holds every row `out` asks for.
                unsafe { neon::vector::dot_rows(q, rows, stride, out) };
            }
            return;
        }
        ScalarKernels.dot_rows_f16(q, rows, stride, out);
    }

    fn dot_rows_f32(&self, q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() && rows_fit(q.len(), rows.len(), stride, out.len()) {
            // SAFETY: NEON was detected; `rows` holds every row `out` asks for.
            unsafe { neon::vector::dot_rows(q, rows, stride, out) };
            return;
        }
        ScalarKernels.dot_rows_f32(q, rows, stride, out);
    }

    fn dot_f32(&self, a: &[f32], b: &[f32]) -> f32 {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::vector::dot(a, b) };
        }
        ScalarKernels.dot_f32(a, b)
    }

    fn dot_f16(&self, a: &[f32], b: &[f16]) -> f32 {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::vector::dot(a, b) };
        }
        ScalarKernels.dot_f16(a, b)
    }

    fn axpy_f32(&self, y: &mut [f32], a: f32, x: &[f32]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::vector::axpy(y, a, x) };
        }
        ScalarKernels.axpy_f32(y, a, x);
    }

    fn axpy_f16(&self, y: &mut [f32], a: f32, x: &[f16]) {
        #[cfg(target_arch = "aarch64")]
        if self.simd() {
            // SAFETY: NEON was detected.
            return unsafe { neon::vector::axpy(y, a, x) };
        }
        ScalarKernels.axpy_f16(y, a, x);
    }
}
