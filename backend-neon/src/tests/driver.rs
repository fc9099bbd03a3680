//! The kernels inside the driver: `Cpu<NeonKernels>` against `Cpu<ScalarKernels>` on whole
//! matmuls of every format, with token counts that leave partial tiles and an uneven thread
//! split.

use std::vec;

use proptest::prelude::*;
use tern_core::DType;
use tern_core::backend::{Backend, Parallel};
use tern_core::cpu::{Cpu, CpuKernels, ScalarKernels};
use tern_core::model::{WeightRole, WeightView};
use tern_core::quant::{dequantize, quantize};

use super::{Rng, levels};

/// Three "threads" of unequal speed, run one after another.
struct Uneven;

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn matmul_matches_the_scalar_kernels(
        which in 0usize..DType::ALL.len(), rows in 1usize..50, blocks in 1usize..3,
        n in 1usize..20, seed in any::<u64>(),
    ) {
        let dtype = DType::ALL[which];
        let cols = blocks * dtype.block_len().max(32);
        let mut rng = Rng::new(seed);
        let values = rng.weights(rows, cols);
        let mut bytes = vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, &values, &mut bytes).unwrap();
        let view = WeightView { name: "w", dtype, rows, cols, data: &bytes };
        let x: std::vec::Vec<f32> = (0..n * cols).map(|_| rng.unit()).collect();
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
        for k in levels() {
            let cpu = Cpu::new(k);
            let w = cpu.prepare(view, WeightRole::Matrix).unwrap();
            let mut got = vec![f32::NAN; n * rows];
            cpu.matmul(&w, &x, &mut got, &mut scratch, &Uneven);
            for (t, (g, w)) in got.chunks(rows).zip(want.chunks(rows)).enumerate() {
                for (r, (g, w)) in g.iter().zip(w).enumerate() {
                    let m = magnitude[r * n + t];
                    prop_assert!((g - w).abs() <= 1e-5 * m,
                        "{} {dtype} token {t} row {r}: {g} vs {w} (Σ|w x| {m})",
                        cpu.kernels.name());
                }
            }
        }
    }
}
