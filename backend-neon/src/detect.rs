//! Which aarch64 extensions the kernels may use.
//!
//! With the `std` feature, `is_aarch64_feature_detected!` asks the operating system (Linux's
//! `AT_HWCAP`, which also says whether it saves the registers). Without it there is no
//! portable way for user code to ask (the ID registers trap at EL0 on some systems), so a
//! no_std build trusts the target features it was compiled with, and firmware that knows
//! more passes [`Features`] to `NeonKernels::from_features`.

/// The extensions the kernels use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Advanced SIMD (every aarch64 Linux CPU has it).
    pub neon: bool,
    /// FEAT_DotProd: `sdot`.
    pub dotprod: bool,
    /// FEAT_I8MM: `smmla`.
    pub i8mm: bool,
    /// FEAT_FP16: f16 arithmetic (`fmla` on `.8h`).
    pub fp16: bool,
}

impl Features {
    /// The features the crate was compiled for (`-C target-feature`, `-C target-cpu`).
    pub const fn compiled() -> Features {
        Features {
            neon: cfg!(all(target_arch = "aarch64", target_feature = "neon")),
            dotprod: cfg!(all(target_arch = "aarch64", target_feature = "dotprod")),
            i8mm: cfg!(all(target_arch = "aarch64", target_feature = "i8mm")),
            fp16: cfg!(all(target_arch = "aarch64", target_feature = "fp16")),
        }
    }

    /// What this CPU runs: detected at run time with `std`, else [`Features::compiled`].
    pub fn detect() -> Features {
        #[cfg(all(target_arch = "aarch64", feature = "std"))]
        {
            use std::arch::is_aarch64_feature_detected as has;
            Features {
                neon: has!("neon"),
                dotprod: has!("dotprod"),
                i8mm: has!("i8mm"),
                fp16: has!("fp16"),
            }
        }
        #[cfg(not(all(target_arch = "aarch64", feature = "std")))]
        Features::compiled()
    }
}
