//! `gemm_codes` with `sdot` on the portable panel layout: a group's 32 code bytes are two
//! registers (rows 0-3 and 4-7, four columns each), and `sdot` by element multiplies each
//! against four activation codes taken from a register that holds sixteen, so one load of
//! activations serves four groups. A lane accumulates one row: no horizontal sums.
//!
//! Tile: 8 rows (the panel) by 4 tokens (`tile_tokens`) by 4 columns per `sdot`. Four tokens
//! keep 8 integer and 8 float accumulators, the two code registers and four activation
//! registers live: 22 of the 32 vector registers, with room for the 4-bit unpacking. (The
//! MNN-LLM paper's 12 tokens fit because it scales per output channel; per-sub-block
//! scales need the float accumulators live too.)

use core::arch::aarch64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::sdot::sdot_lane;
use crate::neon::codes::group;
use crate::neon::sub_block::{RowDots, RowSums, accumulate, store};

/// Groups `4 * chunk .. 4 * chunk + 4` of the sub-block at `w` against every token's
/// activation register `a[t]` (which holds those groups' 16 codes).
///
/// # Safety
/// `w` points to a whole sub-block of format `F`, `4 * chunk + 4 <= F::GROUPS`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn four_groups<F: Format, const N: usize>(
    w: *const u8,
    chunk: usize,
    a: &[int8x16_t; N],
    idot: &mut [RowDots; N],
) {
    macro_rules! lane {
        ($lane:literal) => {
            // SAFETY: group `4 * chunk + lane` lies within the sub-block.
            let [lo, hi] = unsafe { group::<F>(w, 4 * chunk + $lane) };
            for (a, idot) in a.iter().zip(idot.iter_mut()) {
                idot[0] = sdot_lane::<$lane>(idot[0], lo, *a);
                idot[1] = sdot_lane::<$lane>(idot[1], hi, *a);
            }
        };
    }
    lane!(0);
    lane!(1);
    lane!(2);
    lane!(3);
}

/// The eight rows' integer dots with each of `N` tokens over sub-block `b`, whose codes
/// are at `w`.
///
/// # Safety
/// The CPU has FEAT_DotProd; `c` was checked by `Codes::check` for format `F` and `N` tokens;
/// `w` is sub-block `b` of one of its panels.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn sub_block_dots<F: Format, const N: usize>(
    c: &Codes<'_>,
    w: *const u8,
    b: usize,
) -> [RowDots; N] {
    let acts = c.acts().as_ptr();
    let mut idot: [RowDots; N] = [[vdupq_n_s32(0); 2]; N];
    for chunk in 0..F::GROUPS / 4 {
        let a: [int8x16_t; N] = core::array::from_fn(|t| {
            // SAFETY: each of the `N` token rows holds the sub-block's columns
            // (`Codes::check`), 16 of them from `16 * chunk` (`Format::SUB_BLOCK` is a
            // multiple of 16).
            unsafe {
                vld1q_s8(
                    acts.add(t * c.stride() + b * F::SUB_BLOCK + 16 * chunk)
                        .cast(),
                )
            }
        });
        // SAFETY: the sub-block at `w` holds groups `4 * chunk..4 * chunk + 4`.
        unsafe { four_groups::<F, N>(w, chunk, &a, &mut idot) };
    }
    idot
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens of a legacy format.
///
/// # Safety
/// The CPU has FEAT_DotProd; `c` was checked by `Codes::check` for format `F`, one panel and
/// `N` tokens; `out` holds at least `N` rows.
#[target_feature(enable = "neon,dotprod")]
pub(crate) unsafe fn gemm_codes<F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let mut acc: [RowSums; N] = [[vdupq_n_f32(0.0); 2]; N];
    for b in 0..c.n_sub() {
        // SAFETY: `Codes::check` guarantees `n_sub` whole sub-blocks in the panel.
        unsafe {
            let w = c.panel().as_ptr().add(F::sub_block_at(b));
            let idot = sub_block_dots::<F, N>(c, w, b);
            accumulate::<F, N>(c, w, b, &idot, &mut acc);
        }
    }
    store(&acc, out);
}
