//! The kernels inside the driver: `Cpu<X86Kernels>` against `Cpu<ScalarKernels>` on whole
//! matmuls of every format, with token counts that leave partial tiles and an uneven thread
//! split.

use std::vec;

use proptest::prelude::*;
use tern_core::DType;
use tern_core::backend::{Backend, Parallel};
use tern_core::cpu::{Cpu, CpuKernels, ScalarKernels};
use tern_core::model::{WeightRole, WeightView};
use tern_core::quant::quantize;

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
                let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
                for (r, (g, w)) in g.iter().zip(w).enumerate() {
                    prop_assert!((g - w).abs() <= 1e-5 * norm,
                        "{} {dtype} token {t} row {r}: {g} vs {w}", cpu.kernels.name());
                }
            }
        }
    }
}
