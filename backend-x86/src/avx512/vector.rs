//! Attention's dot products of one query with a block of f32 cached rows, with AVX-512:
//! sixteen values per step, eight rows at a time (one accumulator each), a row's last
//! partial step a masked load of zeros, so any length runs the same code. Each row's sum is
//! then halved to eight lanes and the eight rows reduced together (`sum_lanes8`).
//!
//! f16 rows stay with the AVX2 kernel at this level too: converting them (`vcvtph2ps`) is
//! what limits those dots, at the same rate in 512 bits as in 256, and the 256-bit kernel
//! measures faster.

use core::arch::x86_64::*;

use crate::avx2::vector::sum_lanes8;

/// `out[j]` = dot(`q`, the `q.len()` values from `rows[j * stride]`), each row's sum taken in
/// the same order whatever `out.len()` (a block's last rows are computed among copies of its
/// first).
///
/// # Safety
/// The CPU has AVX-512 F and VL, and AVX2; `rows` holds `(out.len() - 1) * stride + q.len()`
/// values when `out` is not empty.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
pub(crate) unsafe fn dot_rows_f32(q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    let len = q.len();
    let whole = len / 16 * 16;
    let tail: __mmask16 = (1 << (len - whole)) - 1;
    let pq = q.as_ptr();
    for (j0, out) in (0..out.len()).step_by(8).zip(out.chunks_mut(8)) {
        let valid = out.len();
        // SAFETY: row `j0 + r` (for `r < valid`) starts within `rows` (caller's promise).
        let row: [*const f32; 8] = core::array::from_fn(|r| unsafe {
            rows.as_ptr().add((j0 + r.min(valid - 1)) * stride)
        });
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut i = 0;
        while i < whole {
            // SAFETY: `i + 16 <= len`: within `q` and within each row's `len` values.
            unsafe {
                let x = _mm512_loadu_ps(pq.add(i));
                for (acc, row) in acc.iter_mut().zip(&row) {
                    *acc = _mm512_fmadd_ps(x, _mm512_loadu_ps(row.add(i)), *acc);
                }
            }
            i += 16;
        }
        if tail != 0 {
            // SAFETY: the mask covers `len - whole` values: the rest of `q` and of each row;
            // masked-off lanes are neither read nor faulted on.
            unsafe {
                let x = _mm512_maskz_loadu_ps(tail, pq.add(whole));
                for (acc, row) in acc.iter_mut().zip(&row) {
                    let y = _mm512_maskz_loadu_ps(tail, row.add(whole));
                    *acc = _mm512_fmadd_ps(x, y, *acc);
                }
            }
        }
        let halves = acc.map(|a| {
            let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a));
            _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(high))
        });
        let keep: __mmask8 = ((1u16 << valid) - 1) as u8;
        // SAFETY: the mask covers `valid` floats: exactly `out`.
        unsafe { _mm256_mask_storeu_ps(out.as_mut_ptr(), keep, sum_lanes8(&halves)) };
    }
}
