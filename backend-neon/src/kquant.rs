//! K-quants (Q4_K, Q5_K, Q6_K) on tern-core's super-block panels: the kernel that sums
//! sub-blocks in integers and applies the f16 factors in the float steps core names
//! (`FloatSteps`, as `Format::PAIRS`), as `gemm_codes_scalar` defines them (and so bit for
//! bit: the integer sums are exact and the float steps are the same fused operations).
//!
//! Per sub-block, the integer dots come from the level's legacy kernel (`smull` or `sdot`
//! on the portable layout, which K-quants keep at every level); then, per row,
//! `s1 += sc * (idot - o * isum)` and `s2 += m * isum` in 32-bit lanes. Per super-block
//! (`PerSuperBlock`): `acc += (s1 * d - dmin * s2) * d_a`; per pair of sub-blocks
//! (`PerPair`): `acc += s1 * (d * d_a)` and `acc_min += s2 * (dmin * d_a)`, the result
//! `acc - acc_min`; every multiply-add fused.

use core::arch::aarch64::*;

use tern_core::by_tokens;
use tern_core::cpu::formats::Format;
use tern_core::cpu::{ActTile, Codes, PANEL_ROWS, PanelLayout};

use crate::dotprod;
use crate::gemm_codes::Kernel;
use crate::neon;
use crate::neon::sub_block::{RowDots, RowSums, load_f16x8, store};

/// `k` panels of K-quant `F`, one at a time: with `smull` for `Kernel::Neon`, else `sdot`.
///
/// # Safety
/// The CPU runs `kernel`'s instructions; `layout.format` is `F`'s, and `panels` are in the
/// portable layout.
pub(crate) unsafe fn run<F: Format>(
    kernel: Kernel,
    layout: PanelLayout,
    panels: &[u8],
    k: usize,
    acts: &ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) -> bool {
    const { assert!(F::SUPER_BLOCK) };
    let n = acts.n;
    if out.len() < k * n {
        return false;
    }
    let Some(c) = Codes::check::<F>(layout, panels, k, acts, n) else {
        return false;
    };
    let sdot = kernel != Kernel::Neon;
    for p in 0..k {
        let (c, out) = (&c.from(p, 1), &mut out[p * n..]);
        // SAFETY: the caller vouched for the instructions; `c` is checked for its panel and
        // `n` tokens, and `out` holds `n` rows.
        unsafe {
            if sdot {
                by_tokens!(n, gemm_sdot[F], c, out);
            } else {
                by_tokens!(n, gemm_smull[F], c, out);
            }
        }
    }
    true
}

/// How a level takes a sub-block's integer dots.
trait SubBlockDots {
    /// # Safety
    /// As the level's `sub_block_dots`.
    unsafe fn dots<F: Format, const N: usize>(
        c: &Codes<'_>,
        w: *const u8,
        b: usize,
    ) -> [RowDots; N];
}

/// `smull`/`smlal` (ARMv8.0).
struct Smull;
/// `sdot` (FEAT_DotProd).
struct Sdot;

impl SubBlockDots for Smull {
    #[inline(always)]
    unsafe fn dots<F: Format, const N: usize>(
        c: &Codes<'_>,
        w: *const u8,
        b: usize,
    ) -> [RowDots; N] {
        // SAFETY: forwarded from the caller.
        unsafe { neon::gemm_codes::sub_block_dots::<F, N>(c, w, b) }
    }
}

impl SubBlockDots for Sdot {
    #[inline(always)]
    unsafe fn dots<F: Format, const N: usize>(
        c: &Codes<'_>,
        w: *const u8,
        b: usize,
    ) -> [RowDots; N] {
        // SAFETY: forwarded from the caller.
        unsafe { dotprod::gemm_codes::sub_block_dots::<F, N>(c, w, b) }
    }
}

