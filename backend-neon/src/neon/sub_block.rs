//! What every integer kernel does once per sub-block, at any level: turn the eight rows'
//! integer dots into floats with the weights' scales and the activation's scale, zero-point
//! sum or minimum sum, exactly as `gemm_codes_scalar` defines it (up to fused rounding).

use core::arch::aarch64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::codes::centered;

/// Eight rows' integer dots with one token: rows 0-3, rows 4-7.
pub(crate) type RowDots = [int32x4_t; 2];
/// Eight rows' float sums for one token: rows 0-3, rows 4-7.
pub(crate) type RowSums = [float32x4_t; 2];

/// Eight f16 values at `p` (the rows' scales, minimums or factors), as f32.
///
/// # Safety
/// `p` points to 16 readable bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn load_f16x8(p: *const u8) -> RowSums {
    // SAFETY: the caller passes 16 readable bytes.
    let h = vreinterpretq_f16_u16(unsafe { vld1q_u16(p.cast()) });
    [vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)]
}

/// `acc[t] += scale * (idot[t] - o * isum)` or `scale * idot[t] + min * fsum` for sub-block
/// `b` (weights at `w`) and every token `t`, for a legacy format (f16 scales per
/// sub-block); dots of centered codes ([`centered`]) already hold their zero point.
///
/// # Safety
/// `c` was checked (`Codes::check`) for format `F` (not a K-quant) and `N` tokens; `w` is
/// sub-block `b` of one of its panels.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn accumulate<F: Format, const N: usize>(
    c: &Codes<'_>,
    w: *const u8,
    b: usize,
    idot: &[RowDots; N],
    acc: &mut [RowSums; N],
) {
    const { assert!(!F::SUPER_BLOCK) };
    // SAFETY: the scales (and minimums) follow the codes of sub-block `b`, and every token
    // row holds its `d`, `isum` and `fsum` arrays of `n_sub` words.
    unsafe {
        let scales = load_f16x8(w.add(F::CODE_BYTES));
        let mins = match F::OFFSET {
            None => load_f16x8(w.add(F::MINS_AT)),
            Some(_) => [vdupq_n_f32(0.0); 2],
        };
        for t in 0..N {
            let row = c.acts().as_ptr().add(t * c.stride());
            let word = |at: usize| row.add(at + 4 * b).cast::<[u8; 4]>().read_unaligned();
            let d = f32::from_le_bytes(word(c.d_at()));
            for h in 0..2 {
                let scale = vmulq_n_f32(scales[h], d);
                acc[t][h] = match F::OFFSET {
                    Some(_) if centered::<F>() => {
                        vfmaq_f32(acc[t][h], vcvtq_f32_s32(idot[t][h]), scale)
                    }
                    Some(o) => {
                        let zero = o * i32::from_le_bytes(word(c.isum_at()));
                        let x = vsubq_s32(idot[t][h], vdupq_n_s32(zero));
                        vfmaq_f32(acc[t][h], vcvtq_f32_s32(x), scale)
                    }
                    None => {
                        let fsum = f32::from_le_bytes(word(c.fsum_at()));
                        let a = vfmaq_f32(acc[t][h], vcvtq_f32_s32(idot[t][h]), scale);
                        vfmaq_n_f32(a, mins[h], fsum)
                    }
                };
            }
        }
    }
}

/// Writes each token's eight row sums.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn store<const N: usize>(acc: &[RowSums; N], out: &mut [[f32; PANEL_ROWS]]) {
    for (acc, out) in acc.iter().zip(out.iter_mut()) {
        // SAFETY: `out` is eight writable floats.
        unsafe {
            vst1q_f32(out.as_mut_ptr(), acc[0]);
            vst1q_f32(out.as_mut_ptr().add(4), acc[1]);
        }
    }
}
