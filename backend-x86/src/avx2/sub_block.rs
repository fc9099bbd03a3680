//! What every integer kernel does around its dot products, at either level: read a token's
//! four activation codes as one broadcast word, and, once per sub-block, turn the eight rows'
//! integer dots into floats with the weights' scales and the activations' scale, zero-point
//! sum or minimum sum; for K-quants, sum the sub-blocks of a super-block in integers first
//! and turn them into floats once per super-block.

use core::arch::x86_64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

/// The four activation codes at `p`, in every 32-bit lane.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn broadcast4(p: *const u8) -> __m256i {
    // SAFETY: the caller passes a pointer to four readable bytes.
    _mm256_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
}

/// The eight rows' f16 scales (or minimums, or K-quant factors) at `p`.
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn load_scales(p: *const u8) -> __m256 {
    // SAFETY: the caller passes a pointer to eight f16 values.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// The eight rows' `i8` K-quant scales (or minimums) at `p`, widened to 32 bits.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_int_scales(p: *const u8) -> __m256i {
    // SAFETY: the caller passes a pointer to eight readable bytes.
    unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast())) }
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
        let scales = load_scales(w.add(F::CODE_BYTES));
        let a = c.acts().as_ptr();
        for t in 0..N {
            let row = a.add(t * c.stride());
            let word = |at: usize| row.add(at + 4 * b);
            let d = _mm256_set1_ps(word(c.d_at()).cast::<f32>().read_unaligned());
            let scale = _mm256_mul_ps(scales, d);
            match F::OFFSET {
                Some(_) if CENTERED => {
                    let x = _mm256_cvtepi32_ps(idot[t]);
                    acc[t] = _mm256_fmadd_ps(x, scale, acc[t]);
                }
                Some(o) => {
                    // `o * isum` in every lane; `o` is a power of two, so this is a shift.
                    let zero =
                        _mm256_mullo_epi32(broadcast4(word(c.isum_at())), _mm256_set1_epi32(o));
                    let x = _mm256_cvtepi32_ps(_mm256_sub_epi32(idot[t], zero));
                    acc[t] = _mm256_fmadd_ps(x, scale, acc[t]);
                }
                None => {
                    let mins = load_scales(w.add(F::MINS_AT));
                    let fsum = _mm256_set1_ps(word(c.fsum_at()).cast::<f32>().read_unaligned());
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot[t]), scale, acc[t]);
                    acc[t] = _mm256_fmadd_ps(mins, fsum, acc[t]);
                }
            }
        }
    }
}

/// A K-quant float step's integer sums per token, as `gemm_codes_scalar` defines them:
/// `s1 = Σ sc * (idot - o * isum)` and, with minimums, `s2 = Σ m * isum`; and, for formats
/// that keep them apart (`Format::PAIRS`), the minimums' float sums.
pub(crate) struct BlockSums<const N: usize> {
    s1: [__m256i; N],
    s2: [__m256i; N],
    acc_min: [__m256; N],
}

impl<const N: usize> BlockSums<N> {
    #[inline]
    #[target_feature(enable = "avx")]
    pub(crate) fn new() -> Self {
        BlockSums {
            s1: [_mm256_setzero_si256(); N],
            s2: [_mm256_setzero_si256(); N],
            acc_min: [_mm256_setzero_ps(); N],
        }
    }

    /// Adds sub-block `b` (weights at `w`) with its integer dots `idot`.
    ///
    /// # Safety
    /// As [`accumulate`].
    // `t` indexes the sums, the dots and the activation rows alike.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn add<F: Format>(
        &mut self,
        c: &Codes<'_>,
        w: *const u8,
        b: usize,
        idot: &[__m256i; N],
    ) {
        // SAFETY: as in `accumulate`: sub-block `b` starts at `w`, every token row holds its
        // `isum` array of `n_sub` words.
        unsafe {
            let sc = load_int_scales(w.add(F::CODE_BYTES));
            let a = c.acts().as_ptr();
            for t in 0..N {
                let isum = broadcast4(a.add(t * c.stride() + c.isum_at() + 4 * b));
                match F::OFFSET {
                    Some(o) => {
                        let zero = _mm256_mullo_epi32(isum, _mm256_set1_epi32(o));
                        let x = _mm256_sub_epi32(idot[t], zero);
                        self.s1[t] = _mm256_add_epi32(self.s1[t], _mm256_mullo_epi32(x, sc));
                    }
                    None => {
                        let m = load_int_scales(w.add(F::MINS_AT));
                        self.s1[t] = _mm256_add_epi32(self.s1[t], _mm256_mullo_epi32(idot[t], sc));
                        self.s2[t] = _mm256_add_epi32(self.s2[t], _mm256_mullo_epi32(isum, m));
                    }
                }
            }
        }
    }

    /// Ends the float step whose last sub-block is `b`, the block's factors at `factors`:
    /// `acc[t] += (s1 * d - dmin * s2) * d_a` per super-block, or per pair
    /// `acc[t] += s1 * (d * d_a)` and `acc_min[t] += s2 * (dmin * d_a)`, in ggml's roundings;
    /// then clears the integer sums.
    ///
    /// # Safety
    /// `factors` points to the block's eight f16 `d` (and, with minimums, eight `dmin`);
    /// `c` was checked for `N` tokens.
    // `t` indexes the sums, the accumulators and the activation rows alike.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn finish<F: Format>(
        &mut self,
        c: &Codes<'_>,
        factors: *const u8,
        b: usize,
        acc: &mut [__m256; N],
    ) {
        // SAFETY: forwarded from the caller; every token row holds its `d` array.
        unsafe {
            let d = load_scales(factors);
            let a = c.acts().as_ptr();
            for t in 0..N {
                let d_a = a
                    .add(t * c.stride() + c.d_at() + 4 * b)
                    .cast::<f32>()
                    .read_unaligned();
                let d_a = _mm256_set1_ps(d_a);
                let s1 = _mm256_cvtepi32_ps(self.s1[t]);
                if F::PAIRS {
                    let dmin = load_scales(factors.add(2 * PANEL_ROWS));
                    let s2 = _mm256_cvtepi32_ps(self.s2[t]);
                    acc[t] = _mm256_fmadd_ps(s1, _mm256_mul_ps(d, d_a), acc[t]);
                    self.acc_min[t] =
                        _mm256_fmadd_ps(s2, _mm256_mul_ps(dmin, d_a), self.acc_min[t]);
                } else {
                    let mut v = _mm256_mul_ps(s1, d);
                    if F::OFFSET.is_none() {
                        let dmin = load_scales(factors.add(2 * PANEL_ROWS));
                        v = _mm256_fnmadd_ps(dmin, _mm256_cvtepi32_ps(self.s2[t]), v);
                    }
                    acc[t] = _mm256_fmadd_ps(v, d_a, acc[t]);
                }
                self.s1[t] = _mm256_setzero_si256();
                self.s2[t] = _mm256_setzero_si256();
            }
        }
    }

    /// The row results: `acc - acc_min` where the minimums were summed apart.
    #[inline]
    #[target_feature(enable = "avx")]
    pub(crate) fn settle<F: Format>(&self, acc: &mut [__m256; N]) {
        if F::PAIRS {
            for (acc, m) in acc.iter_mut().zip(&self.acc_min) {
                *acc = _mm256_sub_ps(*acc, *m);
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
