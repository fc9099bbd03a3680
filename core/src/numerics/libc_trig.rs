//! `sinf`, `cosf` and `powf` with the bits of the C library llama.cpp links on Linux.
//!
//! ggml builds RoPE's rotation tables with the C library's `sinf`/`cosf` (ops.cpp,
//! `rope_yarn`) and its frequency ratio with `powf`. glibc's `sinf`/`cosf` (since 2.28) are
//! ARM's optimized routines: the argument is widened to f64, reduced by a multiple of π/2
//! (one multiply-subtract below 120, a 4/π table of 192 bits above), and the quadrant's sine
//! or cosine polynomial is evaluated in f64 and rounded once. They are within an ulp of the
//! true value but not correctly rounded (about 1% of RoPE's angles differ from `libm`'s
//! bits), and on random-weight test models one ulp in a rotated key moves attention enough
//! to show in the logits. So this module computes the same f64 operations in the same order;
//! a test checks it against the platform's functions wherever those are glibc's.
//!
//! `powf` is only ever taken once per model (the ratio between RoPE frequencies), where
//! glibc's result is the correctly rounded one; f64 `pow` rounded to f32 gives that.

/// Coefficients of one quadrant pair. The second table computes `-cos` and the sine of the
/// negated argument, which gives quadrants 2 and 3 their signs for free.
struct Poly {
    /// `cos(x) ≈ c0 + c1 x² + c2 x⁴ + c3 x⁶ + c4 x⁸`.
    c: [f64; 5],
    /// `sin(x) ≈ x + s1 x³ + s2 x⁵ + s3 x⁷`.
    s: [f64; 3],
}

const COS: [f64; 5] = [
    1.0,
    f64::from_bits(0xbfdf_ffff_fd0c_621c), // -0x1.ffffffd0c621cp-2
    f64::from_bits(0x3fa5_5553_e106_8f19), // 0x1.55553e1068f19p-5
    f64::from_bits(0xbf56_c087_e89a_359d), // -0x1.6c087e89a359dp-10
    f64::from_bits(0x3ef9_9343_027b_f8c3), // 0x1.99343027bf8c3p-16
];
const SIN: [f64; 3] = [
    f64::from_bits(0xbfc5_5554_5995_a603), // -0x1.555545995a603p-3
    f64::from_bits(0x3f81_1076_0523_0bc4), // 0x1.1107605230bc4p-7
    f64::from_bits(0xbf29_94eb_3774_cf24), // -0x1.994eb3774cf24p-13
];

const TABLES: [Poly; 2] = [
    Poly { c: COS, s: SIN },
    Poly {
        c: [-COS[0], -COS[1], -COS[2], -COS[3], -COS[4]],
        s: SIN,
    },
];

/// Sign of the sine in quadrants 0..3.
const QUADRANT_SIGN: [f64; 4] = [1.0, -1.0, -1.0, 1.0];

