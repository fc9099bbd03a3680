//! The entry of `gemm_codes`: which format, operands checked once, then the kernel compiled
//! for that format, level and token count.

use tern_core::by_tokens;
use tern_core::cpu::formats::{Format, FormatType, Q4_0, Q4_1, Q4K, Q5_0, Q5_1, Q5K, Q6K, Q8_0};
use tern_core::cpu::{ActTile, Codes, PANEL_ROWS, PanelLayout};

use crate::{avx2, avx512};

/// Runs the fast kernels for this call (every whole panel of `panels`), or returns `false`
/// (having done nothing) where none covers it.
///
/// # Safety
/// The CPU runs AVX2, FMA and F16C, and also AVX-512 F/BW/VL/VNNI when `vnni`.
pub(crate) unsafe fn gemm_codes(
    vnni: bool,
    layout: PanelLayout,
    panels: &[u8],
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    let Some(which) = FormatType::of(layout.format) else {
        return false;
    };
    let Some(k) = panels.len().checked_div(layout.panel_bytes()) else {
        return false;
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        match which {
            FormatType::Q4_0 => run::<Q4_0>(vnni, layout, panels, k, acts, out),
            FormatType::Q4_1 => run::<Q4_1>(vnni, layout, panels, k, acts, out),
            FormatType::Q5_0 => run::<Q5_0>(vnni, layout, panels, k, acts, out),
            FormatType::Q5_1 => run::<Q5_1>(vnni, layout, panels, k, acts, out),
            FormatType::Q8_0 => run::<Q8_0>(vnni, layout, panels, k, acts, out),
            FormatType::Q4K => run::<Q4K>(vnni, layout, panels, k, acts, out),
            FormatType::Q5K => run::<Q5K>(vnni, layout, panels, k, acts, out),
            FormatType::Q6K => run::<Q6K>(vnni, layout, panels, k, acts, out),
        }
    }
}

/// Tokens from which VNNI takes panels two at a time. GEMV streams its weights from memory,
/// and there a single sequential stream of panels reads faster than two interleaved ones.
const PAIRS_FROM: usize = 2;

/// `k` panels: with VNNI and at least [`PAIRS_FROM`] tokens two at a time as 16 rows (the
/// last one alone when `k` is odd), else one at a time. Every token's arithmetic is the same
/// whichever way its panel goes.
///
/// # Safety
/// As [`gemm_codes`], and `layout.format` is `F`'s.
unsafe fn run<F: Format>(
    vnni: bool,
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
    let mut p = 0;
    while p < k {
        let pair = vnni && n >= PAIRS_FROM && p + 1 < k;
        let step = if pair { 2 } else { 1 };
        let (c, out) = (&c.from(p, step), &mut out[p * n..]);
        // SAFETY: the caller vouched for the level; `c` is checked for its panels and `n`
        // tokens, and `out` holds `n` rows for each of them.
        unsafe {
            if pair {
                by_tokens!(n, avx512::gemm_pair::gemm_pair[F], c, out);
            } else if vnni {
                by_tokens!(n, avx512::gemm_codes::gemm_codes[F], c, out);
            } else {
                by_tokens!(n, avx2::gemm_codes::gemm_codes[F], c, out);
            }
        }
        p += step;
    }
    true
}
