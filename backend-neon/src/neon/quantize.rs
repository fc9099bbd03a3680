//! `quantize_row` with Advanced SIMD: the scalar definition's formulas, four lanes at a
//! time, so the codes, scales and sums are bit-identical to it. Each block's maximum is a
//! vector `fmaxnm` (which, like `f32::max`, ignores NaN), its scale and sums are computed as
//! scalars exactly as there, and its codes are rounded 16 at a time.
//!
//! Both scale kinds round half to even (`frintn`). Float to `i8` saturates and NaN becomes 0,
//! as Rust's `as` does (`fcvtzs` and two saturating narrows); Q8_K first caps at 127 with
//! `fminnm`, which, as `f32::min`, turns NaN into 127.

use core::arch::aarch64::*;

use half::f16;
use tern_core::cpu::{ActLayout, ActScale};
use tern_core::numerics::q8_1_sum;

/// Quantizes `x` into `row`, as `tern_core::cpu::quantize_row`.
///
/// # Safety
/// None beyond NEON; `layout.sub_block` is 16 or 32, `row` holds `layout.stride()` bytes and
/// `x` at least `layout.cols` floats (checked by indexing).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_row(layout: ActLayout, x: &[f32], row: &mut [u8]) {
    let (cols, sb) = (layout.cols, layout.sub_block);
    let group = match layout.scale {
        ActScale::PerBlock32 => 32,
        ActScale::PerBlock256 => 256,
    };
    let n = layout.n_sub_blocks();
    let (q, meta) = row[..layout.stride()].split_at_mut(cols);
    let mut put = |array: usize, b: usize, v: [u8; 4]| {
        let at = array * 4 * n + 4 * b;
        meta[at..at + 4].copy_from_slice(&v);
    };
    for (g, (xs, qs)) in x[..cols]
        .chunks_exact(group)
        .zip(q.chunks_exact_mut(group))
        .enumerate()
    {
        let amax = abs_max(xs);
        let mut sums = [0i32; 16];
        let (stored, exact) = match layout.scale {
            ActScale::PerBlock32 => {
                let d = amax / 127.0;
                let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
                codes::<false>(xs, qs, id, sb, &mut sums);
                (f16::from_f32(d).to_f32(), d)
            }
            ActScale::PerBlock256 if amax == 0.0 => {
                qs.fill(0);
                (0.0, 0.0)
            }
            ActScale::PerBlock256 => {
                // The signed value of the first element of largest magnitude, as the scalar
                // loop finds it.
                let max = xs
                    .iter()
                    .copied()
                    .find(|v| f32::from_bits(v.to_bits() & 0x7fff_ffff) == amax)
                    .unwrap_or(amax);
                let iscale = -127.0 / max;
                codes::<true>(xs, qs, iscale, sb, &mut sums);
                let d = 1.0 / iscale;
                (d, d)
            }
        };
        for (s, &isum) in sums[..group / sb].iter().enumerate() {
            let b = g * (group / sb) + s;
            let fsum = match layout.scale {
                ActScale::PerBlock32 => q8_1_sum(exact * isum as f32),
                ActScale::PerBlock256 => exact * isum as f32,
            };
            put(0, b, stored.to_le_bytes());
            put(1, b, isum.to_le_bytes());
            put(2, b, fsum.to_le_bytes());
        }
    }
}

/// The largest `|x[i]|`, NaNs ignored (as `f32::max` does); `x` is a multiple of 16 long.
#[target_feature(enable = "neon")]
fn abs_max(x: &[f32]) -> f32 {
    let mut m = vdupq_n_f32(0.0);
    for c in x.chunks_exact(4) {
        // SAFETY: `c` is four floats.
        m = vmaxnmq_f32(m, vabsq_f32(unsafe { vld1q_f32(c.as_ptr()) }));
    }
    vmaxnmvq_f32(m)
}

/// `q[i] = sat_i8(round_even(x[i] * mul))`, first capped at 127 when `CAP` (NaN becoming 127
/// as `f32::min` makes it), else NaN becoming 0; adds each code to its sub-block's sum.
#[target_feature(enable = "neon")]
fn codes<const CAP: bool>(x: &[f32], q: &mut [u8], mul: f32, sb: usize, sums: &mut [i32; 16]) {
    for (i, (x, q)) in x.chunks_exact(16).zip(q.chunks_exact_mut(16)).enumerate() {
        let ints: [int32x4_t; 4] = core::array::from_fn(|j| {
            // SAFETY: `x` is 16 floats and `4 * j + 4 <= 16`.
            let v = vmulq_n_f32(unsafe { vld1q_f32(x.as_ptr().add(4 * j)) }, mul);
            let r = vrndnq_f32(v);
            let r = if CAP {
                vminnmq_f32(r, vdupq_n_f32(127.0))
            } else {
                r
            };
            vcvtq_s32_f32(r)
        });
        let words = vcombine_s16(vqmovn_s32(ints[0]), vqmovn_s32(ints[1]));
        let words2 = vcombine_s16(vqmovn_s32(ints[2]), vqmovn_s32(ints[3]));
        let bytes = vcombine_s8(vqmovn_s16(words), vqmovn_s16(words2));
        // SAFETY: `q` is 16 writable bytes.
        unsafe { vst1q_s8(q.as_mut_ptr().cast(), bytes) };
        sums[16 * i / sb] += i32::from(vaddlvq_s8(bytes));
    }
}
