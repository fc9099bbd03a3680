//! `gemm_f32` with Advanced SIMD: one panel column (the eight rows' values) is two
//! registers, multiplied by each token's value with `fmla` by scalar. Two columns are in
//! flight with their own accumulators, which hides the `fmla` latency.

use core::arch::aarch64::*;

use tern_core::cpu::PANEL_ROWS;

use super::sub_block::{RowSums, store};

/// Columns in flight.
const U: usize = 2;

/// `out[t]` = dot(panel rows, `x` row `t`) for `N` tokens of `cols` values.
///
/// # Safety
/// `panel` holds `cols * PANEL_ROWS` floats, `x` holds `N * cols`, `out` at least `N` rows.
#[target_feature(enable = "neon")]
unsafe fn gemm_f32<const N: usize>(
    cols: usize,
    panel: &[f32],
    x: &[f32],
    out: &mut [[f32; PANEL_ROWS]],
) {
    let zero = vdupq_n_f32(0.0);
    let mut acc: [[RowSums; N]; U] = [[[zero; 2]; N]; U];
    let (w, xp) = (panel.as_ptr(), x.as_ptr());
    let mut k = 0;
    while k < cols {
        let step = U.min(cols - k);
        for (u, acc) in acc.iter_mut().enumerate().take(step) {
            // SAFETY: `k + u < cols`: column `k + u` of the panel and element `k + u` of
            // every token row lie within the slices the caller vouched for.
            unsafe {
                let col = w.add((k + u) * PANEL_ROWS);
                let (lo, hi) = (vld1q_f32(col), vld1q_f32(col.add(4)));
                for (t, acc) in acc.iter_mut().enumerate() {
                    let xv = *xp.add(t * cols + k + u);
                    acc[0] = vfmaq_n_f32(acc[0], lo, xv);
                    acc[1] = vfmaq_n_f32(acc[1], hi, xv);
                }
            }
        }
        k += step;
    }
    let mut sum = acc[0];
    for part in &acc[1..] {
        for (s, p) in sum.iter_mut().zip(part) {
            s[0] = vaddq_f32(s[0], p[0]);
            s[1] = vaddq_f32(s[1], p[1]);
        }
    }
    store(&sum, out);
}

/// Calls [`gemm_f32`] for `n` tokens, two at a time: every token's sum runs in the same
/// order whatever the tile, so a row's result does not depend on its batch.
///
/// # Safety
/// `panel` holds `cols * PANEL_ROWS` floats, `x` holds `n * cols`, `out` at least `n` rows.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn gemm_f32_n(
    n: usize,
    cols: usize,
    panel: &[f32],
    x: &[f32],
    out: &mut [[f32; PANEL_ROWS]],
) {
    for t in (0..n).step_by(2) {
        let (x, out) = (&x[t * cols..], &mut out[t..]);
        // SAFETY: forwarded from the caller, for tokens `t..t + 2` (or the last one).
        unsafe {
            if t + 1 < n {
                gemm_f32::<2>(cols, panel, x, out);
            } else {
                gemm_f32::<1>(cols, panel, x, out);
            }
        }
    }
}
