//! `gemm_f32` with AVX2 and FMA: one panel column (the eight rows' values) is one vector,
//! multiplied by each token's broadcast value. `U` columns are in flight at once with their
//! own accumulators, which hides the FMA latency.

use core::arch::x86_64::*;

use tern_core::cpu::PANEL_ROWS;

use super::sub_block::store;

/// `out[t]` = dot(panel rows, `x` row `t`) for `N` tokens of `cols` values.
///
/// # Safety
/// The CPU has AVX2 and FMA; `panel` holds `cols * PANEL_ROWS` floats, `x` holds `N * cols`,
/// `out` at least `N` rows.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gemm_f32<const N: usize, const U: usize>(
    cols: usize,
    panel: &[f32],
    x: &[f32],
    out: &mut [[f32; PANEL_ROWS]],
) {
    let mut acc = [[_mm256_setzero_ps(); N]; U];
    let (w, x) = (panel.as_ptr(), x.as_ptr());
    let mut k = 0;
    while k + U <= cols {
        for (u, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `k + u < cols`: column `k + u` of the panel and element `k + u` of
            // every token row lie within the slices the caller vouched for.
            unsafe {
                let col = _mm256_loadu_ps(w.add((k + u) * PANEL_ROWS));
                for (t, acc) in acc.iter_mut().enumerate() {
                    let xv = _mm256_set1_ps(*x.add(t * cols + k + u));
                    *acc = _mm256_fmadd_ps(col, xv, *acc);
                }
            }
        }
        k += U;
    }
    while k < cols {
        // SAFETY: as above, with `k < cols`.
        unsafe {
            let col = _mm256_loadu_ps(w.add(k * PANEL_ROWS));
            for (t, acc) in acc[0].iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(col, _mm256_set1_ps(*x.add(t * cols + k)), *acc);
            }
        }
        k += 1;
    }
    let mut sum = acc[0];
    for part in &acc[1..] {
        for (s, p) in sum.iter_mut().zip(part) {
            *s = _mm256_add_ps(*s, *p);
        }
    }
    store(&sum, out);
}

/// Calls [`gemm_f32`] for `n` (1..=8) tokens, two at a time with four columns in flight: every
/// token's sum runs in the same order whatever the tile, so a row's result does not depend on
/// how many tokens were batched with it.
///
/// # Safety
/// As [`gemm_f32`], for `N = n`.
#[target_feature(enable = "avx2,fma")]
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
                gemm_f32::<2, 4>(cols, panel, x, out);
            } else {
                gemm_f32::<1, 4>(cols, panel, x, out);
            }
        }
    }
}
