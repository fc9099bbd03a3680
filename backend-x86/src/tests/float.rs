//! The float kernels: `gemm_f32`, dot products and `axpy`, with odd lengths.

use std::vec::Vec;

use half::f16;
use proptest::prelude::*;
use tern_core::cpu::{CpuKernels, PANEL_ROWS, ScalarKernels, gemm_f32_scalar};

use super::{Rng, levels};

fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.unit() * 4.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn gemm_f32(cols in 1usize..150, n in 1usize..=12, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let panel = floats(&mut rng, cols * PANEL_ROWS);
        let x = floats(&mut rng, n * cols);
        let mut want = std::vec![[0f32; PANEL_ROWS]; n];
        gemm_f32_scalar(cols, &panel, &x, &mut want);
        for k in levels() {
            let mut got = std::vec![[f32::NAN; PANEL_ROWS]; n];
            k.gemm_f32(cols, &panel, &x, &mut got);
            for t in 0..n {
                for r in 0..PANEL_ROWS {
                    let m: f32 = (0..cols).map(|c| (panel[c * PANEL_ROWS + r] * x[t * cols + c]).abs()).sum();
                    prop_assert!((got[t][r] - want[t][r]).abs() <= 1e-5 * m,
                        "{} cols {cols} token {t} row {r}: {} vs {}", k.name(), got[t][r], want[t][r]);
                }
            }
        }
    }

    #[test]
    fn dot(len in 0usize..300, extra in 0usize..3, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let a = floats(&mut rng, len);
        // `b` may be longer: only the common length counts.
        let b = floats(&mut rng, len + extra);
        let b16: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
        let m: f32 = a.iter().zip(&b).map(|(a, b)| (a * b).abs()).sum::<f32>() + f32::MIN_POSITIVE;
        for k in levels() {
            let (got, want) = (k.dot_f32(&a, &b), ScalarKernels.dot_f32(&a, &b));
            prop_assert!((got - want).abs() <= 1e-5 * m, "{} f32 len {len}: {got} vs {want}", k.name());
            let (got, want) = (k.dot_f16(&a, &b16), ScalarKernels.dot_f16(&a, &b16));
            prop_assert!((got - want).abs() <= 1e-5 * m, "{} f16 len {len}: {got} vs {want}", k.name());
        }
    }

    /// `axpy` computes each element exactly as the definition does.
    #[test]
    fn axpy(len in 0usize..300, extra in 0usize..3, a in -4f32..4.0, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let y0 = floats(&mut rng, len);
        let x = floats(&mut rng, len + extra);
        let x16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let (mut want, mut want16) = (y0.clone(), y0.clone());
        ScalarKernels.axpy_f32(&mut want, a, &x);
        ScalarKernels.axpy_f16(&mut want16, a, &x16);
        for k in levels() {
            let (mut got, mut got16) = (y0.clone(), y0.clone());
            k.axpy_f32(&mut got, a, &x);
            k.axpy_f16(&mut got16, a, &x16);
            prop_assert_eq!(&got, &want, "{} f32", k.name());
            prop_assert_eq!(&got16, &want16, "{} f16", k.name());
        }
    }
}
