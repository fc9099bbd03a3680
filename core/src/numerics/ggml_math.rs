//! Scalar replicas of the f32 math that llama.cpp's CPU backend (ggml) runs on x86 with
//! AVX-512: its vectorized `exp` and SiLU, and the summation orders of its horizontal sums and
//! f16 dot products.
//!
//! Why: the reference backend is held to llama.cpp's logits on small random-weight models,
//! where one ulp of difference in an activation can move a value across a quantization
//! rounding step and grow, layer by layer, into percent-level logit drift. Computing the
//! same bits as ggml removes that source. Each function follows one lane of the SIMD code
//! (ggml/src/ggml-cpu/ of the llama.cpp that llama-cpp-python 0.3.36 vendors), operation by
//! operation: every fused multiply-add of the C is a `fmaf` here, every plain multiply or add
//! stays one.

/// `exp(x)` as one lane of ggml's AVX-512 `ggml_v_expf` (vec.h:1191; ARM's optimized-routines
/// algorithm): `x = n ln2 + b` with `n` rounded to an integer by the `0x1.8p23` shift, a
/// degree-5 polynomial for `exp(b)`, then `_mm512_scalef_ps` for the factor `2^n`. Where
/// `|n| > 192` it returns 0 or infinity. Within 1.5 ulp of `exp`, but not `libm::expf`'s bits.
pub fn expf(x: f32) -> f32 {
    let shift = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = fmaf(x, f32::from_bits(0x3fb8_aa3b), shift); // x * log2(e) + shift
    let n = z - shift;
    // b = x - n * ln2, with ln2 split in a high and a low part (two fnmadds).
    let b = fmaf(
        -n,
        f32::from_bits(0x35bf_be8e),              // 0x1.7f7d1cp-20
        fmaf(-n, f32::from_bits(0x3f31_7200), x), // 0x1.62e4p-1
    );
    let u = b * b;
    let j = fmaf(
        fmaf(
            fmaf(f32::from_bits(0x3c07_2010), b, f32::from_bits(0x3d2b_9f17)),
            u,
            fmaf(f32::from_bits(0x3e2a_af33), b, f32::from_bits(0x3eff_fedb)),
        ),
        u,
        fmaf(f32::from_bits(0x3f7f_fff6), b, 1.0),
    );
    // `|n| > 192` is false for NaN, which then flows through `scalef` as NaN.
    if libm::fabsf(n) > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    scalef(j, n)
}

/// `x / (1 + exp(-x))` as one lane of ggml's AVX-512 `ggml_v_silu` (vec.h:1219).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + expf(0.0 - x))
}

/// The sum of a power-of-two number of lanes by halving: the upper half added onto the lower
/// half until one lane is left. This is the pairing of GCC's `_mm512_reduce_add_ps`
/// (avx512fintrin.h) on 16 lanes, and of ggml's `GGML_F32x16_REDUCE` (simd-mappings.h:464),
/// which first adds its four 16-lane accumulators as halves of 64 lanes, then reduces 16.
pub fn halving_sum(lanes: &mut [f32]) -> f32 {
    let mut width = lanes.len();
    debug_assert!(width.is_power_of_two());
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

/// Which of ggml's AVX-512 kernels sums a dot product of f16 (or f32) rows, and so in which
/// order: llama.cpp multiplies attention's f16 matrices with llamafile's tinyBLAS when a batch
/// holds two or more tokens and the rows are a multiple of 16 long, else row by row with
/// `ggml_vec_dot_f16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotOrder {
    /// tinyBLAS's `gemm_bloc` (llamafile/sgemm.cpp:549): product `i` fused into lane `i % 16`,
    /// then `hsum`, a 16-lane halving sum.
    TinyBlas,
    /// `ggml_vec_dot_f16` (vec.cpp:264): product `i` fused into lane `i % 64` (four 16-lane
    /// accumulators) over the whole 64-element steps, a 64-lane halving sum, then the remaining
    /// products added in f64.
    VecDot,
}

/// `sum(x(i) * y(i) for i < n)` in the order of `order`. ggml pads attention rows to a multiple
/// of 256 positions with zero probabilities, so callers summing over positions pass `n` rounded
/// up to the lane count with zero products beyond the real ones.
pub fn dot(order: DotOrder, n: usize, x: impl Fn(usize) -> f32, y: impl Fn(usize) -> f32) -> f32 {
    let width = match order {
        DotOrder::TinyBlas => 16,
        DotOrder::VecDot => 64,
    };
    let mut lanes = [0f32; 64];
    let vectorized = n / width * width;
    for i in 0..vectorized {
        lanes[i % width] = fmaf(x(i), y(i), lanes[i % width]);
    }
    let mut sum = f64::from(halving_sum(&mut lanes[..width]));
    for i in vectorized..n {
        sum += f64::from(x(i) * y(i));
    }
    sum as f32
}

