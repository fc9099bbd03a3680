//! `dot_rows_f16` in f16 arithmetic. The query is converted to f16 once per call (attention
//! rounds it to f16 already when the cache is f16, so nothing is lost there); each row's
//! products are summed in two registers of eight f16 lanes, so a lane adds `len / 16`
//! products (8 for a head of 128) before the lanes are widened to f32 and summed: half the
//! multiply-adds of the f32 path, and no per-element conversions.
//!
//! f16 overflows at 65504: a row whose f16 sum is not finite is computed again in f32, so a
//! result is never infinite or NaN unless the f32 definition's is. Lengths that are not a
//! multiple of 16 end in f32.

use core::arch::aarch64::*;

use half::f16;

use crate::neon::vector::dot;

/// Longest query converted on the stack: heads are at most 256 wide.
const MAX_QUERY: usize = 512;

/// Whether a query of `len` values takes this path.
pub(crate) fn fits(len: usize) -> bool {
    len <= MAX_QUERY
}

/// `out[j]` = dot(`q`, the `q.len()` values from `rows[j * stride]`), each row's sum taken in
/// the same order whatever `out.len()`.
///
/// # Safety
/// The CPU has FEAT_FP16; `q.len() <= MAX_QUERY`; `rows` holds
/// `(out.len() - 1) * stride + q.len()` values (when `out` is not empty).
#[target_feature(enable = "neon,fp16")]
pub(crate) unsafe fn dot_rows_f16(q: &[f32], rows: &[f16], stride: usize, out: &mut [f32]) {
    let len = q.len();
    let main = len / 16 * 16;
    let mut qh = [0u16; MAX_QUERY];
    for (h, v) in qh[..main].chunks_exact_mut(4).zip(q.chunks_exact(4)) {
        // SAFETY: `v` is four floats and `h` four writable halves.
        unsafe {
            vst1_u16(
                h.as_mut_ptr(),
                vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(v.as_ptr()))),
            )
        };
    }
    for (j, o) in out.iter_mut().enumerate() {
        // SAFETY: row `j` lies within `rows`, as the caller vouched.
        let row = unsafe { core::slice::from_raw_parts(rows.as_ptr().add(j * stride), len) };
        let mut acc = [vreinterpretq_f16_u16(vdupq_n_u16(0)); 2];
        for i in (0..main).step_by(16) {
            for (u, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `i + 8u + 8 <= main <= len`: both hold these eight values.
                unsafe {
                    let at = i + 8 * u;
                    let a = vreinterpretq_f16_u16(vld1q_u16(qh.as_ptr().add(at)));
                    let b = vreinterpretq_f16_u16(vld1q_u16(row.as_ptr().add(at).cast()));
                    *acc = vfmaq_f16(*acc, a, b);
                }
            }
        }
        let wide = vaddq_f32(
            vaddq_f32(
                vcvt_f32_f16(vget_low_f16(acc[0])),
                vcvt_high_f32_f16(acc[0]),
            ),
            vaddq_f32(
                vcvt_f32_f16(vget_low_f16(acc[1])),
                vcvt_high_f32_f16(acc[1]),
            ),
        );
        let mut s = vaddvq_f32(wide);
        for i in main..len {
            s += q[i] * row[i].to_f32();
        }
        if !s.is_finite() {
            // SAFETY: NEON, which FEAT_FP16 implies.
            s = unsafe { dot(q, row) };
        }
        *o = s;
    }
}
