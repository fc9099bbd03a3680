//! `gemm_codes` with AVX2: `vpmaddubsw` multiplies unsigned weight codes by signed
//! activation codes into saturating 16-bit pair sums, `vpmaddwd` by ones widens them to the
//! row's 32-bit lane.
//!
//! Saturation decides the shape. A pair sum of 4-, 5- or 6-bit codes times codes of at most
//! 128 in magnitude is below 2 * 63 * 128 = 16128, so several groups are summed in 16 bits
//! before one widening: all eight groups of a 4-bit sub-block (8 * 3840 < 32768), four of
//! 5-bit, two of 6-bit. Q8_0's codes reach 255 and would saturate, so they are made signed
//! (`q - 128`, one `xor`) and multiplied as `|w| * (a * sign(w))`; those dots need no zero
//! point correction.

use core::arch::x86_64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use super::sub_block::{BlockSums, accumulate, broadcast4, store};

/// Groups summed in 16 bits before widening, for codes of `bits` bits.
const fn groups_per_widening(bits: u32) -> usize {
    match bits {
        4 => 8,
        5 => 4,
        _ => 2,
    }
}

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `c` was checked by `Codes::check` for format `F` and `N`
/// tokens; `out` holds at least `N` rows.
// `t` indexes the accumulators and the activation rows alike.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn gemm_codes<F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let mut acc = [_mm256_setzero_ps(); N];
    let low = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut k_sums = BlockSums::<N>::new();
    let (panel, acts) = (c.panel().as_ptr(), c.acts().as_ptr());
    for b in 0..c.n_sub() {
        // SAFETY: `Codes::check` guarantees `n_sub` whole sub-blocks in the panel and, in
        // each of `N` token rows, `n_sub * SUB_BLOCK` codes; every offset below stays within
        // sub-block `b` and its columns.
        unsafe {
            let w = panel.add(F::sub_block_at(b));
            let q = |t: usize, g: usize| {
                broadcast4(acts.add(t * c.stride() + b * F::SUB_BLOCK + 4 * g))
            };
            let mut idot = [_mm256_setzero_si256(); N];
            if F::BITS == 8 {
                let flip = _mm256_set1_epi8(-128);
                for g in 0..F::GROUPS {
                    let ws = _mm256_xor_si256(_mm256_loadu_si256(w.add(32 * g).cast()), flip);
                    let wa = _mm256_abs_epi8(ws);
                    for t in 0..N {
                        let p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(q(t, g), ws));
                        idot[t] = _mm256_add_epi32(idot[t], _mm256_madd_epi16(p, ones));
                    }
                }
                accumulate::<F, N, true>(c, w, b, &idot, &mut acc);
                continue;
            }
            let mut sum16 = [_mm256_setzero_si256(); N];
            let k = groups_per_widening(F::BITS);
            for g in 0..F::GROUPS {
                let code_vector = if F::BITS == 4 {
                    let v = g % F::VECTORS;
                    let raw = _mm256_loadu_si256(w.add(32 * v).cast());
                    if g < F::VECTORS {
                        _mm256_and_si256(raw, low)
                    } else {
                        _mm256_and_si256(_mm256_srli_epi16::<4>(raw), low)
                    }
                } else {
                    _mm256_loadu_si256(w.add(32 * g).cast())
                };
                for t in 0..N {
                    let p = _mm256_maddubs_epi16(code_vector, q(t, g));
                    sum16[t] = _mm256_add_epi16(sum16[t], p);
                }
                if (g + 1) % k == 0 {
                    for t in 0..N {
                        idot[t] = _mm256_add_epi32(idot[t], _mm256_madd_epi16(sum16[t], ones));
                        sum16[t] = _mm256_setzero_si256();
                    }
                }
            }
            if F::SUPER_BLOCK {
                k_sums.add::<F>(c, w, b, &idot);
                if F::ends_step(b) {
                    k_sums.finish::<F>(c, panel.add(F::factors_at(b)), b, &mut acc);
                }
            } else {
                accumulate::<F, N, false>(c, w, b, &idot, &mut acc);
            }
        }
    }
    k_sums.settle::<F>(&mut acc);
    store(&acc, out);
}
