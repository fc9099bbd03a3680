//! The float kernels: `gemm_f32`, dot products and `axpy`, with odd lengths; f16 dot
//! products that overflow f16.

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use half::f16;
use proptest::prelude::*;

use super::{ELEMENTWISE, FLOAT_DOTS, Rng, Suite, dot_rows_f16_bound};
use crate::cpu::{CpuKernels, PANEL_ROWS, ScalarKernels, gemm_f32_scalar};

fn floats(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.unit() * 4.0).collect()
}

/// `Σ |a_i b_i|` (plus the smallest normal, so that it is never zero).
fn magnitude(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| (a * b).abs()).sum::<f32>() + f32::MIN_POSITIVE
}

/// `dot_f32(a, b)` and `dot_f16(a, b16)` of every kernel set against the definitions;
/// `b16` is `b` in f16, and either may be longer than `a` (only the common length counts).
pub fn check_dots<K: CpuKernels>(
    levels: &[K],
    a: &[f32],
    b: &[f32],
    b16: &[f16],
) -> Result<(), String> {
    let m = magnitude(a, b);
    let len = a.len();
    for k in levels {
        let (got, want) = (k.dot_f32(a, b), ScalarKernels.dot_f32(a, b));
        if !FLOAT_DOTS.holds(got, want, m) {
            return Err(format!("{} f32 len {len}: {got} vs {want}", k.name()));
        }
        let (got, want) = (k.dot_f16(a, b16), ScalarKernels.dot_f16(a, b16));
        if !FLOAT_DOTS.holds(got, want, m) {
            return Err(format!("{} f16 len {len}: {got} vs {want}", k.name()));
        }
    }
    Ok(())
}

/// `axpy_f32(y, a, x)` and `axpy_f16(y, a, x16)` of every kernel set against the
/// definitions, element by element.
pub fn check_axpy<K: CpuKernels>(
    levels: &[K],
    y: &[f32],
    a: f32,
    x: &[f32],
    x16: &[f16],
) -> Result<(), String> {
    let (mut want, mut want16) = (y.to_vec(), y.to_vec());
    ScalarKernels.axpy_f32(&mut want, a, x);
    ScalarKernels.axpy_f16(&mut want16, a, x16);
    for k in levels {
        let (mut got, mut got16) = (y.to_vec(), y.to_vec());
        k.axpy_f32(&mut got, a, x);
        k.axpy_f16(&mut got16, a, x16);
        for (what, got, want) in [("f32", &got, &want), ("f16", &got16, &want16)] {
            if let Some(i) = (0..got.len()).find(|&i| !ELEMENTWISE.holds(got[i], want[i], 0.0)) {
                return Err(format!(
                    "{} {what} [{i}]: {} vs {}",
                    k.name(),
                    got[i],
                    want[i]
                ));
            }
        }
    }
    Ok(())
}

/// A panel of one to `gemm_f32_cols` columns against one to `gemm_f32_tokens` rows.
pub fn gemm_f32<K: CpuKernels>(suite: &Suite<K>) {
    let b = suite.budget;
    let strategy = (
        1usize..b.gemm_f32_cols,
        1usize..=b.gemm_f32_tokens,
        any::<u64>(),
    );
    suite.run(b.float_cases, strategy, |(cols, n, seed)| {
        let mut rng = Rng::new(seed);
        let panel = floats(&mut rng, cols * PANEL_ROWS);
        let x = floats(&mut rng, n * cols);
        let mut want = vec![[0f32; PANEL_ROWS]; n];
        gemm_f32_scalar(cols, &panel, &x, &mut want);
        for k in &suite.levels {
            let mut got = vec![[f32::NAN; PANEL_ROWS]; n];
            k.gemm_f32(cols, &panel, &x, &mut got);
            for t in 0..n {
                for r in 0..PANEL_ROWS {
                    let m: f32 = (0..cols)
                        .map(|c| (panel[c * PANEL_ROWS + r] * x[t * cols + c]).abs())
                        .sum();
                    let (g, w) = (got[t][r], want[t][r]);
                    prop_assert!(
                        FLOAT_DOTS.holds(g, w, m),
                        "{} cols {cols} token {t} row {r}: {g} vs {w}",
                        k.name()
                    );
                }
            }
        }
        Ok(())
    });
}

