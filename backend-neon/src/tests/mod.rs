//! Property tests: every level this CPU runs (each forced in turn) against the scalar
//! definitions in `tern_core::cpu`.

mod driver;
mod exp;
mod float;
mod fuzz;
mod gemm_codes;
mod quantize;

use std::vec::Vec;

use tern_core::cpu::CpuKernels;
use tern_core::sample::Xoshiro256;

use crate::{Level, NeonKernels};

/// The SIMD levels this CPU runs, each without the fp16 kernels, and the best one with them
/// where the CPU has FEAT_FP16; a level it lacks is reported, never skipped silently.
pub(crate) fn levels() -> Vec<NeonKernels> {
    let mut all: Vec<NeonKernels> = [Level::Neon, Level::Dotprod, Level::I8mm]
        .into_iter()
        .filter_map(|level| {
            let k = NeonKernels::with_level(level, false);
            if k.is_none() {
                std::eprintln!(
                    "note: this CPU lacks {}; its kernels are not tested",
                    level.name()
                );
            }
            k
        })
        .collect();
    let best = NeonKernels::detect();
    if best.fp16() {
        all.push(best);
    } else {
        std::eprintln!("note: this CPU lacks FEAT_FP16; the f16 kernels are not tested");
    }
    all
}

/// Random test data.
pub(crate) struct Rng(Xoshiro256);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(Xoshiro256::seed_from_u64(seed))
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    /// Uniform in [-1, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        self.0.next_f64() as f32 * 2.0 - 1.0
    }

    /// `n` activations in blocks of 32 of a random kind: ordinary, all zero, sparse,
    /// large (up to 1e5), tiny (down to 1e-30), or with one outlier.
    pub(crate) fn activations(&mut self, n: usize) -> Vec<f32> {
        let mut x = Vec::with_capacity(n);
        while x.len() < n {
            let kind = self.below(6);
            for i in 0..32.min(n - x.len()) {
                let v = self.unit();
                x.push(match kind {
                    0 => v,
                    1 => 0.0,
                    2 if self.below(4) == 0 => v * 3.0,
                    2 => 0.0,
                    3 => v * 1e5,
                    4 => v * 1e-30,
                    _ if i == 7 => v * 1e3,
                    _ => v,
                });
            }
        }
        x
    }

    /// `rows * cols` weights: rows of random scale, some with outliers.
    pub(crate) fn weights(&mut self, rows: usize, cols: usize) -> Vec<f32> {
        let mut w = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let scale = [1.0, 0.01, 30.0, 0.0][self.below(4) as usize];
            for _ in 0..cols {
                let outlier = if self.below(50) == 0 { 8.0 } else { 1.0 };
                w.push(self.unit() * scale * outlier);
            }
        }
        w
    }
}

#[test]
fn detection_picks_the_best_available_level() {
    let best = NeonKernels::detect();
    for level in Level::ALL {
        let k = NeonKernels::with_level(level, false);
        assert_eq!(k.is_some(), level.is_available());
        if let Some(k) = k {
            assert!(level <= best.level());
            assert_eq!(k.name(), level.name());
        }
    }
    assert!(NeonKernels::with_level(Level::Scalar, false).is_some());
    assert!(best.tile_tokens() <= tern_core::cpu::MAX_TILE_TOKENS);
    #[cfg(target_arch = "aarch64")]
    assert!(
        best.level() >= Level::Neon,
        "every aarch64 Linux CPU has NEON"
    );
    std::eprintln!("detected {}", best.name());
}

/// Cross runs name the path each emulated CPU must take (`TERN_NEON_EXPECT`, e.g.
/// `neon-dotprod+fp16` for a Cortex-A76), so a detection that silently fell back to a lower
/// level fails here.
#[test]
fn detection_matches_the_expected_path() {
    match std::env::var("TERN_NEON_EXPECT") {
        Ok(want) => assert_eq!(NeonKernels::detect().name(), want),
        Err(_) => std::eprintln!("note: TERN_NEON_EXPECT is not set; the path is not checked"),
    }
}
