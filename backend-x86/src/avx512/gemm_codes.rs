//! `gemm_codes` with AVX-512 VNNI on one panel (a call's odd last one; pairs go to
//! [`super::gemm_pair`]): `vpdpbusd` on 256-bit vectors (EVEX, so 32 registers) multiplies
//! four unsigned weight codes of each of the eight rows by four broadcast signed activation
//! codes and adds into the row's 32-bit lane, with no intermediate saturation, so every
//! format's codes, Q8_0's 0..255 included, go in as they are.
//!
//! Each weight vector is loaded (and for 4-bit codes, split) once per call and multiplied by
//! every token of the tile, accumulators in registers. Small tiles keep two accumulators per
//! token, two independent dependency chains; there, 4-bit codes skip the shift of the high
//! nibbles (the sum of `16 * code` products is divided once instead). Larger tiles have
//! chains enough and share one shift per vector among their tokens.

use core::arch::x86_64::*;

use tern_core::cpu::formats::Format;
use tern_core::cpu::{Codes, PANEL_ROWS};

use crate::avx2::sub_block::{BlockSums, accumulate, broadcast4, store};

/// Tiles of fewer tokens than this keep two accumulators per token.
pub(super) const SPLIT_BELOW: usize = 4;

/// `out[t]` = the panel's eight row dots with token `t`, for `N` tokens.
///
/// # Safety
/// The CPU has AVX2, FMA, F16C, AVX-512 F/BW/VL/VNNI; `c` was checked by `Codes::check` for
/// format `F` and `N` tokens; `out` holds at least `N` rows.
// `t` indexes the accumulators and the activation rows alike.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn gemm_codes<F: Format, const N: usize>(
    c: &Codes<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let mut acc = [_mm256_setzero_ps(); N];
    let low = _mm256_set1_epi8(0x0f);
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
            let mut even = [_mm256_setzero_si256(); N];
            let mut odd = [_mm256_setzero_si256(); N];
            if F::BITS == 4 && N < SPLIT_BELOW {
                // Low nibbles are group `v`, high nibbles group `v + VECTORS`; the high ones
                // are used in place as `16 * code` and their sum divided by 16 at the end.
                for v in 0..F::VECTORS {
                    let raw = _mm256_loadu_si256(w.add(32 * v).cast());
                    let lo = _mm256_and_si256(raw, low);
                    let hi = _mm256_andnot_si256(low, raw);
                    for t in 0..N {
                        even[t] = _mm256_dpbusd_epi32(even[t], lo, q(t, v));
                        odd[t] = _mm256_dpbusd_epi32(odd[t], hi, q(t, v + F::VECTORS));
                    }
                }
                for t in 0..N {
                    even[t] = _mm256_add_epi32(even[t], _mm256_srai_epi32::<4>(odd[t]));
                }
            } else if F::BITS == 4 {
                for v in 0..F::VECTORS {
                    let raw = _mm256_loadu_si256(w.add(32 * v).cast());
                    let lo = _mm256_and_si256(raw, low);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(raw), low);
                    for t in 0..N {
                        even[t] = _mm256_dpbusd_epi32(even[t], lo, q(t, v));
                        even[t] = _mm256_dpbusd_epi32(even[t], hi, q(t, v + F::VECTORS));
                    }
                }
            } else if N < SPLIT_BELOW {
                for g in (0..F::GROUPS).step_by(2) {
                    let w0 = _mm256_loadu_si256(w.add(32 * g).cast());
                    let w1 = _mm256_loadu_si256(w.add(32 * g + 32).cast());
                    for t in 0..N {
                        even[t] = _mm256_dpbusd_epi32(even[t], w0, q(t, g));
                        odd[t] = _mm256_dpbusd_epi32(odd[t], w1, q(t, g + 1));
                    }
                }
                for t in 0..N {
                    even[t] = _mm256_add_epi32(even[t], odd[t]);
                }
            } else {
                for g in 0..F::GROUPS {
                    let wg = _mm256_loadu_si256(w.add(32 * g).cast());
                    for t in 0..N {
                        even[t] = _mm256_dpbusd_epi32(even[t], wg, q(t, g));
                    }
                }
            }
            if F::SUPER_BLOCK {
                k_sums.add::<F>(c, w, b, &even);
                if F::ends_step(b) {
                    k_sums.finish::<F>(c, panel.add(F::factors_at(b)), b, &mut acc);
                }
            } else {
                accumulate::<F, N, false>(c, w, b, &even, &mut acc);
            }
        }
    }
    k_sums.settle::<F>(&mut acc);
    store(&acc, out);
}
