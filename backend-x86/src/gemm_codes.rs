//! The entry of `gemm_codes`: which format, operands checked once, then the kernel compiled
//! for that format, level and token count.

use tern_core::cpu::{ActTile, PANEL_ROWS, PanelLayout};

use crate::formats::{Codes, Format, Q4_0, Q4_1, Q4K, Q5_0, Q5_1, Q5K, Q6K, Q8_0, Which};
use crate::{avx2, avx512};

/// Runs the fast kernel for this call, or returns `false` (having done nothing) where none
/// covers it.
///
/// # Safety
/// The CPU runs AVX2, FMA and F16C, and also AVX-512 F/BW/VL/VNNI when `vnni`.
pub(crate) unsafe fn gemm_codes(
    vnni: bool,
    layout: PanelLayout,
    panel: &[u8],
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    let Some(which) = Which::of(layout.format) else {
        return false;
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        match which {
            Which::Q4_0 => run::<Q4_0>(vnni, layout, panel, acts, out),
            Which::Q4_1 => run::<Q4_1>(vnni, layout, panel, acts, out),
            Which::Q5_0 => run::<Q5_0>(vnni, layout, panel, acts, out),
            Which::Q5_1 => run::<Q5_1>(vnni, layout, panel, acts, out),
            Which::Q8_0 => run::<Q8_0>(vnni, layout, panel, acts, out),
            Which::Q4K => run::<Q4K>(vnni, layout, panel, acts, out),
            Which::Q5K => run::<Q5K>(vnni, layout, panel, acts, out),
            Which::Q6K => run::<Q6K>(vnni, layout, panel, acts, out),
        }
    }
}

/// # Safety
/// As [`gemm_codes`], and `layout.format` is `F`'s.
unsafe fn run<F: Format>(
    vnni: bool,
    layout: PanelLayout,
    panel: &[u8],
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    let n = acts.n.min(out.len());
    let Some(c) = Codes::check::<F>(layout, panel, acts, n) else {
        return false;
    };
    // SAFETY: the caller vouched for the level; `c` is checked for `n` tokens and `out`
    // holds at least `n` rows.
    unsafe {
        if vnni {
            match n {
                1 => avx512::gemm_codes::gemm_codes::<F, 1>(&c, out),
                2 => avx512::gemm_codes::gemm_codes::<F, 2>(&c, out),
                3 => avx512::gemm_codes::gemm_codes::<F, 3>(&c, out),
                4 => avx512::gemm_codes::gemm_codes::<F, 4>(&c, out),
                5 => avx512::gemm_codes::gemm_codes::<F, 5>(&c, out),
                6 => avx512::gemm_codes::gemm_codes::<F, 6>(&c, out),
                7 => avx512::gemm_codes::gemm_codes::<F, 7>(&c, out),
                8 => avx512::gemm_codes::gemm_codes::<F, 8>(&c, out),
                _ => {}
            }
        } else {
            match n {
                1 => avx2::gemm_codes::gemm_codes::<F, 1>(&c, out),
                2 => avx2::gemm_codes::gemm_codes::<F, 2>(&c, out),
                3 => avx2::gemm_codes::gemm_codes::<F, 3>(&c, out),
                4 => avx2::gemm_codes::gemm_codes::<F, 4>(&c, out),
                5 => avx2::gemm_codes::gemm_codes::<F, 5>(&c, out),
                6 => avx2::gemm_codes::gemm_codes::<F, 6>(&c, out),
                7 => avx2::gemm_codes::gemm_codes::<F, 7>(&c, out),
                8 => avx2::gemm_codes::gemm_codes::<F, 8>(&c, out),
                _ => {}
            }
        }
    }
    true
}
