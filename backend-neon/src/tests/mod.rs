//! The CPU-kernel conformance suite of `tern_core::testing` at every level this CPU runs
//! (each forced in turn, and the best one with the fp16 kernels), the NEON dispatch, and
//! level detection.

#[cfg(target_arch = "aarch64")]
mod dispatch;

use std::vec::Vec;

use tern_core::cpu::CpuKernels;
use tern_core::testing::conformance::{Budget, F16Dots, Suite, runnable};

use crate::{Level, NeonKernels};

/// The SIMD levels this CPU runs, each without the fp16 kernels, and the best one with them
/// where the CPU has FEAT_FP16; a level it lacks is reported, never skipped silently.
pub(crate) fn levels() -> Vec<NeonKernels> {
    let mut all = runnable(
        [Level::Neon, Level::Dotprod, Level::I8mm],
        Level::name,
        |level| NeonKernels::with_level(level, false),
    );
    let best = NeonKernels::detect();
    if best.fp16() {
        all.push(best);
    } else {
        std::eprintln!("note: this CPU lacks FEAT_FP16; the f16 kernels are not tested");
    }
    all
}

// Emulated budgets: these tests usually run under qemu.
tern_core::cpu_conformance_tests!(Suite::new(levels(), Budget::EMULATED).with_f16_dots(|k| {
    if k.fp16() {
        F16Dots::InF16
    } else {
        F16Dots::InF32
    }
}));

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
