//! What a backend hands the suite (its kernel sets, budget and f16 arithmetic), and how one
//! property runs.

use std::vec::Vec;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{Budget, F16Dots};
use crate::cpu::CpuKernels;

/// The kernel sets one backend's tests check, and how much work each property may take.
pub struct Suite<K> {
    /// Every kernel set (one ISA level each) this CPU runs.
    pub levels: Vec<K>,
    /// Case counts and largest shapes.
    pub budget: Budget,
    /// How each kernel set computes `dot_rows_f16`.
    pub f16_dots: fn(&K) -> F16Dots,
    /// The source file beside which proptest keeps the failing cases it finds
    /// (`proptest-regressions/<path>.txt`) and replays them first; none: kept nowhere.
    pub source_file: Option<&'static str>,
}

impl<K: CpuKernels> Suite<K> {
    /// The suite for `levels`, every one computing in f32.
    pub fn new(levels: Vec<K>, budget: Budget) -> Suite<K> {
        Suite {
            levels,
            budget,
            f16_dots: |_| F16Dots::InF32,
            source_file: None,
        }
    }

    /// With `f16_dots` saying which kernel sets compute `dot_rows_f16` in f16.
    pub fn with_f16_dots(self, f16_dots: fn(&K) -> F16Dots) -> Suite<K> {
        Suite { f16_dots, ..self }
    }

    /// With failing cases kept beside `source_file` (a `file!()`).
    pub fn with_failures_beside(self, source_file: &'static str) -> Suite<K> {
        Suite {
            source_file: Some(source_file),
            ..self
        }
    }

    /// Runs `test` on `cases` random values of `strategy` (after the kept failures), as
    /// `proptest!` does, and panics with the smallest failing value it finds.
    pub fn run<S: Strategy>(
        &self,
        cases: u32,
        strategy: S,
        test: impl Fn(S::Value) -> Result<(), TestCaseError>,
    ) {
        let mut config = Config::with_cases(cases);
        config.source_file = self.source_file;
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, test) {
            panic!("{e}\n{runner}");
        }
    }
}

/// The kernel sets of `levels` this CPU runs (`make` gives `None` for the others), with a
/// note for each it lacks: a level is never skipped silently.
pub fn runnable<L: Copy, K>(
    levels: impl IntoIterator<Item = L>,
    name: impl Fn(L) -> &'static str,
    make: impl Fn(L) -> Option<K>,
) -> Vec<K> {
    levels
        .into_iter()
        .filter_map(|level| {
            let k = make(level);
            if k.is_none() {
                std::eprintln!(
                    "note: this CPU lacks {}; its kernels are not tested",
                    name(level)
                );
            }
            k
        })
        .collect()
}
