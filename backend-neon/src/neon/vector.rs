//! Attention's vector kernels with Advanced SIMD, in f32 (f16 operands widened with
//! `fcvtl`): dot products with four independent accumulators (16 floats per step), a
//! query's dots with a block of rows one row at a time (so a row's sum never depends on the
//! block), and `y += a * x` as the scalar definition computes it (a product, then a sum, so
//! results are bit-identical to it). Lengths that are not a multiple of the step end with
//! scalar steps.

use core::arch::aarch64::*;

use half::f16;

/// An element type of the second operand: f32 or f16.
pub(crate) trait Element: Copy {
    /// Four values at `p`, as f32.
    ///
    /// # Safety
    /// `p` points to four readable values.
    unsafe fn load4(p: *const Self) -> float32x4_t;

    fn to_f32(self) -> f32;
}

impl Element for f32 {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn load4(p: *const f32) -> float32x4_t {
        // SAFETY: the caller passes four readable floats.
        unsafe { vld1q_f32(p) }
    }

    fn to_f32(self) -> f32 {
        self
    }
}

impl Element for f16 {
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn load4(p: *const f16) -> float32x4_t {
        // SAFETY: the caller passes four readable f16 (`f16` is a `u16` in memory).
        unsafe { vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p.cast()))) }
    }

    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

/// `Σ a[i] * b[i]` over the common length.
///
/// # Safety
/// None beyond NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot<E: Element>(a: &[f32], b: &[E]) -> f32 {
    let n = a.len().min(b.len());
    let main = n / 16 * 16;
    let mut acc = [vdupq_n_f32(0.0); 4];
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    for i in (0..main).step_by(16) {
        for (u, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `i + 4u + 4 <= main <= n`: both operands hold these four values.
            unsafe {
                let at = i + 4 * u;
                *acc = vfmaq_f32(*acc, vld1q_f32(pa.add(at)), E::load4(pb.add(at)));
            }
        }
    }
    let sum = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
    let mut s = vaddvq_f32(sum);
    for i in main..n {
        s += a[i] * b[i].to_f32();
    }
    s
}

/// `out[j]` = dot(`q`, the `q.len()` values from `rows[j * stride]`).
///
/// # Safety
/// `rows` holds `(out.len() - 1) * stride + q.len()` values (when `out` is not empty).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn dot_rows<E: Element>(q: &[f32], rows: &[E], stride: usize, out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        // SAFETY: row `j` lies within `rows`, as the caller vouched.
        let row = unsafe { core::slice::from_raw_parts(rows.as_ptr().add(j * stride), q.len()) };
        // SAFETY: NEON, as this function.
        *o = unsafe { dot(q, row) };
    }
}

/// `y[i] += a * x[i]` over the common length, rounded as the scalar definition rounds.
///
/// # Safety
/// None beyond NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn axpy<E: Element>(y: &mut [f32], a: f32, x: &[E]) {
    let n = y.len().min(x.len());
    let main = n / 4 * 4;
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    for i in (0..main).step_by(4) {
        // SAFETY: `i + 4 <= main <= n`: both slices hold these four values.
        unsafe {
            let v = vaddq_f32(vld1q_f32(py.add(i)), vmulq_n_f32(E::load4(px.add(i)), a));
            vst1q_f32(py.add(i), v);
        }
    }
    for i in main..n {
        y[i] += a * x[i].to_f32();
    }
}
