//! `gemm_codes` with ARMv8.0 Advanced SIMD: `smull`/`smlal` multiply a group's signed codes
//! by the token's four broadcast activation codes into 16-bit lanes (row `r`, column `e`),
//! `sadalp` widens pairs of them into 32 bits, and one `addp` per sub-block folds the pairs
//! into the row's lane.
//!
//! The 16-bit sums must not wrap. A product of a 4-, 5- or 6-bit code and a byte is at most
//! 63 * 128 = 8064 in magnitude, so a lane sums a whole sub-block before widening: 8 groups
//! of 4-bit (8 * 1920) or 5-bit (8 * 3968) codes, or Q6_K's 4 groups (4 * 8064), all below
//! 32768. Centered 8-bit codes reach 128 * 128 and widen after every group.

use core::arch::aarch64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::codes::{broadcast4, group};
use super::sub_block::{RowDots, RowSums, accumulate, store};

/// Groups summed in 16 bits before widening, for codes of `bits` bits.
const fn groups_per_widening(bits: u32) -> usize {
    if bits == 8 { 1 } else { 8 }
}

/// The eight rows' integer dots with each of `N` tokens over sub-block `b`, whose codes
/// are at `w`.
///
/// # Safety
/// `c` was checked by `Codes::check` for format `F` and `N` tokens; `w` is sub-block `b` of
/// one of its panels.
// `t` indexes the accumulators and the activation rows alike.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn sub_block_dots<F: Format, const N: usize>(
    c: &Codes<'_>,
    w: *const u8,
    b: usize,
) -> [RowDots; N] {
    let acts = c.acts().as_ptr();
    let widen_every = groups_per_widening(F::BITS);
    // Per token: rows 0-1, 2-3, 4-5, 6-7, two columns' sums per 32-bit lane.
    let mut pairs = [[vdupq_n_s32(0); 4]; N];
    let mut sum16 = [[vdupq_n_s16(0); 4]; N];
    for g in 0..F::GROUPS {
        // SAFETY: group `g` lies within the sub-block at `w`, and each of the `N` token rows
        // holds the sub-block's columns (`Codes::check`).
        let [lo, hi] = unsafe { group::<F>(w, g) };
        for t in 0..N {
            // SAFETY: as above.
            let a = unsafe { broadcast4(acts.add(t * c.stride() + b * F::SUB_BLOCK + 4 * g)) };
            let a8 = vget_low_s8(a);
            let s = &mut sum16[t];
            s[0] = vmlal_s8(s[0], vget_low_s8(lo), a8);
            s[1] = vmlal_high_s8(s[1], lo, a);
            s[2] = vmlal_s8(s[2], vget_low_s8(hi), a8);
            s[3] = vmlal_high_s8(s[3], hi, a);
        }
        if (g + 1) % widen_every == 0 || g + 1 == F::GROUPS {
            for t in 0..N {
                for j in 0..4 {
                    pairs[t][j] = vpadalq_s16(pairs[t][j], sum16[t][j]);
                    sum16[t][j] = vdupq_n_s16(0);
                }
            }
        }
    }
    core::array::from_fn(|t| {
        [
            vpaddq_s32(pairs[t][0], pairs[t][1]),
            vpaddq_s32(pairs[t][2], pairs[t][3]),
        ]
    })
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens of a legacy format.
///
/// # Safety
/// `c` was checked by `Codes::check` for format `F`, one panel and `N` tokens; `out` holds at
/// least `N` rows.
#[target_feature(enable = "neon")]
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
