//! `quantize_row` bit for bit against the scalar definition.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use tern_core::cpu::{ActLayout, ActScale, CpuKernels, quantize_row};

use super::{Rng, levels};

/// Both scale kinds with both sub-block sizes; `groups` blocks of 256 values, or five blocks
/// of 32 per group (so that rows reach, and leave tails of, the eight-block path).
fn layout(kind: usize, groups: usize) -> ActLayout {
    let (scale, group) = if kind < 2 {
        (ActScale::PerBlock32, 5 * 32)
    } else {
        (ActScale::PerBlock256, 256)
    };
    let sub_block = if kind.is_multiple_of(2) { 32 } else { 16 };
    ActLayout {
        cols: groups * group,
        sub_block,
        scale,
    }
}

/// Quantizes `x` with the scalar definition and every level into buffers prefilled alike
/// (and longer than a row), and requires identical bytes.
fn check(layout: ActLayout, x: &[f32]) -> Result<(), TestCaseError> {
    let len = layout.stride() + 64;
    let mut want = vec![0xa5u8; len];
    quantize_row(layout, x, &mut want);
    for k in levels() {
        let mut got = vec![0xa5u8; len];
        k.quantize_row(layout, x, &mut got);
        prop_assert!(
            got == want,
            "{} {:?}: {:?} vs {:?}",
            k.name(),
            layout,
            got,
            want
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_rows(kind in 0usize..4, groups in 1usize..=6, seed in any::<u64>()) {
        let l = layout(kind, groups);
        let x = Rng::new(seed).activations(l.cols);
        check(l, &x)?;
    }

    /// Values on rounding ties: with the largest magnitude 127 the scale is 1 and every
    /// `k + 0.5` is an exact tie.
    #[test]
    fn ties(kind in 0usize..4, groups in 1usize..=3, seed in any::<u64>()) {
        let l = layout(kind, groups);
        let mut rng = Rng::new(seed);
        let mut x: Vec<f32> = (0..l.cols).map(|_| (rng.below(255) as f32 - 127.0) * 0.5).collect();
        for (i, v) in x.iter_mut().enumerate() {
            if i % 32 == 0 {
                *v = if rng.below(2) == 0 { 127.0 } else { -127.0 };
            }
        }
        check(l, &x)?;
    }

    /// Equal largest magnitudes of opposite signs: Q8_K takes the first one's sign.
    #[test]
    fn opposite_maxima(kind in 0usize..4, seed in any::<u64>(), first in 0usize..256, second in 0usize..256) {
        let l = layout(kind, 1);
        let mut x = Rng::new(seed).activations(l.cols);
        let (first, second) = (first % l.cols, second % l.cols);
        x[first] = -1e6;
        x[second] = 1e6;
        check(l, &x)?;
    }
}

/// Zeros, infinities and NaNs come out as the scalar definition makes them.
#[test]
fn special_values() {
    for kind in 0..4 {
        let l = layout(kind, 2);
        let mut x = vec![0f32; l.cols];
        check(l, &x).unwrap();
        x[3] = -0.0;
        x[40] = f32::NAN;
        x[41] = 1.0;
        x[300 % l.cols] = f32::INFINITY;
        check(l, &x).unwrap();
    }
}