/// Eight `i8` at `p` (the rows' sub-block scales or minimums) as 32-bit lanes.
///
/// # Safety
/// `p` points to eight readable bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load_i8x8(p: *const u8) -> RowDots {
    // SAFETY: the caller passes eight readable bytes.
    let wide = vmovl_s8(unsafe { vld1_s8(p.cast()) });
    [vmovl_s16(vget_low_s16(wide)), vmovl_high_s16(wide)]
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens, in the float steps
/// `F::PAIRS` says.
///
/// # Safety
/// As `D::dots`; `c` was checked by `Codes::check` for K-quant `F`, one panel and `N`
/// tokens; `out` holds at least `N` rows.
// `t` indexes the accumulators and the activation rows alike.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "neon")]
unsafe fn gemm<D: SubBlockDots, F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let zero = vdupq_n_s32(0);
    let fzero = vdupq_n_f32(0.0);
    let step = F::SUBS_PER_STEP;
    let mut acc: [RowSums; N] = [[fzero; 2]; N];
    let mut acc_min: [RowSums; N] = [[fzero; 2]; N];
    let acts = c.acts().as_ptr();
    for blk in 0..c.n_sub() / F::SUBS_PER_BLOCK {
        // SAFETY: `Codes::check` guarantees whole blocks in the panel and, in each token
        // row, the `d` and `isum` arrays of `n_sub` words; every offset stays within block
        // `blk` and its sub-blocks.
        unsafe {
            let block = c.panel().as_ptr().add(blk * F::BLOCK_BYTES);
            let word = |t: usize, at: usize, b: usize| {
                acts.add(t * c.stride() + at + 4 * b)
                    .cast::<[u8; 4]>()
                    .read_unaligned()
            };
            let factors = block.add(F::SUBS_PER_BLOCK * F::SUB_BLOCK_BYTES);
            let d = load_f16x8(factors);
            let dmin = match F::OFFSET {
                None => load_f16x8(factors.add(16)),
                Some(_) => [fzero; 2],
            };
            let d_a: [f32; N] = core::array::from_fn(|t| {
                f32::from_le_bytes(word(t, c.d_at(), blk * F::SUBS_PER_BLOCK))
            });
            for first in (0..F::SUBS_PER_BLOCK).step_by(step) {
                let mut s1 = [[zero; 2]; N];
                let mut s2 = [[zero; 2]; N];
                for s in first..first + step {
                    let b = blk * F::SUBS_PER_BLOCK + s;
                    let w = block.add(s * F::SUB_BLOCK_BYTES);
                    let idot = D::dots::<F, N>(c, w, b);
                    let sc = load_i8x8(w.add(F::CODE_BYTES));
                    let m = match F::OFFSET {
                        None => load_i8x8(w.add(F::MINS_AT)),
                        Some(_) => [zero; 2],
                    };
                    for t in 0..N {
                        let isum = i32::from_le_bytes(word(t, c.isum_at(), b));
                        for h in 0..2 {
                            let x = match F::OFFSET {
                                Some(o) => vsubq_s32(idot[t][h], vdupq_n_s32(o * isum)),
                                None => idot[t][h],
                            };
                            s1[t][h] = vmlaq_s32(s1[t][h], sc[h], x);
                            s2[t][h] = vmlaq_n_s32(s2[t][h], m[h], isum);
                        }
                    }
                }
                for t in 0..N {
                    for h in 0..2 {
                        let (s1, s2) = (vcvtq_f32_s32(s1[t][h]), vcvtq_f32_s32(s2[t][h]));
                        if F::PAIRS {
                            let dd = vmulq_n_f32(d[h], d_a[t]);
                            acc[t][h] = vfmaq_f32(acc[t][h], s1, dd);
                            let md = vmulq_n_f32(dmin[h], d_a[t]);
                            acc_min[t][h] = vfmaq_f32(acc_min[t][h], s2, md);
                        } else {
                            let v = vfmsq_f32(vmulq_f32(s1, d[h]), dmin[h], s2);
                            acc[t][h] = vfmaq_n_f32(acc[t][h], v, d_a[t]);
                        }
                    }
                }
            }
        }
    }
    for t in 0..N {
        for h in 0..2 {
            acc[t][h] = vsubq_f32(acc[t][h], acc_min[t][h]);
        }
    }
    store(&acc, out);
}

/// [`gemm`] with `smull`.
///
/// # Safety
/// As [`gemm`].
#[target_feature(enable = "neon")]
unsafe fn gemm_smull<F: Format, const N: usize>(c: &Codes<'_>, out: &mut [[f32; PANEL_ROWS]]) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm::<Smull, F, N>(c, out) }
}

/// [`gemm`] with `sdot`.
///
/// # Safety
/// As [`gemm`], and the CPU has FEAT_DotProd.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_sdot<F: Format, const N: usize>(c: &Codes<'_>, out: &mut [[f32; PANEL_ROWS]]) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm::<Sdot, F, N>(c, out) }
}
