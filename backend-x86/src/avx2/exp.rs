//! ggml's AVX-512 `ggml_v_expf` and `ggml_v_silu` (llama.cpp ggml-cpu/vec.h) on AVX2 + FMA,
//! bit for bit: the same fused multiply-adds, then `_mm512_scalef_ps(j, n)` (`j * 2^n`,
//! rounded once) emulated. `j` lies in [0.5, 2) (it approximates `exp(b)`, `|b| <= ln2 / 2`),
//! so where every lane has `|n| <= 125` the result is normal and exact: `n` added to the
//! exponent bits. Otherwise two products, `(j * 2^n1) * 2^n2` with `n1` clamped to
//! [-125, 127]: the first is a normal float and exact, the second is the one rounding, with
//! gradual underflow and overflow to infinity as the instruction has them. NaN inputs make
//! `j` NaN, which both products keep.
//! (ggml's own AVX2 `ggml_v_expf` differs in its last steps; it is not what llama.cpp runs on
//! AVX-512 machines, whose bits the reference follows.) A tail shorter than 8 runs the same
//! code on a masked load.

use core::arch::x86_64::*;

/// One lane of exp per element of `x`; see `ggml_math::expf` for the algorithm.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp(x: __m256) -> __m256 {
    let c = |bits: u32| _mm256_set1_ps(f32::from_bits(bits));
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
    let n = _mm256_sub_ps(z, r);
    let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
    let abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
    let u = _mm256_mul_ps(b, b);
    let j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(
            _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm256_fmadd_ps(c(0x3f7f_fff6), b, _mm256_set1_ps(1.0)),
    );
    // `n` as an integer: the low bits of `z`, valid where `|n| <= 192` (other lanes are
    // replaced below).
    let ni = _mm256_sub_epi32(_mm256_castps_si256(z), _mm256_castps_si256(r));
    let wide = _mm256_cmp_ps::<_CMP_NLE_UQ>(abs_n, _mm256_set1_ps(125.0));
    if _mm256_movemask_ps(wide) == 0 {
        // Every `j * 2^n` is a normal float: add `n` to the exponent.
        return _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_castps_si256(j),
            _mm256_slli_epi32::<23>(ni),
        ));
    }
    let n1 = _mm256_min_epi32(
        _mm256_max_epi32(ni, _mm256_set1_epi32(-125)),
        _mm256_set1_epi32(127),
    );
    let n2 = _mm256_sub_epi32(ni, n1);
    let bias = _mm256_set1_epi32(127);
    let pow2 = |e: __m256i| {
        let biased = _mm256_add_epi32(e, bias);
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
    };
    let res = _mm256_mul_ps(_mm256_mul_ps(j, pow2(n1)), pow2(n2));
    let d = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, _mm256_set1_ps(192.0));
    if _mm256_movemask_ps(d) == 0 {
        return res;
    }
    let zero = _mm256_setzero_ps();
    let alt = _mm256_blendv_ps(
        _mm256_set1_ps(f32::INFINITY),
        zero,
        _mm256_cmp_ps::<_CMP_LE_OQ>(n, zero),
    );
    _mm256_blendv_ps(res, alt, d)
}

/// `x / (1 + exp(0 - x))`, with a true division.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn silu(x: __m256) -> __m256 {
    let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// Applies `f` to `out[i..i + 8]` (and `with[i..i + 8]`) for every `i` below `n`, the last
/// step masked to the `n % 8` remaining lanes.
///
/// # Safety
/// `out` and `with` point to `n` floats; `out` is writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn map(n: usize, out: *mut f32, with: *const f32, f: impl Fn(__m256, __m256) -> __m256) {
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, within both.
        unsafe {
            let v = f(_mm256_loadu_ps(out.add(i)), _mm256_loadu_ps(with.add(i)));
            _mm256_storeu_ps(out.add(i), v);
        }
        i += 8;
    }
    if i < n {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let k = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - i) as i32), lanes);
        // SAFETY: the mask enables the `n - i` lanes left; masked-off lanes are neither
        // read nor written.
        unsafe {
            let v = f(
                _mm256_maskload_ps(out.add(i), k),
                _mm256_maskload_ps(with.add(i), k),
            );
            _mm256_maskstore_ps(out.add(i), k, v);
        }
    }
}

/// `gate[i] = silu(gate[i]) * up[i]` over the common length.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    // SAFETY: both hold `n` floats; `gate` is borrowed mutably, alone.
    unsafe {
        map(n, gate.as_mut_ptr(), up.as_ptr(), |g, u| {
            _mm256_mul_ps(silu(g), u)
        })
    }
}

/// `x[i] = exp(x[i] - shift)`.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp_shifted(x: &mut [f32], shift: f32) {
    let s = _mm256_set1_ps(shift);
    let p = x.as_mut_ptr();
    // SAFETY: `x` holds `x.len()` floats, read and written only through `p` (the unused
    // second operand is read from the same place).
    unsafe { map(x.len(), p, p, |v, _| exp(_mm256_sub_ps(v, s))) }
}
