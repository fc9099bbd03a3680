//! `quantize_row` with AVX2: the scalar definition's formulas, eight lanes at a time, so the
//! codes, scales and sums are bit-identical to it. Q8_0 rows of 32-value sub-blocks go eight
//! blocks at a time, their maxima, scales (rounded to f16 with F16C) and sums side by side in
//! the lanes of a vector; other rows and a row's last blocks compute each block's scale and
//! sums as scalars, exactly as there, with vector maxima and per-element rounding.
//!
//! Both scale kinds round half to even (`rintf`), the default rounding of `vroundps`. Float
//! to `i8` saturates and NaN becomes 0, as Rust's `as` does; Q8_K first caps at 127 with
//! `f32::min`, which turns NaN into 127.

use core::arch::x86_64::*;

use half::f16;
use tern_core::cpu::{ActLayout, ActScale};
use tern_core::numerics::q8_1_sum;

/// Quantizes `x` into `row`, as `tern_core::cpu::quantize_row`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn quantize_row(layout: ActLayout, x: &[f32], row: &mut [u8]) {
    let (cols, sb) = (layout.cols, layout.sub_block);
    let group = match layout.scale {
        ActScale::PerBlock32 => 32,
        ActScale::PerBlock256 => 256,
    };
    let n = layout.n_sub_blocks();
    let (q, meta) = row[..layout.stride()].split_at_mut(cols);
    // Q8_0 blocks of one sub-block each: eight blocks side by side, their maxima, scales and
    // sums in the lanes of a vector.
    let mut done = 0;
    if layout.scale == ActScale::PerBlock32 && sb == 32 {
        for (g, (xs, qs)) in x.chunks_exact(256).zip(q.chunks_exact_mut(256)).enumerate() {
            let (d, isum, fsum) = quantize_q8_0_x8(xs, qs);
            let at = |array: usize| array * 4 * n + 32 * g;
            // SAFETY: blocks `8g..8g + 8` of each of the three arrays of `n` words lie within
            // `meta`, which holds the row's three arrays.
            unsafe {
                _mm256_storeu_ps(meta[at(0)..at(0) + 32].as_mut_ptr().cast(), d);
                _mm256_storeu_si256(meta[at(1)..at(1) + 32].as_mut_ptr().cast(), isum);
                _mm256_storeu_ps(meta[at(2)..at(2) + 32].as_mut_ptr().cast(), fsum);
            }
            done += 8;
        }
    }
    let mut put = |array: usize, b: usize, v: [u8; 4]| {
        let at = array * 4 * n + 4 * b;
        meta[at..at + 4].copy_from_slice(&v);
    };
    let first = done * sb / group;
    for (g, (xs, qs)) in x[first * group..]
        .chunks_exact(group)
        .zip(q[first * group..].chunks_exact_mut(group))
        .enumerate()
    {
        let g = first + g;
        let (d, isums) = match layout.scale {
            ActScale::PerBlock32 => quantize_q8_0(xs, qs, sb),
            ActScale::PerBlock256 => quantize_q8_k(xs, qs, sb),
        };
        for (s, &isum) in isums[..group / sb].iter().enumerate() {
            let b = g * (group / sb) + s;
            put(0, b, d.stored.to_le_bytes());
            put(1, b, isum.to_le_bytes());
            put(2, b, d.scaled_sum(layout.scale, isum).to_le_bytes());
        }
    }
}

/// Integer sums of the codes per sub-block of a group (at most 256 / 16 sub-blocks).
type Sums = [i32; 16];

/// A block's scale as stored, and as the scaled sums use it.
struct Scale {
    stored: f32,
    exact: f32,
}

impl Scale {
    /// `fsum`: Q8_1's `f16(d * Σq)` with the unrounded scale, or Q8_K's `d * Σq`.
    fn scaled_sum(&self, kind: ActScale, isum: i32) -> f32 {
        match kind {
            ActScale::PerBlock32 => q8_1_sum(self.exact * isum as f32),
            ActScale::PerBlock256 => self.exact * isum as f32,
        }
    }
}

