//! Attention's vector kernels with AVX2, FMA and F16C: dot products with four independent
//! accumulators (32 floats per step), a query's dots with a block of rows eight rows at a
//! time (one accumulator per row, the eight reduced together), and `y += a * x` as the
//! scalar definition computes it (a product, then a sum, so results are bit-identical to
//! it). Lengths that are not a multiple of eight end with scalar steps.

use core::arch::x86_64::*;

use half::f16;

/// An element type of the second operand: f32 or f16.
trait Element: Copy {
    /// Eight values at `p`, as f32.
    ///
    /// # Safety
    /// `p` points to eight readable values; the CPU has AVX2 and F16C.
    unsafe fn load8(p: *const Self) -> __m256;

    fn to_f32(self) -> f32;
}

impl Element for f32 {
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: the caller passes eight readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }

    fn to_f32(self) -> f32 {
        self
    }
}

impl Element for f16 {
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn load8(p: *const f16) -> __m256 {
        // SAFETY: the caller passes eight readable f16 (`f16` is a `u16` in memory).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }

    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The sums of the lanes of `a[0]` to `a[7]`, in that order: each one added up as
/// `((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))`, whatever the others hold.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn sum_lanes8(a: &[__m256; 8]) -> __m256 {
    let h01 = _mm256_hadd_ps(a[0], a[1]);
    let h23 = _mm256_hadd_ps(a[2], a[3]);
    let h45 = _mm256_hadd_ps(a[4], a[5]);
    let h67 = _mm256_hadd_ps(a[6], a[7]);
    // Lanes: rows 0-3 (resp. 4-7), their low halves' sums, then their high halves'.
    let h0123 = _mm256_hadd_ps(h01, h23);
    let h4567 = _mm256_hadd_ps(h45, h67);
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(h0123, h4567),
        _mm256_permute2f128_ps::<0x31>(h0123, h4567),
    )
}

/// Rows of a block, eight at a time: `out[j]` = dot(`q`, the `q.len()` values from
/// `rows[j * stride]`), each row's sum taken in the same order whatever `out.len()` (a
/// block's last rows are computed among copies of its first).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `rows` holds `(out.len() - 1) * stride + q.len()`
/// values when `out` is not empty.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows<T: Element>(q: &[f32], rows: &[T], stride: usize, out: &mut [f32]) {
    let len = q.len();
    let whole = len / 8 * 8;
    let pq = q.as_ptr();
    for (j0, out) in (0..out.len()).step_by(8).zip(out.chunks_mut(8)) {
        let valid = out.len();
        // SAFETY: row `j0 + r` (for `r < valid`) starts within `rows` (caller's promise).
        let row: [*const T; 8] = core::array::from_fn(|r| unsafe {
            rows.as_ptr().add((j0 + r.min(valid - 1)) * stride)
        });
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i < whole {
            // SAFETY: `i + 8 <= len`: within `q` and within each row's `len` values.
            unsafe {
                let x = _mm256_loadu_ps(pq.add(i));
                for (acc, row) in acc.iter_mut().zip(&row) {
                    *acc = _mm256_fmadd_ps(x, T::load8(row.add(i)), *acc);
                }
            }
            i += 8;
        }
        let mut sums = [0f32; 8];
        // SAFETY: `sums` is eight writable floats.
        unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), sum_lanes8(&acc)) };
        for ((o, s), row) in out.iter_mut().zip(sums).zip(row) {
            // SAFETY: each row holds `len` values.
            let tail = unsafe { core::slice::from_raw_parts(row.add(whole), len - whole) };
            *o = s + q[whole..]
                .iter()
                .zip(tail)
                .map(|(a, b)| a * b.to_f32())
                .sum::<f32>();
        }
    }
}

/// `out[j]` = dot(`q`, row `j` of `rows`), rows `stride` apart.
///
/// # Safety
/// As [`dot_rows`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_rows_f32(q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
    // SAFETY: forwarded from the caller.
    unsafe { dot_rows(q, rows, stride, out) }
}

/// [`dot_rows_f32`] with the rows in f16.
///
/// # Safety
/// As [`dot_rows`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_rows_f16(q: &[f32], rows: &[f16], stride: usize, out: &mut [f32]) {
    // SAFETY: forwarded from the caller.
    unsafe { dot_rows(q, rows, stride, out) }
}

/// `Σ a[i] * b[i]` over the common length.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot<T: Element>(a: &[f32], b: &[T]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `i + 8 * j + 8 <= n`, within both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(pa.add(i + 8 * j)),
                    T::load8(pb.add(i + 8 * j)),
                )
            };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, within both slices.
        let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), T::load8(pb.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let tail: f32 = a[i..n]
        .iter()
        .zip(&b[i..n])
        .map(|(a, b)| a * b.to_f32())
        .sum();
    hsum(sum) + tail
}

/// `Σ a[i] * b[i]`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b)
}

/// `Σ a[i] * b[i]` with `b` in f16.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
    dot(a, b)
}

/// `y[i] += a * x[i]` over the common length.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn axpy<T: Element>(y: &mut [f32], a: f32, x: &[T]) {
    let n = y.len().min(x.len());
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let av = _mm256_set1_ps(a);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, within both slices; `y` is borrowed mutably, alone.
        unsafe {
            let v = _mm256_add_ps(
                _mm256_loadu_ps(py.add(i)),
                _mm256_mul_ps(av, T::load8(px.add(i))),
            );
            _mm256_storeu_ps(py.add(i), v);
        }
        i += 8;
    }
    for (y, x) in y[i..n].iter_mut().zip(&x[i..n]) {
        *y += a * x.to_f32();
    }
}

/// `y[i] += a * x[i]`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn axpy_f32(y: &mut [f32], a: f32, x: &[f32]) {
    axpy(y, a, x)
}

/// `y[i] += a * x[i]` with `x` in f16.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn axpy_f16(y: &mut [f32], a: f32, x: &[f16]) {
    axpy(y, a, x)
}
