//! The CPU-kernel conformance suite: every microkernel of a [`CpuKernels`] set (one ISA
//! level) against its scalar definition in [`crate::cpu`], on random data of the kinds that
//! break kernels and on shapes with odd sizes and tails, under one tolerance table for every
//! ISA ([`tolerance`]).
//!
//! A backend crate instantiates it once in its tests with
//! [`cpu_conformance_tests!`](crate::cpu_conformance_tests), naming the kernel sets its CPU
//! runs; what only one ISA has (detection, its own layouts) stays in that crate's tests. The
//! fuzz target and core's driver tests use the pieces: [`Rng`], [`Uneven`],
//! [`model_config`] and the `check` functions of each module; the device backends' kernel
//! tests use [`Rng`], [`model_config`] and [`rope_config`].
//!
//! [`CpuKernels`]: crate::cpu::CpuKernels

mod budget;
pub mod driver;
pub mod exp;
pub mod float;
pub mod fuzz;
pub mod gemm_codes;
pub mod kv_quant;
mod problems;
pub mod quantize;
mod rng;
mod suite;
pub mod tolerance;

pub use budget::Budget;
pub use driver::Uneven;
pub use problems::{Matrix, Problem, act_layout, blocks_of, model_config, rope_config};
pub use rng::Rng;
pub use suite::{Suite, runnable};
pub use tolerance::{
    Agreement, ELEMENTWISE, F16Dots, FLOAT_DOTS, SUMMATION, dot_rows_f16_bound, same_bits,
};

/// Instantiates the CPU-kernel conformance suite as `#[test]` functions for the
/// [`Suite`](crate::testing::conformance::Suite) the expression gives, in modules named
/// after the kernels they check: `driver`, `exp`, `float`, `fuzz`, `gemm_codes` (one test per
/// format: `gemm_codes::q4_k`, ...), `kv_quant` and `quantize`, each test named after the function of
/// [`testing::conformance`](crate::testing::conformance) it runs. `exp::exhaustive` (all
/// 2^32 floats) is ignored unless asked for.
///
/// Invoke it once in a backend's test module; the expression is evaluated there (once per
/// test), and failing cases are kept in `proptest-regressions/` beside that file:
///
/// ```text
/// fn levels() -> Vec<X86Kernels> { /* every level this CPU runs */ }
///
/// tern_core::cpu_conformance_tests!(Suite::new(levels(), Budget::NATIVE));
/// ```
#[macro_export]
macro_rules! cpu_conformance_tests {
    ($suite:expr) => {
        /// The suite these tests run; failing cases are kept beside this file.
        fn conformance_suite() -> $crate::testing::conformance::Suite<
            impl $crate::cpu::CpuKernels + ::core::clone::Clone,
        > {
            $suite.with_failures_beside(::core::file!())
        }

        $crate::cpu_conformance_tests! {
            @modules
            driver { matmul_matches_the_scalar_kernels }
            exp {
                bit_exact
                dense_around_thresholds
                strided_sweep_of_all_floats
                #[ignore = "all 2^32 floats: minutes on a few cores"]
                exhaustive
            }
            float {
                gemm_f32
                dot
                dot_rows
                axpy
                f16_dots_that_overflow_f16_are_exact_in_f32
            }
            fuzz { fuzz_quantize_then_gemm }
            kv_quant { dot_rows_q8_0 axpy_quantized fp8_every_code }
            gemm_codes {
                q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k
                extreme_codes_do_not_saturate
                every_format_at_its_largest_shapes
            }
            quantize { random_rows ties opposite_maxima special_values }
        }
    };
    (@modules $($module:ident { $($(#[$attr:meta])* $test:ident)* })*) => {
        $(
            mod $module {
                $(
                    #[test]
                    $(#[$attr])*
                    fn $test() {
                        $crate::testing::conformance::$module::$test(&super::conformance_suite());
                    }
                )*
            }
        )*
    };
}
