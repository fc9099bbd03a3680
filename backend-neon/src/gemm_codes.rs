//! The entry of `gemm_codes`: which format and kernel, operands checked once, then the
//! kernel compiled for that format, level and token count, panel after panel.

use tern_core::cpu::{ActTile, PANEL_ROWS, PanelLayout};

use crate::formats::{Codes, Format, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Which};
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
    let Some(which) = Which::of(layout.format) else {
        // SAFETY: forwarded from the caller.
        return unsafe { kquant::gemm_codes(level, layout, panels, k, acts, out) };
    };
    let kernel = match level {
        Level::Scalar => return false,
        Level::Neon => Kernel::Neon,
        Level::Dotprod => Kernel::Dotprod,
        Level::I8mm => Kernel::I8mm,
    };
    // SAFETY: forwarded from the caller; the i8mm level packed these formats in its layout.
    unsafe {
        match which {
            Which::Q4_0 => run::<Q4_0>(kernel, layout, panels, k, acts, out),
            Which::Q4_1 => run::<Q4_1>(kernel, layout, panels, k, acts, out),
            Which::Q5_0 => run::<Q5_0>(kernel, layout, panels, k, acts, out),
            Which::Q5_1 => run::<Q5_1>(kernel, layout, panels, k, acts, out),
            Which::Q8_0 => run::<Q8_0>(kernel, layout, panels, k, acts, out),
        }
    }
}

/// Calls `$kernel::<G.., N>(c, out)` with the generic arguments `G..` in brackets and
/// `N = $n` (1 to 8).
macro_rules! by_tokens {
    ($n:expr, $($kernel:ident)::+ [$($g:tt),*], $c:expr, $out:expr) => {
        match $n {
            1 => $($kernel)::+::<$($g,)* 1>($c, $out),
            2 => $($kernel)::+::<$($g,)* 2>($c, $out),
            3 => $($kernel)::+::<$($g,)* 3>($c, $out),
            4 => $($kernel)::+::<$($g,)* 4>($c, $out),
            5 => $($kernel)::+::<$($g,)* 5>($c, $out),
            6 => $($kernel)::+::<$($g,)* 6>($c, $out),
            7 => $($kernel)::+::<$($g,)* 7>($c, $out),
            8 => $($kernel)::+::<$($g,)* 8>($c, $out),
            _ => {}
        }
    };
}
pub(crate) use by_tokens;

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