/// `_mm512_scalef_ps(j, n)` for an integral `n` with `|n| <= 192`: `j * 2^n`, rounded once.
/// The product is exact in f64 (`2^n` is a power of two well inside f64's range), so the one
/// rounding is the conversion to f32, which is the instruction's (round to nearest even,
/// gradual underflow, overflow to infinity). NaN stays NaN.
fn scalef(j: f32, n: f32) -> f32 {
    if n.is_nan() {
        return n;
    }
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * pow2) as f32
}

/// A fused multiply-add, as ggml's `_mm512_fmadd_ps` computes per lane (`f32::mul_add` is
/// std-only).
fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    libm::fmaf(a, b, c)
}

#[cfg(test)]
mod tests {
    //! Expected values come from the real libggml-cpu.so of llama-cpp-python 0.3.36's vendored
    //! llama.cpp, built with -O3 -march=native (AVX-512) by GCC 12 on an AMD EPYC Zen 4: a C
    //! program generated the same inputs as `inputs()` below, called `ggml_vec_soft_max_f32`
    //! (max 0, so it stores `ggml_v_expf(x)`), `ggml_vec_silu_f32`, `ggml_vec_swiglu_f32` and
    //! the steps of ggml's `soft_max` op, and printed FNV-1a hashes of the output bits (NaNs
    //! canonicalized: their payload and sign are not portable) and the cases of `EDGES`. A
    //! one-off run of `expf` and `silu` over all 2^32 inputs found no difference either.
    use super::*;

    /// (input, ggml expf, ggml silu) bits: zeros, ±1, subnormals, the overflow and underflow
    /// thresholds, `|n|` around 126 and 192, huge values, infinities and NaNs.
    const EDGES: [(u32, u32, u32); 40] = [
        (0x0000_0000, 0x3f80_0000, 0x0000_0000),
        (0x8000_0000, 0x3f80_0000, 0x8000_0000),
        (0x3f80_0000, 0x402d_f855, 0x3f3b_26a7),
        (0xbf80_0000, 0x3ebc_5ab3, 0xbe89_b2b0),
        (0x0000_0001, 0x3f80_0000, 0x0000_0000),
        (0x8000_0001, 0x3f80_0000, 0x8000_0000),
        (0x007f_ffff, 0x3f80_0000, 0x0040_0000),
        (0x807f_ffff, 0x3f80_0000, 0x8040_0000),
        (0x0080_0000, 0x3f80_0000, 0x0040_0000),
        (0x8080_0000, 0x3f80_0000, 0x8040_0000),
        (0x42b1_7218, 0x7f80_0000, 0x42b1_7218),
        (0xc2b1_7218, 0x0020_0000, 0x8000_0000),
        (0x42b1_7217, 0x7f7f_ff84, 0x42b1_7217),
        (0xc2b1_7217, 0x0020_0010, 0x82b1_726d),
        (0x42b2_d4fc, 0x7f80_0000, 0x42b2_d4fc),
        (0xc2b2_d4fc, 0x0010_0001, 0x8000_0000),
        (0x42cf_f1b5, 0x7f80_0000, 0x42cf_f1b5),
        (0xc2cf_f1b5, 0x0000_0000, 0x8000_0000),
        (0x42d0_0000, 0x7f80_0000, 0x42d0_0000),
        (0xc2d0_0000, 0x0000_0000, 0x8000_0000),
        (0x42fc_0000, 0x7f80_0000, 0x42fc_0000),
        (0xc2fc_0000, 0x0000_0000, 0x8000_0000),
        (0x4305_175e, 0x7f80_0000, 0x4305_175e),
        (0xc305_175e, 0x0000_0000, 0x8000_0000),
        (0x4305_1760, 0x7f80_0000, 0x4305_1760),
        (0xc305_1760, 0x0000_0000, 0x8000_0000),
        (0x4316_0000, 0x7f80_0000, 0x4316_0000),
        (0xc316_0000, 0x0000_0000, 0x8000_0000),
        (0x5015_02f9, 0x7f80_0000, 0x5015_02f9),
        (0xd015_02f9, 0x0000_0000, 0x8000_0000),
        (0x7f7f_ffff, 0x7f80_0000, 0x7f7f_ffff),
        (0xff7f_ffff, 0x0000_0000, 0x8000_0000),
        (0x7f80_0000, 0x7f80_0000, 0x7f80_0000),
        (0xff80_0000, 0x0000_0000, 0x7fc0_0000),
        (0x7fc0_0000, 0x7fc0_0000, 0x7fc0_0000),
        (0xffc0_0000, 0x7fc0_0000, 0x7fc0_0000),
        (0x7f80_0001, 0x7fc0_0000, 0x7fc0_0000),
        (0x3380_0000, 0x3f80_0000, 0x3300_0000),
        (0xb380_0000, 0x3f7f_ffff, 0xb300_0000),
        (0x3eff_ffff, 0x3fd3_094b, 0x3e9f_597e),
    ];

