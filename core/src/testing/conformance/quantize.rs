//! `quantize_row` byte for byte against the scalar definition: random rows of every kind,
//! rounding ties, equal maxima of opposite signs, zeros, infinities and NaNs.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::{Rng, Suite, act_layout};
use crate::cpu::{ActLayout, CpuKernels, quantize_row};

/// Cases of each property.
const CASES: u32 = 200;

/// Quantizes `x` with the scalar definition and every kernel set into buffers prefilled
/// alike (and longer than a row), and requires identical bytes: the same codes, scales and
/// sums, and nothing written past the row.
pub fn check<K: CpuKernels>(levels: &[K], layout: ActLayout, x: &[f32]) -> Result<(), String> {
    let len = layout.stride() + 64;
    let mut want = vec![0xa5u8; len];
    quantize_row(layout, x, &mut want);
    for k in levels {
        let mut got = vec![0xa5u8; len];
        k.quantize_row(layout, x, &mut got);
        if got != want {
            return Err(format!("{} {layout:?}: {got:?} vs {want:?}", k.name()));
        }
    }
    Ok(())
}

/// Random rows of every kind ([`Rng::activations`]), one to six groups long.
pub fn random_rows<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (0usize..4, 1usize..=6, any::<u64>());
    suite.run(CASES, strategy, |(kind, groups, seed)| {
        let l = act_layout(kind, groups);
        let x = Rng::new(seed).activations(l.cols);
        check(&suite.levels, l, &x).map_err(TestCaseError::fail)
    });
}

/// Values on rounding ties: with the largest magnitude 127 the scale is 1 and every
/// `k + 0.5` is an exact tie.
pub fn ties<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (0usize..4, 1usize..=3, any::<u64>());
    suite.run(CASES, strategy, |(kind, groups, seed)| {
        let l = act_layout(kind, groups);
        let mut rng = Rng::new(seed);
        let mut x: Vec<f32> = (0..l.cols)
            .map(|_| (rng.below(255) as f32 - 127.0) * 0.5)
            .collect();
        for (i, v) in x.iter_mut().enumerate() {
            if i % 32 == 0 {
                *v = if rng.below(2) == 0 { 127.0 } else { -127.0 };
            }
        }
        check(&suite.levels, l, &x).map_err(TestCaseError::fail)
    });
}

/// Equal largest magnitudes of opposite signs: Q8_K takes the first one's sign.
pub fn opposite_maxima<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (0usize..4, any::<u64>(), 0usize..256, 0usize..256);
    suite.run(CASES, strategy, |(kind, seed, first, second)| {
        let l = act_layout(kind, 1);
        let mut x = Rng::new(seed).activations(l.cols);
        let (first, second) = (first % l.cols, second % l.cols);
        x[first] = -1e6;
        x[second] = 1e6;
        check(&suite.levels, l, &x).map_err(TestCaseError::fail)
    });
}

/// Zeros, infinities and NaNs come out as the scalar definition makes them.
pub fn special_values<K: CpuKernels>(suite: &Suite<K>) {
    for kind in 0..4 {
        let l = act_layout(kind, 2);
        let mut x = vec![0f32; l.cols];
        check(&suite.levels, l, &x).unwrap();
        x[3] = -0.0;
        x[40] = f32::NAN;
        x[41] = 1.0;
        x[300 % l.cols] = f32::INFINITY;
        check(&suite.levels, l, &x).unwrap();
    }
}
