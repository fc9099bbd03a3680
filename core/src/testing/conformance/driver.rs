//! The kernels inside the driver: `Cpu<K>` against `Cpu<ScalarKernels>` on whole matmuls of
//! every format, with token counts that leave partial tiles and an uneven thread split.

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::{Matrix, Rng, Suite, tolerance};
use crate::DType;
use crate::backend::{Backend, Parallel};
use crate::cpu::{Cpu, CpuKernels, ScalarKernels};
use crate::model::WeightRole;
use crate::quant::dequantize;

/// Three "threads" of unequal speed, run one after another in reverse: shares of unequal
/// size, finished out of order.
pub struct Uneven;

impl Parallel for Uneven {
    fn n_threads(&self) -> usize {
        3
    }
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n_tasks).rev().for_each(task);
    }
    fn speed(&self, thread: usize) -> f32 {
        [1.0, 2.5, 0.5][thread]
    }
}

/// Cases of the property.
const CASES: u32 = 48;

/// Random matrices of every format, one to 19 tokens.
pub fn matmul_matches_the_scalar_kernels<K: CpuKernels + Clone>(suite: &Suite<K>) {
    let strategy = (
        0usize..DType::ALL.len(),
        1usize..50,
        1usize..3,
        1usize..20,
        any::<u64>(),
    );
    suite.run(CASES, strategy, |(which, rows, blocks, n, seed)| {
        let dtype = DType::ALL[which];
        let rule = tolerance::matmul(dtype);
        let cols = blocks * dtype.block_len().max(32);
        let mut rng = Rng::new(seed);
        let matrix = Matrix::quantize(dtype, rows, cols, &rng.weights(rows, cols));
        let view = matrix.view();
        let x: Vec<f32> = rng.units(n * cols);
        // Rounding scales with Σ |w_i x_i| of each output (row-major: row `r`, token `t`),
        // not with the result, which cancellation can make small.
        let mut magnitude = vec![f32::MIN_POSITIVE; rows * n];
        let mut w_row = vec![0f32; cols];
        for (r, m) in magnitude.chunks_exact_mut(n).enumerate() {
            dequantize(dtype, view.row(r).unwrap(), &mut w_row).unwrap();
            for (m, x) in m.iter_mut().zip(x.chunks_exact(cols)) {
                *m += w_row.iter().zip(x).map(|(w, x)| (w * x).abs()).sum::<f32>();
            }
        }
        let mut scratch = vec![0f32; n * (cols + 16)];
        let scalar = Cpu::new(ScalarKernels);
        let w = scalar.prepare(view, WeightRole::Matrix).unwrap();
        let mut want = vec![0f32; n * rows];
        scalar.matmul(&w, &x, &mut want, &mut scratch, &Uneven);
        for k in &suite.levels {
            let cpu = Cpu::new(k.clone());
            let w = cpu.prepare(view, WeightRole::Matrix).unwrap();
            let mut got = vec![f32::NAN; n * rows];
            cpu.matmul(&w, &x, &mut got, &mut scratch, &Uneven);
            for (t, (g, w)) in got.chunks(rows).zip(want.chunks(rows)).enumerate() {
                for (r, (&g, &w)) in g.iter().zip(w).enumerate() {
                    let m = magnitude[r * n + t];
                    prop_assert!(
                        rule.holds(g, w, m),
                        "{} {dtype} token {t} row {r}: {g} vs {w} (Σ|w x| {m})",
                        k.name()
                    );
                }
            }
        }
        Ok(())
    });
}