/// Q8_0, one block of 32: the scale and the code sums.
#[target_feature(enable = "avx2")]
fn quantize_q8_0(x: &[f32], q: &mut [u8], sb: usize) -> (Scale, Sums) {
    let amax = abs_max(x);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sums = [0; 16];
    codes::<false>(x, q, id, sb, &mut sums);
    let stored = f16::from_f32(d).to_f32();
    (Scale { stored, exact: d }, sums)
}

/// Q8_0, eight blocks of 32 (`x` and `q` hold 256): per block, in lane `b`, the scale as
/// stored, the code sum, and `fsum`, each as the one-block path computes it.
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8_0_x8(x: &[f32], q: &mut [u8]) -> (__m256, __m256i, __m256) {
    let sign = _mm256_set1_ps(-0.0);
    let maxima: [__m256; 8] = core::array::from_fn(|b| {
        let mut m = _mm256_setzero_ps();
        for j in 0..4 {
            // SAFETY: `x` holds 256 floats and `32 * b + 8 * j + 8 <= 256`.
            let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(32 * b + 8 * j)) };
            // `maxps` returns its second operand when either is NaN: the running maximum.
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v), m);
        }
        m
    });
    // Neither operand is NaN any more, so the order of the maxima does not matter.
    let amax = reduce8(&maxima, |a, b| _mm256_max_ps(a, b));
    let d = _mm256_div_ps(amax, _mm256_set1_ps(127.0));
    let nonzero = _mm256_cmp_ps::<_CMP_NEQ_OQ>(amax, _mm256_setzero_ps());
    let id = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(127.0), amax), nonzero);
    let mut ids = [0f32; 8];
    // SAFETY: `ids` is eight writable floats.
    unsafe { _mm256_storeu_ps(ids.as_mut_ptr(), id) };
    let sums: [__m256; 8] = core::array::from_fn(|b| {
        let ints = codes32::<false>(&x[32 * b..32 * b + 32], &mut q[32 * b..32 * b + 32], ids[b]);
        let s = _mm256_add_epi32(
            _mm256_add_epi32(ints[0], ints[1]),
            _mm256_add_epi32(ints[2], ints[3]),
        );
        _mm256_castsi256_ps(s)
    });
    let isum = _mm256_castps_si256(reduce8(&sums, |a, b| {
        _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_castps_si256(a),
            _mm256_castps_si256(b),
        ))
    }));
    let stored = to_f16_and_back(d);
    // Q8_1's `f16(d * Σq)` with the unrounded scale, kept in f32 where f16 overflows.
    let s = _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum));
    let rounded = to_f16_and_back(s);
    let finite = _mm256_cmp_ps::<_CMP_LT_OQ>(
        _mm256_andnot_ps(sign, rounded),
        _mm256_set1_ps(f32::INFINITY),
    );
    (stored, isum, _mm256_blendv_ps(s, rounded, finite))
}

/// Each lane rounded to f16 (to nearest, ties to even, as `half` rounds) and back.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn to_f16_and_back(v: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v))
}

/// `op` over the lanes of each of `v[0]` to `v[7]`, into lane `b` for `v[b]`; `op` must be
/// associative and commutative on the values at hand (exact integer sums, maxima).
#[inline]
#[target_feature(enable = "avx2")]
fn reduce8(v: &[__m256; 8], op: impl Fn(__m256, __m256) -> __m256) -> __m256 {
    // Within each 128-bit half: lanes 0, 2 of `a` and of `b` against lanes 1, 3.
    let pairs = |a: __m256, b: __m256| {
        op(
            _mm256_shuffle_ps::<0b10_00_10_00>(a, b),
            _mm256_shuffle_ps::<0b11_01_11_01>(a, b),
        )
    };
    let (v01, v23, v45, v67) = (
        pairs(v[0], v[1]),
        pairs(v[2], v[3]),
        pairs(v[4], v[5]),
        pairs(v[6], v[7]),
    );
    // Lanes: `v[0]` to `v[3]` (resp. `v[4]` to `v[7]`), low halves, then high halves.
    let (v0123, v4567) = (pairs(v01, v23), pairs(v45, v67));
    op(
        _mm256_permute2f128_ps::<0x20>(v0123, v4567),
        _mm256_permute2f128_ps::<0x31>(v0123, v4567),
    )
}

