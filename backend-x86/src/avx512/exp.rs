//! ggml's AVX-512 `ggml_v_expf` and `ggml_v_silu` (llama.cpp ggml-cpu/vec.h), instruction for
//! instruction, so every lane computes the bits of `tern_core`'s scalar replicas
//! (`ggml_math::expf`, `ggml_math::silu`). A tail shorter than 16 runs the same code on a
//! masked load: lanes are independent, so its bits are those of a whole vector.

use core::arch::x86_64::*;

/// One lane of exp per element of `x`; see `ggml_math::expf` for the algorithm.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp(x: __m512) -> __m512 {
    let r = _mm512_set1_ps(f32::from_bits(0x4b40_0000)); // 0x1.8p23
    let z = _mm512_fmadd_ps(x, _mm512_set1_ps(f32::from_bits(0x3fb8_aa3b)), r);
    let n = _mm512_sub_ps(z, r);
    let b = _mm512_fnmadd_ps(
        n,
        _mm512_set1_ps(f32::from_bits(0x35bf_be8e)),
        _mm512_fnmadd_ps(n, _mm512_set1_ps(f32::from_bits(0x3f31_7200)), x),
    );
    let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
    let u = _mm512_mul_ps(b, b);
    let c = |bits: u32| _mm512_set1_ps(f32::from_bits(bits));
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
            u,
            _mm512_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
        ),
        u,
        _mm512_fmadd_ps(c(0x3f7f_fff6), b, _mm512_set1_ps(1.0)),
    );
    let res = _mm512_scalef_ps(j, n);
    if d == 0 {
        return res;
    }
    let zero = _mm512_setzero_ps();
    let alt = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero),
        _mm512_set1_ps(f32::INFINITY),
        zero,
    );
    _mm512_mask_blend_ps(d, res, alt)
}

/// `x / (1 + exp(0 - x))`, with a true division.
#[inline]
#[target_feature(enable = "avx512f")]
fn silu(x: __m512) -> __m512 {
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
}

/// Applies `f` to `out[i..i + 16]` (and `with[i..i + 16]`) for every `i` below `n`, the last
/// step masked to the `n % 16` remaining lanes.
///
/// # Safety
/// `out` and `with` point to `n` floats; `out` is writable and not read through `with`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn map(n: usize, out: *mut f32, with: *const f32, f: impl Fn(__m512, __m512) -> __m512) {
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n`, within both.
        unsafe {
            let v = f(_mm512_loadu_ps(out.add(i)), _mm512_loadu_ps(with.add(i)));
            _mm512_storeu_ps(out.add(i), v);
        }
        i += 16;
    }
    if i < n {
        let k: __mmask16 = (1 << (n - i)) - 1;
        // SAFETY: the mask enables the `n - i` lanes left; masked-off lanes are neither
        // read nor written.
        unsafe {
            let v = f(
                _mm512_maskz_loadu_ps(k, out.add(i)),
                _mm512_maskz_loadu_ps(k, with.add(i)),
            );
            _mm512_mask_storeu_ps(out.add(i), k, v);
        }
    }
}

/// `gate[i] = silu(gate[i]) * up[i]` over the common length.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    // SAFETY: both hold `n` floats; `gate` is borrowed mutably, alone.
    unsafe {
        map(n, gate.as_mut_ptr(), up.as_ptr(), |g, u| {
            _mm512_mul_ps(silu(g), u)
        })
    }
}

/// `x[i] = exp(x[i] - shift)`.
///
/// # Safety
/// The CPU has AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn exp_shifted(x: &mut [f32], shift: f32) {
    let s = _mm512_set1_ps(shift);
    let p = x.as_mut_ptr();
    // SAFETY: `x` holds `x.len()` floats and is read only through `p` (the second operand,
    // read from the same place, is unused).
    unsafe { map(x.len(), p, p, |v, _| exp(_mm512_sub_ps(v, s))) }
}