/// 4/π to 192 bits; entry `i` holds bits `8i..8i + 32`, so a 96-bit window starts on any
/// byte without unaligned reads.
const INV_PIO4: [u32; 24] = [
    0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529, 0x441529fc,
    0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0, 0x34ddc0db,
    0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

/// Sine of `x` as glibc computes it.
pub fn sinf(x: f32) -> f32 {
    eval(x, false)
}

/// Cosine of `x` as glibc computes it.
pub fn cosf(x: f32) -> f32 {
    eval(x, true)
}

/// `base^exp` rounded once from f64.
pub fn powf(base: f32, exp: f32) -> f32 {
    libm::pow(f64::from(base), f64::from(exp)) as f32
}

/// Exponent and top mantissa bits of `|x|`: magnitudes compare as these integers.
fn abstop12(x: f32) -> u32 {
    (x.to_bits() >> 20) & 0x7ff
}

fn eval(y: f32, cosine: bool) -> f32 {
    let x = f64::from(y);
    let quarter_pi = f32::from_bits(0x3f49_0fdb); // π/4 rounded to f32
    if abstop12(y) < abstop12(quarter_pi) {
        if abstop12(y) < abstop12(f32::from_bits(0x3980_0000)) {
            // |y| < 2^-12: sin y rounds to y, cos y to 1.
            return if cosine { 1.0 } else { y };
        }
        return poly(x, x * x, &TABLES[0], usize::from(cosine));
    }
    // `n` picks the polynomial; `signed`, which adds the sign of `y` where the reduction
    // worked on `|y|`, picks the signs.
    let (r, n, signed) = if abstop12(y) < abstop12(120.0) {
        let (r, n) = reduce_small(x);
        (r, n, n)
    } else if abstop12(y) < abstop12(f32::INFINITY) {
        let (r, n) = reduce_large(y.to_bits());
        (r, n, n + (y.to_bits() >> 31) as usize)
    } else {
        return f32::NAN;
    };
    let table = &TABLES[(signed >> 1) & 1];
    poly(
        r * QUADRANT_SIGN[signed & 3],
        r * r,
        table,
        n ^ usize::from(cosine),
    )
}

/// The sine polynomial for even `n`, the cosine one for odd, in glibc's operation order.
fn poly(x: f64, x2: f64, p: &Poly, n: usize) -> f32 {
    if n & 1 == 0 {
        let x3 = x * x2;
        let s1 = p.s[1] + x2 * p.s[2];
        let x7 = x3 * x2;
        let s = x + x3 * p.s[0];
        (s + x7 * s1) as f32
    } else {
        let x4 = x2 * x2;
        let c2 = p.c[3] + x2 * p.c[4];
        let c1 = p.c[0] + x2 * p.c[1];
        let x6 = x4 * x2;
        let c = c1 + x4 * p.c[2];
        (c + x6 * c2) as f32
    }
}

/// `x - n π/2` for the nearest quadrant `n`, with `|x| < 120`: `2/π` is scaled by `2^24`
/// so the truncating conversion rounds through the added half.
fn reduce_small(x: f64) -> (f64, usize) {
    let half_pi = f64::from_bits(0x3ff9_21fb_5444_2d18);
    let two_over_pi_2p24 = f64::from_bits(0x4164_5f30_6dc9_c883);
    let r = x * two_over_pi_2p24;
    let n = ((r as i32).wrapping_add(0x80_0000)) >> 24;
    (x - f64::from(n) * half_pi, n as usize)
}

/// `|x| mod π/2` for `|x| >= 120` from the bits `xi`, with the quadrant: a 32 x 96-bit
/// product with the 4/π window that `x`'s exponent selects gives the reduced argument as a
/// 2.62 fixed-point number.
fn reduce_large(xi: u32) -> (f64, usize) {
    let window = &INV_PIO4[((xi >> 26) & 15) as usize..];
    let shift = (xi >> 23) & 7;
    let m = ((xi & 0xff_ffff) | 0x80_0000) << shift;
    let lo = u64::from(m.wrapping_mul(window[0]));
    let mid = u64::from(m) * u64::from(window[4]);
    let hi = u64::from(m) * u64::from(window[8]);
    let mut res = ((hi >> 32) | (lo << 32)).wrapping_add(mid);
    let n = (res.wrapping_add(1 << 61)) >> 62;
    res = res.wrapping_sub(n << 62);
    let pi_2m63 = f64::from_bits(0x3c19_21fb_5444_2d18); // π * 2^-63
    ((res as i64) as f64 * pi_2m63, n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f32 in the ranges RoPE uses and a sample of the rest, against the platform's
    /// functions where those are glibc's (the C library llama.cpp's references come from).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn sin_and_cos_match_glibc_bit_for_bit() {
        extern crate std;
        unsafe extern "C" {
            fn sinf(x: f32) -> f32;
            fn cosf(x: f32) -> f32;
        }
        let mut bits = 0u32;
        let mut checked = 0;
        while bits < 0x8000_0000 {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                // SAFETY: glibc's sinf/cosf are pure functions of one float.
                let (s, c) = unsafe { (sinf(x), cosf(x)) };
                let (s2, c2) = (super::sinf(x), super::cosf(x));
                assert!(same(s, s2), "sin({x:e}) = {s:e}, got {s2:e}");
                assert!(same(c, c2), "cos({x:e}) = {c:e}, got {c2:e}");
                checked += 1;
            }
            // Dense where RoPE's angles lie (below 2^16 = 0x4780_0000), sparse above.
            bits += if bits < 0x4780_0000 { 97 } else { 4099 };
        }
        assert!(checked > 20_000_000);
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn special_values() {
        assert_eq!(sinf(0.0), 0.0);
        assert_eq!(cosf(0.0), 1.0);
        assert!(sinf(f32::INFINITY).is_nan() && cosf(f32::NAN).is_nan());
        assert!((sinf(1.0) - 0.841_470_96).abs() < 1e-7);
        assert!((cosf(1e6) - libm::cos(1e6) as f32).abs() < 1e-6);
    }

    #[test]
    fn powf_rounds_the_exact_power() {
        assert_eq!(powf(1e6, -2.0 / 64.0), libm::pow(1e6, -2.0 / 64.0) as f32);
        assert_eq!(powf(2.0, 10.0), 1024.0);
    }
}
