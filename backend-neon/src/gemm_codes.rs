//! The entry of `gemm_codes`: which format and kernel, operands checked once, then the
//! kernel compiled for that format, level and token count, panel after panel.

use tern_core::by_tokens;
use tern_core::cpu::formats::{Format, FormatType, Q4_0, Q4_1, Q4K, Q5_0, Q5_1, Q5K, Q6K, Q8_0};
use tern_core::cpu::{ActTile, Codes, PANEL_ROWS, PanelLayout};

use crate::{Level, dotprod, i8mm, kquant, neon};

/// A kernel family, and so the panel layout it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `smull`/`smlal` on the portable layout.
    Neon,
    /// `sdot` on the portable layout.
    Dotprod,
    /// `smmla` (and `sdot` for one token) on the i8mm layout.
    I8mm,
}

/// Runs the fast kernels for this call (every whole panel of `panels`), or returns `false`
/// (having done nothing) where none covers it.
///
/// # Safety
/// The CPU runs `level` (which is not `Level::Scalar`).
pub(crate) unsafe fn gemm_codes(
    level: Level,
    layout: PanelLayout,
    panels: &[u8],
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    let Some(k) = panels.len().checked_div(layout.panel_bytes()) else {
        return false;
    };
    let Some(which) = FormatType::of(layout.format) else {
        return false;
    };
    let kernel = match level {
        Level::Scalar => return false,
        Level::Neon => Kernel::Neon,
        Level::Dotprod => Kernel::Dotprod,
        Level::I8mm => Kernel::I8mm,
    };
    // SAFETY: forwarded from the caller; the i8mm level packed the legacy formats in its
    // layout, and K-quants keep the portable one at every level.
    unsafe {
        match which {
            FormatType::Q4_0 => run::<Q4_0>(kernel, layout, panels, k, acts, out),
            FormatType::Q4_1 => run::<Q4_1>(kernel, layout, panels, k, acts, out),
            FormatType::Q5_0 => run::<Q5_0>(kernel, layout, panels, k, acts, out),
            FormatType::Q5_1 => run::<Q5_1>(kernel, layout, panels, k, acts, out),
            FormatType::Q8_0 => run::<Q8_0>(kernel, layout, panels, k, acts, out),
            FormatType::Q4K => kquant::run::<Q4K>(kernel, layout, panels, k, acts, out),
            FormatType::Q5K => kquant::run::<Q5K>(kernel, layout, panels, k, acts, out),
            FormatType::Q6K => kquant::run::<Q6K>(kernel, layout, panels, k, acts, out),
        }
    }
}

/// `k` panels of format `F`, one at a time, with `kernel`.
///
/// # Safety
/// The CPU runs `kernel`'s instructions; `layout.format` is `F`'s, and `panels` are in
/// `kernel`'s layout.
pub(crate) unsafe fn run<F: Format>(
    kernel: Kernel,
    layout: PanelLayout,
    panels: &[u8],
    k: usize,
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    let n = acts.n;
    if out.len() < k * n {
        return false;
    }
    let Some(c) = Codes::check::<F>(layout, panels, k, acts, n) else {
        return false;
    };
    for p in 0..k {
        let (c, out) = (&c.from(p, 1), &mut out[p * n..]);
        // SAFETY: the caller vouched for the instructions and the layout; `c` is checked for
        // its panel and `n` tokens, and `out` holds `n` rows.
        unsafe {
            match kernel {
                Kernel::Neon => by_tokens!(n, neon::gemm_codes::gemm_codes[F], c, out),
                Kernel::Dotprod => by_tokens!(n, dotprod::gemm_codes::gemm_codes[F], c, out),
                Kernel::I8mm => by_tokens!(n, i8mm::gemm_codes::gemm_codes[F], c, out),
            }
        }
    }
    true
}
