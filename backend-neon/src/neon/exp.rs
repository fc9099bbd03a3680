//! ggml's `ggml_v_expf` and `ggml_v_silu` as the reference computes them
//! (`tern_core::numerics::ggml_math`), four lanes at a time and bit for bit: the
//! same fused multiply-adds, then `j * 2^n` rounded once. `j` lies in [0.5, 2) and
//! `|n| <= 192` wherever the result is not fixed to 0 or infinity, so `j * 2^n1` with
//! `n1 = n >> 1` is a normal float and exact, and multiplying it by `2^(n - n1)` is the one
//! rounding (with gradual underflow, and overflow to infinity). NaN inputs make `j` NaN,
//! which both products keep. A tail shorter than four runs the same code on a padded copy.

use core::arch::aarch64::*;

/// One lane of exp per lane of `x`; see `ggml_math::expf` for the algorithm.
#[inline]
#[target_feature(enable = "neon")]
fn exp(x: float32x4_t) -> float32x4_t {
    let c = |bits: u32| vdupq_n_f32(f32::from_bits(bits));
    let shift = c(0x4b40_0000); // 0x1.8p23
    let z = vfmaq_f32(shift, x, c(0x3fb8_aa3b));
    let n = vsubq_f32(z, shift);
    let b = vfmsq_f32(vfmsq_f32(x, n, c(0x3f31_7200)), n, c(0x35bf_be8e));
    let u = vmulq_f32(b, b);
    let j = vfmaq_f32(
        vfmaq_f32(vdupq_n_f32(1.0), c(0x3f7f_fff6), b),
        vfmaq_f32(
            vfmaq_f32(c(0x3eff_fedb), c(0x3e2a_af33), b),
            vfmaq_f32(c(0x3d2b_9f17), c(0x3c07_2010), b),
            u,
        ),
        u,
    );
    // `n` is an integer; lanes with `|n| > 192` (or NaN) are replaced or stay NaN below.
    let ni = vcvtq_s32_f32(n);
    let n1 = vshrq_n_s32::<1>(ni);
    let n2 = vsubq_s32(ni, n1);
    let pow2 =
        |e: int32x4_t| vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(e, vdupq_n_s32(127))));
    let scaled = vmulq_f32(vmulq_f32(j, pow2(n1)), pow2(n2));
    let big = vcagtq_f32(n, vdupq_n_f32(192.0));
    let below = vcleq_f32(n, vdupq_n_f32(0.0));
    let limit = vbslq_f32(below, vdupq_n_f32(0.0), vdupq_n_f32(f32::INFINITY));
    vbslq_f32(big, limit, scaled)
}

/// `x / (1 + exp(0 - x))`.
#[inline]
#[target_feature(enable = "neon")]
fn silu(x: float32x4_t) -> float32x4_t {
    let e = exp(vsubq_f32(vdupq_n_f32(0.0), x));
    vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0), e))
}

/// `x[i] = exp(x[i] - shift)`.
///
/// # Safety
/// None beyond NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn exp_shifted(x: &mut [f32], shift: f32) {
    let s = vdupq_n_f32(shift);
    let mut chunks = x.chunks_exact_mut(4);
    for c in &mut chunks {
        // SAFETY: `c` is four floats.
        unsafe { vst1q_f32(c.as_mut_ptr(), exp(vsubq_f32(vld1q_f32(c.as_ptr()), s))) };
    }
    let tail = chunks.into_remainder();
    let mut pad = [0f32; 4];
    pad[..tail.len()].copy_from_slice(tail);
    // SAFETY: `pad` is four floats.
    unsafe { vst1q_f32(pad.as_mut_ptr(), exp(vsubq_f32(vld1q_f32(pad.as_ptr()), s))) };
    let n = tail.len();
    tail.copy_from_slice(&pad[..n]);
}

/// `gate[i] = silu(gate[i]) * up[i]` over the common length.
///
/// # Safety
/// None beyond NEON.
#[target_feature(enable = "neon")]
pub(crate) unsafe fn swiglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let main = n / 4 * 4;
    for (g, u) in gate[..main].chunks_exact_mut(4).zip(up.chunks_exact(4)) {
        // SAFETY: `g` and `u` are four floats each.
        unsafe {
            let v = vmulq_f32(silu(vld1q_f32(g.as_ptr())), vld1q_f32(u.as_ptr()));
            vst1q_f32(g.as_mut_ptr(), v);
        }
    }
    let (mut g, mut u) = ([0f32; 4], [0f32; 4]);
    g[..n - main].copy_from_slice(&gate[main..n]);
    u[..n - main].copy_from_slice(&up[main..n]);
    // SAFETY: `g` and `u` are four floats each.
    unsafe {
        let v = vmulq_f32(silu(vld1q_f32(g.as_ptr())), vld1q_f32(u.as_ptr()));
        vst1q_f32(g.as_mut_ptr(), v);
    }
    gate[main..n].copy_from_slice(&g[..n - main]);
}