    /// The C program's generator: the edge cases, a sweep of [-110, 110) in 4096 steps,
    /// 4096 uniform draws from [-20, 20) and 4096 random bit patterns, padded to 16 lanes.
    fn inputs() -> ([f32; 12336], Lcg) {
        let mut xs = [0.5f32; 12336];
        let mut lcg = Lcg(1);
        for (x, &(bits, _, _)) in xs.iter_mut().zip(&EDGES) {
            *x = f32::from_bits(bits);
        }
        for i in 0..4096 {
            xs[40 + i] = (i as f32 - 2048.0) * (55.0 / 1024.0); // 0.0537109375, exact
        }
        for x in &mut xs[4136..8232] {
            *x = lcg.uniform(40.0, -20.0);
        }
        for x in &mut xs[8232..12328] {
            *x = f32::from_bits(lcg.next());
        }
        (xs, lcg)
    }

    struct Lcg(u32);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.0
        }

        /// `(next >> 8) * 2^-24 * width + low`, in f32 as the C computes it.
        fn uniform(&mut self, width: f32, low: f32) -> f32 {
            (self.next() >> 8) as f32 * f32::from_bits(0x3380_0000) * width + low
        }
    }

    /// FNV-1a over the little-endian bits, every NaN as 0x7fc00000.
    fn fnv(values: impl IntoIterator<Item = f32>) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for v in values {
            let bits = if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() };
            for byte in bits.to_le_bytes() {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    fn canonical(v: f32) -> u32 {
        if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() }
    }

    #[test]
    fn edge_cases_match_ggml_bit_for_bit() {
        for &(x, e, s) in &EDGES {
            let x = f32::from_bits(x);
            assert_eq!(canonical(expf(x)), e, "expf({x:e})");
            assert_eq!(canonical(silu(x)), s, "silu({x:e})");
        }
    }

    #[test]
    fn expf_matches_ggml_on_12336_inputs() {
        let (xs, _) = inputs();
        assert_eq!(fnv(xs.iter().map(|&x| expf(x))), 0xfc25_cda2_c005_c611);
    }

    #[test]
    fn silu_matches_ggml_on_12336_inputs() {
        let (xs, _) = inputs();
        assert_eq!(fnv(xs.iter().map(|&x| silu(x))), 0x5ec7_57d7_6085_e73a);
    }

    #[test]
    fn swiglu_matches_ggml() {
        let (xs, mut lcg) = inputs();
        let mut gate = [0f32; 64];
        gate.copy_from_slice(&xs[4136..4200]);
        let mut up = [0f32; 69];
        for u in &mut up {
            *u = lcg.uniform(4.0, -2.0);
        }
        crate::backend::reference::swiglu(&mut gate, &up[..64]);
        assert_eq!(fnv(gate), 0x4ef2_0163_306c_a49f);
    }

    #[test]
    fn causal_softmax_rows_match_ggml() {
        let (_, mut lcg) = inputs();
        for _ in 0..69 {
            lcg.next();
        }
        let lens = (1..=40).chain([64, 100, 255, 256]);
        let mut probs = [0f32; 12336];
        let mut used = 0;
        for len in lens {
            let mut row = [0f32; 256];
            for s in &mut row {
                *s = lcg.uniform(16.0, -8.0) * 0.125;
            }
            crate::backend::reference::attention::softmax(&mut row[..len]);
            probs[used..used + len].copy_from_slice(&row[..len]);
            used += len;
        }
        assert_eq!(fnv(probs[..used].iter().copied()), 0xbd56_0204_5fea_63ae);
    }

    #[test]
    fn halving_sum_pairs_halves() {
        let mut lanes = [0f32; 16];
        lanes[0] = 1e8;
        lanes[1] = -1e8;
        lanes[8] = 1.0;
        // (1e8 + 1) + (-1e8 + 0) = 0 in f32, where a left-to-right sum gives 1e8 - 1e8 + 1.
        assert_eq!(halving_sum(&mut lanes), 0.0);
    }
}
