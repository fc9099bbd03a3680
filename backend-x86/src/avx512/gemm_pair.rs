//! `gemm_codes` over two consecutive panels at once with AVX-512 VNNI: their 16 rows fill a
//! 512-bit register (the first panel's eight rows in the low half, the second's in the high),
//! so each broadcast activation word, and each token's per-sub-block scaling (one
//! conversion, one multiply, one FMA), serves 16 rows instead of 8.
//!
//! On Zen 4 this takes GEMM from about 60% to about 75% of `vpdpbusd`'s peak. What is left
//! is the scaling's multiply and FMA, which share their two pipes with `vpdpbusd`: two per
//! token and sub-block against eight dot steps bound a 32-column sub-block at 8/10 of peak.
//!
//! Every lane computes exactly what the 8-row kernel ([`super::gemm_codes`]) computes for its
//! row: the same exact integer dot, then the same float steps in the same order. A row's
//! result therefore does not depend on whether its panel went alone or in a pair, nor on
//! the number of tokens in the tile.

use core::arch::x86_64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::gemm_codes::SPLIT_BELOW;

/// The 32 code bytes at `a` (first panel) and at `a + gap` (second panel) as one vector.
///
/// # Safety
/// Both 32-byte ranges are readable; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_codes(a: *const u8, gap: usize) -> __m512i {
    // SAFETY: the caller passes two readable 32-byte ranges.
    unsafe {
        let lo = _mm256_loadu_si256(a.cast());
        let hi = _mm256_loadu_si256(a.add(gap).cast());
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }
}

/// The sixteen rows' f16 scales (or minimums, or K-quant factors): eight at `a`, eight at
/// `a + gap`.
///
/// # Safety
/// Both ranges hold eight f16 values; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn load_scales(a: *const u8, gap: usize) -> __m512 {
    // SAFETY: the caller passes two readable ranges of eight f16 values.
    unsafe {
        let lo = _mm_loadu_si128(a.cast());
        let hi = _mm_loadu_si128(a.add(gap).cast());
        _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi))
    }
}

/// The sixteen rows' `i8` K-quant scales (or minimums), eight at `a`, eight at `a + gap`,
/// widened to 32 bits.
///
/// # Safety
/// Both ranges hold eight bytes; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn load_int_scales(a: *const u8, gap: usize) -> __m512i {
    // SAFETY: the caller passes two readable ranges of eight bytes.
    unsafe {
        let lo = a.cast::<i64>().read_unaligned();
        let hi = a.add(gap).cast::<i64>().read_unaligned();
        _mm512_cvtepi8_epi32(_mm_set_epi64x(hi, lo))
    }
}

/// The four activation codes at `p`, in every 32-bit lane.
///
/// # Safety
/// `p` points to four readable bytes; the CPU has AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn broadcast4(p: *const u8) -> __m512i {
    // SAFETY: the caller passes a pointer to four readable bytes.
    _mm512_set1_epi32(unsafe { p.cast::<i32>().read_unaligned() })
}

/// `acc[t] += scale * (idot[t] - o * isum)` or `scale * idot[t] + min * fsum` for sub-block
/// `b` (first panel's weights at `w`) and every token `t`: the 8-row kernels' steps
/// (`crate::avx2::sub_block::accumulate`), lane for lane.
///
/// # Safety
/// `c` was checked for two panels and `N` tokens, `w` is sub-block `b` of the first; the CPU
/// has AVX-512 F.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
unsafe fn accumulate<F: Format, const N: usize>(
    c: &Codes<'_>,
    w: *const u8,
    b: usize,
    idot: &[__m512i; N],
    acc: &mut [__m512; N],
) {
    // SAFETY: `c` was checked (`Codes::check`): sub-block `b` of each panel starts at `w` and
    // `w + panel_bytes`, and every token row holds its `d`, `isum` and `fsum` arrays of
    // `n_sub` words.
    unsafe {
        let gap = c.panel_bytes();
        let scales = load_scales(w.add(F::CODE_BYTES), gap);
        let a = c.acts().as_ptr();
        for t in 0..N {
            let row = a.add(t * c.stride());
            let word = |at: usize| row.add(at + 4 * b);
            let d = _mm512_set1_ps(word(c.d_at()).cast::<f32>().read_unaligned());
            let scale = _mm512_mul_ps(scales, d);
            match F::OFFSET {
                Some(o) => {
                    let zero =
                        _mm512_mullo_epi32(broadcast4(word(c.isum_at())), _mm512_set1_epi32(o));
                    let x = _mm512_cvtepi32_ps(_mm512_sub_epi32(idot[t], zero));
                    acc[t] = _mm512_fmadd_ps(x, scale, acc[t]);
                }
                None => {
                    let mins = load_scales(w.add(F::MINS_AT), gap);
                    let fsum = _mm512_set1_ps(word(c.fsum_at()).cast::<f32>().read_unaligned());
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot[t]), scale, acc[t]);
                    acc[t] = _mm512_fmadd_ps(mins, fsum, acc[t]);
                }
            }
        }
    }
}

