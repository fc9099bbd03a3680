//! The float kernels: `gemm_f32`, dot products and `axpy`, with odd lengths; the f16 dot
//! products of the fp16 path within f16 rounding. Sizes stay small: emulated float is slow.

use std::vec::Vec;

use half::f16;
use proptest::prelude::*;
use tern_core::cpu::{CpuKernels, PANEL_ROWS, ScalarKernels, gemm_f32_scalar};

use super::{Rng, levels};
use crate::NeonKernels;

fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.unit() * 4.0).collect()
}

/// How far `k`'s f16 dot of `len` values may be from the definition, for products whose
/// magnitudes sum to `m`: f32 rounding, or with the fp16 kernels f16 rounding of the query
/// and of each of a lane's `len / 16 + 1` steps, plus f16's absolute spacing near zero.
fn f16_tolerance(k: &NeonKernels, len: usize, m: f32) -> f32 {
    if k.fp16() {
        (len / 16 + 2) as f32 * 2f32.powi(-10) * m + len as f32 * 2f32.powi(-23)
    } else {
        1e-5 * m
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gemm_f32(cols in 1usize..70, n in 1usize..=9, seed in any::<u64>()) {
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
    fn dot(len in 0usize..150, extra in 0usize..3, seed in any::<u64>()) {
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

    /// A query against a block of rows: within rounding of the definition, and each row's
    /// value the same bits whether computed alone or in the block.
    #[test]
    fn dot_rows(
        len in 0usize..150, n_rows in 0usize..=12, gap in 0usize..5, seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let stride = len + gap;
        let q = floats(&mut rng, len);
        // The last row has exactly `len` values: nothing past it may be read.
        let rows = floats(&mut rng, (n_rows.max(1) - 1) * stride + len);
        let rows16: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
        let rows = if n_rows == 0 { Vec::new() } else { rows };
        let rows16 = if n_rows == 0 { Vec::new() } else { rows16 };
        let mut want = std::vec![0f32; n_rows];
        let mut want16 = want.clone();
        ScalarKernels.dot_rows_f32(&q, &rows, stride, &mut want);
        ScalarKernels.dot_rows_f16(&q, &rows16, stride, &mut want16);
        for k in levels() {
            let mut got = std::vec![f32::NAN; n_rows];
            let mut got16 = got.clone();
            k.dot_rows_f32(&q, &rows, stride, &mut got);
            k.dot_rows_f16(&q, &rows16, stride, &mut got16);
            for j in 0..n_rows {
                let row = j * stride..j * stride + len;
                let m = |r: &[f32]| -> f32 {
                    q.iter().zip(r).map(|(a, b)| (a * b).abs()).sum::<f32>() + f32::MIN_POSITIVE
                };
                let row16: Vec<f32> = rows16[row.clone()].iter().map(|v| v.to_f32()).collect();
                prop_assert!((got[j] - want[j]).abs() <= 1e-5 * m(&rows[row.clone()]),
                    "{} f32 len {len} row {j}: {} vs {}", k.name(), got[j], want[j]);
                let tol = f16_tolerance(&k, len, m(&row16));
                prop_assert!((got16[j] - want16[j]).abs() <= tol,
                    "{} f16 len {len} row {j}: {} vs {}", k.name(), got16[j], want16[j]);
                let (mut alone, mut alone16) = ([f32::NAN], [f32::NAN]);
                k.dot_rows_f32(&q, &rows[j * stride..], stride, &mut alone);
                k.dot_rows_f16(&q, &rows16[j * stride..], stride, &mut alone16);
                prop_assert_eq!(alone[0].to_bits(), got[j].to_bits(), "{} f32 row {}", k.name(), j);
                prop_assert_eq!(alone16[0].to_bits(), got16[j].to_bits(), "{} f16 row {}", k.name(), j);
            }
        }
    }

    /// `axpy` computes each element exactly as the definition does.
    #[test]
    fn axpy(len in 0usize..150, extra in 0usize..3, a in -4f32..4.0, seed in any::<u64>()) {
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

/// Products beyond f16's range: the fp16 path must give the f32 definition's finite
/// result, not infinity (and infinity or NaN only where the definition has them).
#[test]
fn f16_dots_that_overflow_f16_are_exact_in_f32() {
    let len = 64;
    let q = std::vec![300f32; len];
    let row = std::vec![f16::from_f32(250.0); len];
    let mut inf_row = row.clone();
    inf_row[3] = f16::INFINITY;
    for k in levels() {
        let mut got = [0f32; 1];
        k.dot_rows_f16(&q, &row, len, &mut got);
        assert_eq!(got[0], 300.0 * 250.0 * len as f32, "{}", k.name());
        k.dot_rows_f16(&q, &inf_row, len, &mut got);
        assert_eq!(got[0], f32::INFINITY, "{}", k.name());
    }
}
