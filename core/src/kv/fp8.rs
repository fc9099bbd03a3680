//! FP8 E4M3 (the OCP "FN" variant): 1 sign bit, 4 exponent bits of bias 7, 3 mantissa bits,
//! no infinities, `S.1111.111` the only NaN, ±448 the largest finite values. The MNN-LLM
//! paper stores attention values in it: a quarter of f32's bytes with a relative step of
//! 1/16, where values (unlike keys) tolerate the coarse mantissa.

/// One FP8 E4M3 value, as its byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Fp8E4M3(pub u8);

/// The largest finite magnitude.
pub const FP8_MAX: f32 = 448.0;

impl Fp8E4M3 {
    /// `x` rounded to nearest, ties to even; magnitudes past [`FP8_MAX`] saturate to it (an
    /// outlier keeps its sign and stays finite), NaN stays NaN.
    pub fn from_f32(x: f32) -> Fp8E4M3 {
        let sign = ((x.to_bits() >> 24) & 0x80) as u8;
        let a = libm::fabsf(x);
        if a.is_nan() {
            return Fp8E4M3(sign | 0x7f);
        }
        let code = if a >= FP8_MAX {
            0x7e
        } else if a < 0.015625 {
            // Below 2^-6 the steps are 2^-9 apart (subnormals); 8 steps is the smallest
            // normal, code 0x08, so the step count is the code.
            libm::rintf(a * 512.0) as u8
        } else {
            // Round the f32 mantissa to 3 bits, ties to even; a carry moves into the exponent.
            let b = a.to_bits();
            let rounded = (b + 0x7_ffff + ((b >> 20) & 1)) >> 20;
            (rounded - (120 << 3)).min(0x7e) as u8
        };
        Fp8E4M3(sign | code)
    }

    /// The value as f32 (exact: every E4M3 value is an f32).
    pub fn to_f32(self) -> f32 {
        let b = u32::from(self.0);
        if b & 0x7f == 0x7f {
            return f32::NAN;
        }
        // The 7 magnitude bits placed under f32's exponent field read as `x * 2^-120`
        // (subnormals included), so one exact product restores the value.
        let magnitude = f32::from_bits((b & 0x7f) << 20) * f32::from_bits((127 + 120) << 23);
        if b & 0x80 != 0 { -magnitude } else { magnitude }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The value of each code from the format's definition.
    fn by_definition(code: u8) -> f32 {
        let (s, e, m) = (code >> 7, (code >> 3) & 0xf, code & 7);
        if e == 15 && m == 7 {
            return f32::NAN;
        }
        let v = if e == 0 {
            f32::from(m) / 8.0 * libm::powf(2.0, -6.0)
        } else {
            (1.0 + f32::from(m) / 8.0) * libm::powf(2.0, f32::from(e) - 7.0)
        };
        if s == 1 { -v } else { v }
    }

    #[test]
    fn every_code_decodes_as_defined_and_encodes_back() {
        for code in 0..=255u8 {
            let (got, want) = (Fp8E4M3(code).to_f32(), by_definition(code));
            if want.is_nan() {
                assert!(got.is_nan(), "{code:#x}");
                continue;
            }
            assert_eq!(got.to_bits(), want.to_bits(), "{code:#x}");
            // Negative zero encodes back to itself too.
            assert_eq!(Fp8E4M3::from_f32(got).0, code, "{code:#x}");
        }
    }

    #[test]
    fn outliers_saturate_and_nan_stays_nan() {
        assert_eq!(Fp8E4M3::from_f32(1e9).to_f32(), FP8_MAX);
        assert_eq!(Fp8E4M3::from_f32(f32::NEG_INFINITY).to_f32(), -FP8_MAX);
        assert_eq!(Fp8E4M3::from_f32(460.0).to_f32(), FP8_MAX);
        assert!(Fp8E4M3::from_f32(f32::NAN).to_f32().is_nan());
        assert_eq!(Fp8E4M3::from_f32(1e-9).to_f32(), 0.0);
    }

    proptest! {
        /// The code chosen is a nearest one, and on a tie the one with an even mantissa.
        #[test]
        fn rounds_to_nearest_even(x in -500f32..500.0) {
            let got = Fp8E4M3::from_f32(x);
            let v = got.to_f32();
            let err = (v - x).abs();
            for code in 0..=255u8 {
                let c = by_definition(code);
                if c.is_nan() || x.abs() > FP8_MAX {
                    continue;
                }
                let other = (c - x).abs();
                prop_assert!(err <= other, "{x}: {v} but {c} is nearer");
                if err == other && c != v {
                    prop_assert_eq!(got.0 & 1, 0, "{} tie not to even", x);
                }
            }
        }
    }
}