/// A K-quant super-block's integer sums per token over both panels' sixteen rows: the
/// 8-row kernels' `BlockSums` (`crate::avx2::sub_block`), lane for lane.
struct BlockSums<const N: usize> {
    s1: [__m512i; N],
    s2: [__m512i; N],
    acc_min: [__m512; N],
}

impl<const N: usize> BlockSums<N> {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        BlockSums {
            s1: [_mm512_setzero_si512(); N],
            s2: [_mm512_setzero_si512(); N],
            acc_min: [_mm512_setzero_ps(); N],
        }
    }

    /// Adds sub-block `b` (first panel's weights at `w`) with its integer dots.
    ///
    /// # Safety
    /// As [`accumulate`].
    // `t` indexes the sums, the dots and the activation rows alike.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,avx512f")]
    unsafe fn add<F: Format>(
        &mut self,
        c: &Codes<'_>,
        w: *const u8,
        b: usize,
        idot: &[__m512i; N],
    ) {
        // SAFETY: as in `accumulate`.
        unsafe {
            let gap = c.panel_bytes();
            let sc = load_int_scales(w.add(F::CODE_BYTES), gap);
            let a = c.acts().as_ptr();
            for t in 0..N {
                let isum = broadcast4(a.add(t * c.stride() + c.isum_at() + 4 * b));
                match F::OFFSET {
                    Some(o) => {
                        let zero = _mm512_mullo_epi32(isum, _mm512_set1_epi32(o));
                        let x = _mm512_sub_epi32(idot[t], zero);
                        self.s1[t] = _mm512_add_epi32(self.s1[t], _mm512_mullo_epi32(x, sc));
                    }
                    None => {
                        let m = load_int_scales(w.add(F::MINS_AT), gap);
                        self.s1[t] = _mm512_add_epi32(self.s1[t], _mm512_mullo_epi32(idot[t], sc));
                        self.s2[t] = _mm512_add_epi32(self.s2[t], _mm512_mullo_epi32(isum, m));
                    }
                }
            }
        }
    }

    /// Ends the float step whose last sub-block is `b`, the first panel's factors at
    /// `factors`.
    ///
    /// # Safety
    /// Both panels' factors lie at `factors` and `factors + panel_bytes`; `c` was checked
    /// for `N` tokens.
    // `t` indexes the sums, the accumulators and the activation rows alike.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f")]
    unsafe fn finish<F: Format>(
        &mut self,
        c: &Codes<'_>,
        factors: *const u8,
        b: usize,
        acc: &mut [__m512; N],
    ) {
        // SAFETY: forwarded from the caller; every token row holds its `d` array.
        unsafe {
            let gap = c.panel_bytes();
            let d = load_scales(factors, gap);
            let a = c.acts().as_ptr();
            for t in 0..N {
                let d_a = a
                    .add(t * c.stride() + c.d_at() + 4 * b)
                    .cast::<f32>()
                    .read_unaligned();
                let d_a = _mm512_set1_ps(d_a);
                let s1 = _mm512_cvtepi32_ps(self.s1[t]);
                if F::PAIRS {
                    let dmin = load_scales(factors.add(2 * PANEL_ROWS), gap);
                    let s2 = _mm512_cvtepi32_ps(self.s2[t]);
                    acc[t] = _mm512_fmadd_ps(s1, _mm512_mul_ps(d, d_a), acc[t]);
                    self.acc_min[t] =
                        _mm512_fmadd_ps(s2, _mm512_mul_ps(dmin, d_a), self.acc_min[t]);
                } else {
                    let mut v = _mm512_mul_ps(s1, d);
                    if F::OFFSET.is_none() {
                        let dmin = load_scales(factors.add(2 * PANEL_ROWS), gap);
                        v = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(self.s2[t]), v);
                    }
                    acc[t] = _mm512_fmadd_ps(v, d_a, acc[t]);
                }
                self.s1[t] = _mm512_setzero_si512();
                self.s2[t] = _mm512_setzero_si512();
            }
        }
    }

    /// The row results: `acc - acc_min` where the minimums were summed apart.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn settle<F: Format>(&self, acc: &mut [__m512; N]) {
        if F::PAIRS {
            for (acc, m) in acc.iter_mut().zip(&self.acc_min) {
                *acc = _mm512_sub_ps(*acc, *m);
            }
        }
    }
}

