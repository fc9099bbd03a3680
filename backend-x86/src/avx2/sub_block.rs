//! What every integer kernel does around its dot products, at either level: read a token's
//! four activation codes as one broadcast word, and, once per sub-block, turn the eight rows'
//! integer dots into floats with the weights' scales and the activations' scale, zero-point
//! sum or minimum sum.

use core::arch::x86_64::*;

use tern_core::cpu::PANEL_ROWS;

use crate::formats::{Codes, Format};

/// The four activation codes at `p`, in every 32-bit lane.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn broadcast4(p: *const u8) -> __m256i {
    // SAFETY: the caller passes a pointer to four readable bytes.
    _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
}

/// The eight rows' scales (or minimums) at `p`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load_scales<F: Format>(p: *const u8) -> __m256 {
    // SAFETY: the caller passes a pointer to eight scales of the format's type.
    unsafe {
        if F::F16 {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        } else {
            _mm256_loadu_ps(p.cast())
        }
    }
}

/// `acc[t] += scale * (idot[t] - o * isum)` or `scale * idot[t] + min * fsum` for sub-block
/// `b` (weights at `w`) and every token `t`, as `gemm_codes_scalar` defines them.
/// `CENTERED`: the dots were taken with codes minus their zero point already.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn accumulate<F: Format, const N: usize, const CENTERED: bool>(
    c: &Codes<'_>,
    w: *const u8,
    b: usize,
    idot: &[__m256i; N],
    acc: &mut [__m256; N],
) {
    // SAFETY: `c` was checked (`Codes::check`): sub-block `b` of the panel starts at `w`, and
    // every token row holds its `d`, `isum` and `fsum` arrays of `n_sub` words.
    unsafe {
        let scales = load_scales::<F>(w.add(F::CODE_BYTES));
        let a = c.acts.as_ptr();
        for t in 0..N {
            let row = a.add(t * c.stride);
            let word = |at: usize| row.add(at + 4 * b);
            let d = _mm256_set1_ps(word(c.d_at).cast::<f32>().read_unaligned());
            let scale = _mm256_mul_ps(scales, d);
            match F::OFFSET {
                Some(_) if CENTERED => {
                    let x = _mm256_cvtepi32_ps(idot[t]);
                    acc[t] = _mm256_fmadd_ps(x, scale, acc[t]);
                }
                Some(o) => {
                    // `o * isum` in every lane; `o` is a power of two, so this is a shift.
                    let zero =
                        _mm256_mullo_epi32(broadcast4(word(c.isum_at)), _mm256_set1_epi32(o));
                    let x = _mm256_cvtepi32_ps(_mm256_sub_epi32(idot[t], zero));
                    acc[t] = _mm256_fmadd_ps(x, scale, acc[t]);
                }
                None => {
                    let mins = load_scales::<F>(w.add(F::MINS_AT));
                    let fsum = _mm256_set1_ps(word(c.fsum_at).cast::<f32>().read_unaligned());
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot[t]), scale, acc[t]);
                    acc[t] = _mm256_fmadd_ps(mins, fsum, acc[t]);
                }
            }
        }
    }
}

/// Writes each token's eight row sums.
#[inline]
#[target_feature(enable = "avx")]
pub(crate) fn store<const N: usize>(acc: &[__m256; N], out: &mut [[f32; PANEL_ROWS]]) {
    for (acc, out) in acc.iter().zip(out.iter_mut()) {
        // SAFETY: `out` is eight writable floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *acc) };
    }
}