/// Q8_K, one block of 256: the scale and the code sums.
#[target_feature(enable = "avx2")]
fn quantize_q8_k(x: &[f32], q: &mut [u8], sb: usize) -> (Scale, Sums) {
    let mut sums = [0; 16];
    let amax = abs_max(x);
    if amax == 0.0 {
        q.fill(0);
        return (
            Scale {
                stored: 0.0,
                exact: 0.0,
            },
            sums,
        );
    }
    // The signed value of the first element of largest magnitude, as the scalar loop finds.
    let max = x.iter().copied().find(|v| fabs(*v) == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    codes::<true>(x, q, iscale, sb, &mut sums);
    let d = 1.0 / iscale;
    (
        Scale {
            stored: d,
            exact: d,
        },
        sums,
    )
}

fn fabs(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0x7fff_ffff)
}

/// The largest `|x[i]|`, NaNs ignored (as `f32::max` does).
#[target_feature(enable = "avx2")]
fn abs_max(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: `c` is eight floats.
        let v = _mm256_andnot_ps(sign, unsafe { _mm256_loadu_ps(c.as_ptr()) });
        // `maxps` returns its second operand when either is NaN: the running maximum.
        m = _mm256_max_ps(v, m);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` is eight writable floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    let tail = chunks.remainder().iter().map(|v| fabs(*v));
    lanes.into_iter().chain(tail).fold(0f32, f32::max)
}

/// `q[i] = sat_i8(round_even(x[i] * mul))`, first capped at 127 when `CAP` (NaN becoming 127
/// as `f32::min` makes it), else NaN becoming 0; adds each code to its sub-block's sum.
#[target_feature(enable = "avx2")]
fn codes<const CAP: bool>(x: &[f32], q: &mut [u8], mul: f32, sb: usize, sums: &mut Sums) {
    for (i, (x, q)) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)).enumerate() {
        let ints = codes32::<CAP>(x, q, mul);
        // Sub-blocks of 16 or 32: two vectors (16 codes) at a time.
        for (h, pair) in ints.chunks_exact(2).enumerate() {
            let s = hsum_i32(_mm256_add_epi32(pair[0], pair[1]));
            sums[(32 * i + 16 * h) / sb] += s;
        }
    }
}

/// [`codes`] for 32 values (`x` and `q` hold 32): stores the codes and returns them as four
/// vectors of 32-bit values, in order.
#[inline]
#[target_feature(enable = "avx2")]
fn codes32<const CAP: bool>(x: &[f32], q: &mut [u8], mul: f32) -> [__m256i; 4] {
    assert!(x.len() >= 32 && q.len() >= 32);
    let mul = _mm256_set1_ps(mul);
    let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    let ints: [__m256i; 4] = core::array::from_fn(|j| {
        // SAFETY: `x` holds 32 floats and `8 * j + 8 <= 32`.
        let t = _mm256_mul_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * j)) }, mul);
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
        let r = if CAP {
            // `minps` returns its second operand (127) when `r` is NaN.
            _mm256_min_ps(r, hi)
        } else {
            _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r))
        };
        _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(r, hi), lo))
    });
    let words = _mm256_packs_epi32(ints[0], ints[1]);
    let words2 = _mm256_packs_epi32(ints[2], ints[3]);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, words2), order);
    // SAFETY: `q` holds 32 writable bytes.
    unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes) };
    ints
}

#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}
