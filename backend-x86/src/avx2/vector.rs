//! Attention's vector kernels with AVX2, FMA and F16C: dot products with four independent
//! accumulators (32 floats per step), and `y += a * x` as the scalar definition computes it
//! (a product, then a sum, so results are bit-identical to it). Lengths that are not a
//! multiple of eight end with scalar steps.

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
