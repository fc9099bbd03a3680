//! `gemm_codes` on the i8mm layout ([`super::layout`]): `smmla` for two or more tokens,
//! `sdot` for one.
//!
//! Prefill tile: 8 rows (the panel) by 8 tokens (`tile_tokens`, four token pairs) by 8
//! columns per instruction. Per column step, the four row-pair registers meet each token
//! pair's register (eight columns of two tokens) in one `smmla` each: 16 integer
//! accumulators, 4 code and 4 activation registers, 24 of the 32 vector registers; the float
//! accumulators are touched once per sub-block and may live in memory. An `smmla` does twice
//! the multiplies of an `sdot`, so prefill issues half the instructions of the `sdot` level.
//! (The MNN-LLM paper's 10 tokens are five pairs; eight is the driver's largest tile.) An
//! odd token count repeats its last token in the last pair and drops the copy's lanes.
//!
//! Decode: `sdot` of each row-pair register against the token's eight columns held twice
//! gives lanes `[r0 low half, r0 high half, r1 low, r1 high]`; `addp` joins the halves.

use core::arch::aarch64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::smmla::smmla;
use crate::dotprod::sdot::sdot;
use crate::neon::sub_block::{RowDots, RowSums, accumulate, store};

/// Column step `j` of the sub-block at `w`: the four row-pair registers, signed.
///
/// # Safety
/// `w` points to a whole sub-block of format `F` in the i8mm layout; `j < F::SUB_BLOCK / 8`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn step<F: Format>(w: *const u8, j: usize) -> [int8x16_t; 4] {
    let half = F::SUB_BLOCK / 16;
    let stored = if F::BITS == 4 { j % half } else { j };
    core::array::from_fn(|p| {
        // SAFETY: register `4 * stored + p` lies within the sub-block's codes.
        let raw = unsafe { vld1q_u8(w.add(16 * (4 * stored + p))) };
        let codes = if F::BITS != 4 {
            raw
        } else if j < half {
            vandq_u8(raw, vdupq_n_u8(0x0f))
        } else {
            vshrq_n_u8::<4>(raw)
        };
        vreinterpretq_s8_u8(codes)
    })
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens (2 or more).
///
/// # Safety
/// The CPU has FEAT_I8MM; `c` was checked by `Codes::check` for format `F`, one panel in the
/// i8mm layout and `N` tokens; `out` holds at least `N` rows.
// `t` and `pair` index accumulators and activation rows alike.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm<F: Format, const N: usize>(c: &Codes<'_>, out: &mut [[f32; PANEL_ROWS]]) {
    let pairs = N.div_ceil(2);
    let mut acc: [RowSums; N] = [[vdupq_n_f32(0.0); 2]; N];
    let (panel, acts) = (c.panel().as_ptr(), c.acts().as_ptr());
    for b in 0..c.n_sub() {
        // SAFETY: `Codes::check` guarantees `n_sub` whole sub-blocks in the panel and, in
        // each of `N` token rows, `n_sub * SUB_BLOCK` codes; every offset below stays within
        // sub-block `b` and its columns.
        unsafe {
            let w = panel.add(b * F::SUB_BLOCK_BYTES);
            // Per token pair, per row pair: `[r0·t0, r0·t1, r1·t0, r1·t1]`.
            let mut mm = [[vdupq_n_s32(0); 4]; N];
            for j in 0..F::SUB_BLOCK / 8 {
                let wr = step::<F>(w, j);
                for pair in 0..pairs {
                    let (t0, t1) = (2 * pair, (2 * pair + 1).min(N - 1));
                    let col = b * F::SUB_BLOCK + 8 * j;
                    let a = vcombine_s8(
                        vld1_s8(acts.add(t0 * c.stride() + col).cast()),
                        vld1_s8(acts.add(t1 * c.stride() + col).cast()),
                    );
                    for p in 0..4 {
                        mm[pair][p] = smmla(mm[pair][p], wr[p], a);
                    }
                }
            }
            let mut idot: [RowDots; N] = [[vdupq_n_s32(0); 2]; N];
            for pair in 0..pairs {
                let m = &mm[pair];
                idot[2 * pair] = [vuzp1q_s32(m[0], m[1]), vuzp1q_s32(m[2], m[3])];
                if 2 * pair + 1 < N {
                    idot[2 * pair + 1] = [vuzp2q_s32(m[0], m[1]), vuzp2q_s32(m[2], m[3])];
                }
            }
            accumulate::<F, N>(c, w, b, &idot, &mut acc);
        }
    }
    store(&acc, out);
}

/// `out[0]` = the panel's eight row dots with the one token.
///
/// # Safety
/// The CPU has FEAT_DotProd; `c` was checked by `Codes::check` for format `F`, one panel in
/// the i8mm layout and one token; `out` holds at least one row.
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemv<F: Format>(c: &Codes<'_>, out: &mut [[f32; PANEL_ROWS]]) {
    let mut acc: [RowSums; 1] = [[vdupq_n_f32(0.0); 2]];
    let (panel, acts) = (c.panel().as_ptr(), c.acts().as_ptr());
    for b in 0..c.n_sub() {
        // SAFETY: as in `gemm`, for one token.
        unsafe {
            let w = panel.add(b * F::SUB_BLOCK_BYTES);
            let mut halves = [vdupq_n_s32(0); 4];
            for j in 0..F::SUB_BLOCK / 8 {
                let wr = step::<F>(w, j);
                let eight = acts
                    .add(b * F::SUB_BLOCK + 8 * j)
                    .cast::<i64>()
                    .read_unaligned();
                let a = vreinterpretq_s8_s64(vdupq_n_s64(eight));
                for p in 0..4 {
                    halves[p] = sdot(halves[p], wr[p], a);
                }
            }
            let idot = [[
                vpaddq_s32(halves[0], halves[1]),
                vpaddq_s32(halves[2], halves[3]),
            ]];
            accumulate::<F, 1>(c, w, b, &idot, &mut acc);
        }
    }
    store(&acc, out);
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens.
///
/// # Safety
/// The CPU has FEAT_I8MM and FEAT_DotProd; `c` was checked by `Codes::check` for format `F`,
/// one panel in the i8mm layout and `N` tokens; `out` holds at least `N` rows.
#[target_feature(enable = "neon,dotprod,i8mm")]
pub(crate) unsafe fn gemm_codes<F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if N == 1 {
            gemv::<F>(c, out);
        } else {
            gemm::<F, N>(c, out);
        }
    }
}
