//! Attention's kernels over a quantized KV cache: q8_0 key scores with exact integer dot
//! products (so the scores are the scalar definition's bits), and q8_0 and FP8 value rows
//! dequantized into the accumulator with the definition's multiply, then add.

use core::arch::x86_64::*;

use tern_core::kv::{BlockQ8_0, Fp8E4M3};

/// Rows scored at once: their eight integer dots reduce together.
const ROWS: usize = 8;

/// The 32 codes of a block widened to i16, in two halves.
#[inline]
#[target_feature(enable = "avx2")]
fn widen(b: &BlockQ8_0) -> [__m256i; 2] {
    // SAFETY: `qs` is 32 readable bytes.
    let codes = unsafe { _mm256_loadu_si256(b.qs.as_ptr().cast()) };
    [
        _mm256_cvtepi8_epi16(_mm256_castsi256_si128(codes)),
        _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(codes)),
    ]
}

/// Eight lanes whose sum is the integer dot product of the two blocks' codes (exact: each
/// lane is at most 4 * 127 * 128 in magnitude).
#[inline]
#[target_feature(enable = "avx2")]
fn dot_lanes(q: &[__m256i; 2], k: &BlockQ8_0) -> __m256i {
    let k = widen(k);
    _mm256_add_epi32(_mm256_madd_epi16(q[0], k[0]), _mm256_madd_epi16(q[1], k[1]))
}

/// The sum of the eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// The sums of the lanes of `v[0]` to `v[7]`, in that order (integer sums: exact).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum8_epi32(v: &[__m256i; ROWS]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(h0123, h4567),
        _mm256_permute2x128_si256::<0x31>(h0123, h4567),
    )
}

/// `out[j] = Σ_b (d_q[b] * d_k[b]) * idot_b`, as `CpuKernels::dot_rows_q8_0` defines it.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `rows` holds every row `out` asks for
/// (`rows_fit(q.len(), rows.len(), stride, out.len())`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn dot_rows_q8_0(
    q: &[BlockQ8_0],
    rows: &[BlockQ8_0],
    stride: usize,
    out: &mut [f32],
) {
    let n = out.len();
    let row = |j: usize, b: usize| -> &BlockQ8_0 {
        // SAFETY: the caller checked that row `j < n` has `q.len()` blocks within `rows`.
        unsafe { rows.get_unchecked(j * stride + b) }
    };
    let mut j = 0;
    while j + ROWS <= n {
        let mut acc = _mm256_setzero_ps();
        for (b, qb) in q.iter().enumerate() {
            let qw = widen(qb);
            let lanes: [__m256i; ROWS] = core::array::from_fn(|r| dot_lanes(&qw, row(j + r, b)));
            let idot = _mm256_cvtepi32_ps(hsum8_epi32(&lanes));
            let dk: [u16; ROWS] = core::array::from_fn(|r| row(j + r, b).d.to_bits());
            // SAFETY: `dk` is eight u16, sixteen readable bytes.
            let dk = _mm256_cvtph_ps(unsafe { _mm_loadu_si128(dk.as_ptr().cast()) });
            let scale = _mm256_mul_ps(_mm256_set1_ps(qb.d.to_f32()), dk);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(scale, idot));
        }
        // SAFETY: `j + 8 <= n`: eight floats of `out`.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(j), acc) };
        j += ROWS;
    }
    for (j, o) in out.iter_mut().enumerate().skip(j) {
        *o = q.iter().enumerate().fold(0f32, |acc, (b, qb)| {
            let k = row(j, b);
            let idot = hsum_epi32(dot_lanes(&widen(qb), k));
            acc + (qb.d.to_f32() * k.d.to_f32()) * idot as f32
        });
    }
}

/// `y[32 * b + i] += (a * d_b) * qs_b[i]` over the whole blocks `y` and `x` share.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn axpy_q8_0(y: &mut [f32], a: f32, x: &[BlockQ8_0]) {
    for (y, x) in y.chunks_exact_mut(32).zip(x) {
        let s = _mm256_set1_ps(a * x.d.to_f32());
        for g in 0..4 {
            // SAFETY: group `g` is 8 of the block's 32 codes and 8 of the chunk's 32 floats.
            unsafe {
                let codes = _mm_loadl_epi64(x.qs.as_ptr().add(8 * g).cast());
                let v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(codes));
                let py = y.as_mut_ptr().add(8 * g);
                _mm256_storeu_ps(py, _mm256_add_ps(_mm256_loadu_ps(py), _mm256_mul_ps(s, v)));
            }
        }
    }
}

/// `y[i] += a * x[i]` with `x` in FP8 E4M3, over the common length.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn axpy_fp8(y: &mut [f32], a: f32, x: &[Fp8E4M3]) {
    let n = y.len().min(x.len());
    let av = _mm256_set1_ps(a);
    let magnitude_bits = _mm256_set1_epi32(0x7f);
    // 2^120: the magnitude bits under f32's exponent field read as the value times 2^-120.
    let restore = _mm256_set1_ps(f32::from_bits((127 + 120) << 23));
    let nan = _mm256_set1_ps(f32::NAN);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`: eight bytes of `x` and eight floats of `y`.
        unsafe {
            let bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(x.as_ptr().add(i).cast()));
            let m = _mm256_and_si256(bytes, magnitude_bits);
            let v = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<20>(m)), restore);
            let sign = _mm256_slli_epi32::<24>(_mm256_andnot_si256(magnitude_bits, bytes));
            let v = _mm256_or_ps(v, _mm256_castsi256_ps(sign));
            let is_nan = _mm256_castsi256_ps(_mm256_cmpeq_epi32(m, magnitude_bits));
            let v = _mm256_blendv_ps(v, nan, is_nan);
            let py = y.as_mut_ptr().add(i);
            _mm256_storeu_ps(py, _mm256_add_ps(_mm256_loadu_ps(py), _mm256_mul_ps(av, v)));
        }
        i += 8;
    }
    for (y, x) in y[i..n].iter_mut().zip(&x[i..n]) {
        *y += a * x.to_f32();
    }
}