/// `out[t]` and `out[N + t]` = the two panels' row dots with token `t`, for `N` tokens.
///
/// # Safety
/// The CPU has AVX2, FMA, F16C, AVX-512 F/BW/VL/VNNI; `c` was checked by `Codes::check` for
/// format `F`, two panels and `N` tokens; `out` holds at least `2 * N` rows.
// `t` indexes the accumulators and the activation rows alike.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn gemm_pair<F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let mut acc = [_mm512_setzero_ps(); N];
    let low = _mm512_set1_epi8(0x0f);
    let mut k_sums = BlockSums::<N>::new();
    let (panel, acts, gap) = (c.panel().as_ptr(), c.acts().as_ptr(), c.panel_bytes());
    for b in 0..c.n_sub() {
        // SAFETY: `Codes::check` guarantees two panels of `n_sub` whole sub-blocks, `gap`
        // bytes apart, and in each of `N` token rows `n_sub * SUB_BLOCK` codes; every offset
        // below stays within sub-block `b` of either panel and its columns.
        unsafe {
            let w = panel.add(F::sub_block_at(b));
            let q = |t: usize, g: usize| {
                broadcast4(acts.add(t * c.stride() + b * F::SUB_BLOCK + 4 * g))
            };
            let mut even = [_mm512_setzero_si512(); N];
            let mut odd = [_mm512_setzero_si512(); N];
            if F::BITS == 4 && N < SPLIT_BELOW {
                // As in the 8-row kernel: high nibbles in place as `16 * code`, their sum
                // divided by 16 at the end (exactly: every product is a multiple of 16).
                for v in 0..F::VECTORS {
                    let raw = load_codes(w.add(32 * v), gap);
                    let lo = _mm512_and_si512(raw, low);
                    let hi = _mm512_andnot_si512(low, raw);
                    for t in 0..N {
                        even[t] = _mm512_dpbusd_epi32(even[t], lo, q(t, v));
                        odd[t] = _mm512_dpbusd_epi32(odd[t], hi, q(t, v + F::VECTORS));
                    }
                }
                for t in 0..N {
                    even[t] = _mm512_add_epi32(even[t], _mm512_srai_epi32::<4>(odd[t]));
                }
            } else if F::BITS == 4 {
                for v in 0..F::VECTORS {
                    let raw = load_codes(w.add(32 * v), gap);
                    let lo = _mm512_and_si512(raw, low);
                    let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), low);
                    for t in 0..N {
                        even[t] = _mm512_dpbusd_epi32(even[t], lo, q(t, v));
                        even[t] = _mm512_dpbusd_epi32(even[t], hi, q(t, v + F::VECTORS));
                    }
                }
            } else if N < SPLIT_BELOW {
                for g in (0..F::GROUPS).step_by(2) {
                    let w0 = load_codes(w.add(32 * g), gap);
                    let w1 = load_codes(w.add(32 * g + 32), gap);
                    for t in 0..N {
                        even[t] = _mm512_dpbusd_epi32(even[t], w0, q(t, g));
                        odd[t] = _mm512_dpbusd_epi32(odd[t], w1, q(t, g + 1));
                    }
                }
                for t in 0..N {
                    even[t] = _mm512_add_epi32(even[t], odd[t]);
                }
            } else {
                for g in 0..F::GROUPS {
                    let wg = load_codes(w.add(32 * g), gap);
                    for t in 0..N {
                        even[t] = _mm512_dpbusd_epi32(even[t], wg, q(t, g));
                    }
                }
            }
            if F::SUPER_BLOCK {
                k_sums.add::<F>(c, w, b, &even);
                if F::ends_step(b) {
                    k_sums.finish::<F>(c, panel.add(F::factors_at(b)), b, &mut acc);
                }
            } else {
                accumulate::<F, N>(c, w, b, &even, &mut acc);
            }
        }
    }
    k_sums.settle::<F>(&mut acc);
    for t in 0..N {
        let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc[t]));
        // SAFETY: rows `t` and `N + t` of `out` are eight writable floats each.
        unsafe {
            _mm256_storeu_ps(out[t].as_mut_ptr(), _mm512_castps512_ps256(acc[t]));
            _mm256_storeu_ps(out[N + t].as_mut_ptr(), _mm256_castpd_ps(high));
        }
    }
}
