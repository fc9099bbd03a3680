//! The CPU-kernel conformance suite of `tern_core::testing` at every level this CPU runs
//! (AVX2 always, also AVX-512 VNNI on machines that have it), and level detection.

use std::vec::Vec;

use tern_core::cpu::CpuKernels;
use tern_core::testing::conformance::{Budget, Suite, runnable};

use crate::{Level, X86Kernels};

/// The SIMD levels this CPU runs; a level it lacks is reported, never skipped silently.
fn levels() -> Vec<X86Kernels> {
    runnable(
        [Level::Avx2, Level::Avx512Vnni],
        Level::name,
        X86Kernels::with_level,
    )
}

tern_core::cpu_conformance_tests!(Suite::new(levels(), Budget::NATIVE));

#[test]
fn detection_picks_the_best_available_level() {
    let best = X86Kernels::detect();
    for level in Level::ALL {
        let k = X86Kernels::with_level(level);
        assert_eq!(k.is_some(), level.is_available());
        if level.is_available() {
            assert!(level <= best.level());
            assert_eq!(k.unwrap().name(), level.name());
        }
    }
    assert!(X86Kernels::with_level(Level::Scalar).is_some());
    assert!(best.tile_tokens() <= tern_core::cpu::MAX_TILE_TOKENS);
    std::eprintln!("detected {}", best.name());
}
