//! `swiglu` and `exp_shifted` bit for bit against the scalar definitions (ggml's vectorized
//! exp and SiLU), NaN against any NaN: random values from the whole float range, the
//! thresholds where exp's result turns subnormal, overflows or is cut off (`|n| > 192`),
//! special values, and lengths that leave every tail.

use std::format;
use std::string::String;
use std::thread;
use std::vec::Vec;

use proptest::prelude::*;

use super::{ELEMENTWISE, Suite};
use crate::cpu::{CpuKernels, ScalarKernels};

const LN2: f32 = core::f32::consts::LN_2;

/// Magnitudes of `x` where `n = round(x / ln2)` crosses a boundary of the scaling: x86's
/// AVX2 emulation splits at 125..127, results turn subnormal (126..149), overflow (128) and
/// are cut off at 192.
const THRESHOLDS: [f32; 11] = [
    125.0 * LN2,
    126.0 * LN2,
    126.5 * LN2,
    127.0 * LN2,
    128.0 * LN2,
    149.0 * LN2,
    150.0 * LN2,
    191.5 * LN2,
    192.0 * LN2,
    192.5 * LN2,
    193.0 * LN2,
];

const SPECIALS: [u32; 20] = [
    0x0000_0000, // 0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x007f_ffff, // largest subnormal
    0x807f_ffff,
    0x0080_0000, // smallest normal
    0x3f80_0000, // 1
    0xbf80_0000,
    0x42b1_7218, // ln(MAX) + ulp: exp overflows
    0xc2b1_7218,
    0x42cf_f1b5, // -103.97: exp underflows to 0
    0xc2cf_f1b5,
    0x7f7f_ffff, // MAX
    0xff7f_ffff,
    0x7f80_0000, // inf
    0xff80_0000,
    0x7fc0_0000, // NaN
    0xffc0_0000,
    0x7f80_0001, // signalling NaN
];

/// The index of the first element that breaks the element-wise rule.
fn first_difference(got: &[f32], want: &[f32]) -> Option<usize> {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .position(|(&g, &w)| !ELEMENTWISE.holds(g, w, 0.0))
}

/// Runs both kernels on `x` (as gates with `up`, and shifted by `shift`) with every kernel
/// set and reports the first element that differs from the scalar definition.
pub fn check<K: CpuKernels>(levels: &[K], x: &[f32], up: &[f32], shift: f32) -> Result<(), String> {
    let mut want_swiglu = x.to_vec();
    ScalarKernels.swiglu(&mut want_swiglu, up);
    let mut want_exp = x.to_vec();
    ScalarKernels.exp_shifted(&mut want_exp, shift);
    for k in levels {
        let mut swiglu = x.to_vec();
        k.swiglu(&mut swiglu, up);
        let mut exp = x.to_vec();
        k.exp_shifted(&mut exp, shift);
        for (what, got, want) in [
            ("swiglu", swiglu, &want_swiglu),
            ("exp_shifted", exp, &want_exp),
        ] {
            if let Some(i) = first_difference(&got, want) {
                let (v, bits) = (x[i], x[i].to_bits());
                let input = if what == "swiglu" {
                    format!("gate {v:e} ({bits:#x}) up {:e}", up[i])
                } else {
                    format!("{v:e} ({bits:#x}) - {shift:e}")
                };
                return Err(format!(
                    "{} {what} len {} [{i}]: {input}: {:#x} vs {:#x}",
                    k.name(),
                    x.len(),
                    got[i].to_bits(),
                    want[i].to_bits()
                ));
            }
        }
    }
    Ok(())
}

/// A float of a random kind: any bit pattern, moderate, near a threshold (either sign,
/// within 4096 ulps), or special.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        -140f32..140.0,
        (0..THRESHOLDS.len(), any::<bool>(), -4096i32..=4096).prop_map(|(t, neg, ulps)| {
            let v = f32::from_bits(THRESHOLDS[t].to_bits().wrapping_add_signed(ulps));
            if neg { -v } else { v }
        }),
        prop::sample::select(&SPECIALS[..]).prop_map(f32::from_bits),
    ]
}

/// Random lengths; values of every kind (any bits, moderate, near a threshold, special),
/// shifts among them.
pub fn bit_exact<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (
        prop::collection::vec(value(), 0..80),
        prop::collection::vec(value(), 80),
        prop_oneof![Just(0.0f32), -30f32..30.0, value()],
    );
    suite.run(suite.budget.exp_cases, strategy, |(x, up, shift)| {
        // `up` may be longer: only the common length counts.
        check(&suite.levels, &x, &up, shift).map_err(TestCaseError::fail)
    });
}

/// Every bit pattern within the budget's ulps of each threshold, both signs, in rows of
/// 1021.
pub fn dense_around_thresholds<K: CpuKernels>(suite: &Suite<K>) {
    let ones = [1.0f32; 1021];
    let ulps = suite.budget.exp_dense_ulps;
    for t in THRESHOLDS {
        for sign in [0, 0x8000_0000] {
            let bits = (t.to_bits() - ulps..t.to_bits() + ulps).map(|b| b | sign);
            let x: Vec<f32> = bits.map(f32::from_bits).collect();
            for row in x.chunks(ones.len()) {
                check(&suite.levels, row, &ones, 0.0).unwrap();
            }
        }
    }
}

/// Every bit pattern at the budget's stride (all exponents and signs), in rows of 1021.
pub fn strided_sweep_of_all_floats<K: CpuKernels>(suite: &Suite<K>) {
    let ones = [1.0f32; 1021];
    let x: Vec<f32> = (0..=u32::MAX)
        .step_by(suite.budget.exp_sweep_stride)
        .map(f32::from_bits)
        .collect();
    for row in x.chunks(ones.len()) {
        check(&suite.levels, row, &ones, 0.0).unwrap();
    }
}

/// All 2^32 inputs, on every core (minutes natively; the backends' tests mark it ignored).
pub fn exhaustive<K: CpuKernels>(suite: &Suite<K>) {
    const CHUNK: u64 = 1 << 16;
    let threads = thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let ones = [1.0f32; CHUNK as usize];
    let levels = &suite.levels[..];
    thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut start = t * CHUNK;
                while start < 1 << 32 {
                    let x: Vec<f32> = (start..start + CHUNK)
                        .map(|b| f32::from_bits(b as u32))
                        .collect();
                    check(levels, &x, &ones, 0.0).unwrap();
                    start += threads * CHUNK;
                }
            });
        }
    });
}