/// `dot_f32` and `dot_f16` of every length the budget allows, the second operand longer.
pub fn dot<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (0usize..suite.budget.vector_len, 0usize..3, any::<u64>());
    suite.run(suite.budget.float_cases, strategy, |(len, extra, seed)| {
        let mut rng = Rng::new(seed);
        let a = floats(&mut rng, len);
        let b = floats(&mut rng, len + extra);
        let b16: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
        check_dots(&suite.levels, &a, &b, &b16).map_err(TestCaseError::fail)
    });
}

/// A query against a block of rows: within the table's rule of the definition, and each
/// row's value the same bits whether computed alone or in the block.
pub fn dot_rows<K: CpuKernels>(suite: &Suite<K>) {
    let b = suite.budget;
    let strategy = (
        0usize..b.vector_len,
        0usize..=b.dot_rows,
        0usize..5,
        any::<u64>(),
    );
    suite.run(b.float_cases, strategy, |(len, n_rows, gap, seed)| {
        let mut rng = Rng::new(seed);
        let stride = len + gap;
        let q = floats(&mut rng, len);
        // The last row has exactly `len` values: nothing past it may be read.
        let rows = floats(&mut rng, (n_rows.max(1) - 1) * stride + len);
        let rows16: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
        let rows = if n_rows == 0 { Vec::new() } else { rows };
        let rows16 = if n_rows == 0 { Vec::new() } else { rows16 };
        let mut want = vec![0f32; n_rows];
        let mut want16 = want.clone();
        ScalarKernels.dot_rows_f32(&q, &rows, stride, &mut want);
        ScalarKernels.dot_rows_f16(&q, &rows16, stride, &mut want16);
        for k in &suite.levels {
            let mut got = vec![f32::NAN; n_rows];
            let mut got16 = got.clone();
            k.dot_rows_f32(&q, &rows, stride, &mut got);
            k.dot_rows_f16(&q, &rows16, stride, &mut got16);
            for j in 0..n_rows {
                let row = j * stride..j * stride + len;
                let row16: Vec<f32> = rows16[row.clone()].iter().map(|v| v.to_f32()).collect();
                prop_assert!(
                    FLOAT_DOTS.holds(got[j], want[j], magnitude(&q, &rows[row.clone()])),
                    "{} f32 len {len} row {j}: {} vs {}",
                    k.name(),
                    got[j],
                    want[j]
                );
                let tol = dot_rows_f16_bound((suite.f16_dots)(k), len, magnitude(&q, &row16));
                prop_assert!(
                    (got16[j] - want16[j]).abs() <= tol,
                    "{} f16 len {len} row {j}: {} vs {}",
                    k.name(),
                    got16[j],
                    want16[j]
                );
                let (mut alone, mut alone16) = ([f32::NAN], [f32::NAN]);
                k.dot_rows_f32(&q, &rows[j * stride..], stride, &mut alone);
                k.dot_rows_f16(&q, &rows16[j * stride..], stride, &mut alone16);
                prop_assert_eq!(
                    alone[0].to_bits(),
                    got[j].to_bits(),
                    "{} f32 row {}",
                    k.name(),
                    j
                );
                prop_assert_eq!(
                    alone16[0].to_bits(),
                    got16[j].to_bits(),
                    "{} f16 row {}",
                    k.name(),
                    j
                );
            }
        }
        Ok(())
    });
}

/// `axpy` computes each element exactly as the definition does.
pub fn axpy<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (
        0usize..suite.budget.vector_len,
        0usize..3,
        -4f32..4.0,
        any::<u64>(),
    );
    suite.run(
        suite.budget.float_cases,
        strategy,
        |(len, extra, a, seed)| {
            let mut rng = Rng::new(seed);
            let y = floats(&mut rng, len);
            let x = floats(&mut rng, len + extra);
            let x16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            check_axpy(&suite.levels, &y, a, &x, &x16).map_err(TestCaseError::fail)
        },
    );
}

/// Products beyond f16's range: f16 arithmetic must still give the f32 definition's finite
/// result, not infinity (and infinity or NaN only where the definition has them).
pub fn f16_dots_that_overflow_f16_are_exact_in_f32<K: CpuKernels>(suite: &Suite<K>) {
    let len = 64;
    let q = vec![300f32; len];
    let row = vec![f16::from_f32(250.0); len];
    let mut inf_row = row.clone();
    inf_row[3] = f16::INFINITY;
    for k in &suite.levels {
        let mut got = [0f32; 1];
        k.dot_rows_f16(&q, &row, len, &mut got);
        assert_eq!(got[0], 300.0 * 250.0 * len as f32, "{}", k.name());
        k.dot_rows_f16(&q, &inf_row, len, &mut got);
        assert_eq!(got[0], f32::INFINITY, "{}", k.name());
    }
}
