//! Run-time feature detection without `std`: `cpuid` says what the CPU implements, `xgetbv`
//! whether the operating system saves the wider registers on a context switch. Both must
//! agree before a level's instructions may run (a hypervisor or kernel may hide AVX-512 state
//! from a CPU that has the instructions).

/// What the CPU and OS together allow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// AVX2, FMA and F16C, with YMM state enabled.
    pub avx2: bool,
    /// AVX-512 F, BW, VL and VNNI, with opmask and ZMM state enabled (implies `avx2`).
    pub avx512vnni: bool,
}

#[cfg(target_arch = "x86_64")]
pub fn features() -> Features {
    use core::arch::x86_64::CpuidResult;

    #[allow(unused_unsafe)]
    fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
        // SAFETY: `cpuid` exists on every x86-64 CPU and only reads identification registers
        // (the intrinsic is `unsafe` in older compilers, safe in newer ones).
        unsafe { core::arch::x86_64::__cpuid_count(leaf, sub) }
    }

    let bit = |reg: u32, n: u32| reg >> n & 1 == 1;
    let max_leaf = cpuid(0, 0).eax;
    let l1 = cpuid(1, 0);
    if !bit(l1.ecx, 27) {
        // No OSXSAVE: the OS manages no extended state, and `xgetbv` would fault.
        return Features::default();
    }
    // SAFETY: OSXSAVE (checked above) means `xgetbv` is enabled, and XCR0 always exists.
    let xcr0 = unsafe { xcr0() };
    let os_ymm = xcr0 & 0b110 == 0b110; // SSE and AVX state
    let os_zmm = os_ymm && xcr0 & 0b1110_0000 == 0b1110_0000; // opmask, ZMM0-15 high, ZMM16-31
    let (b7, c7) = if max_leaf >= 7 {
        let l7 = cpuid(7, 0);
        (l7.ebx, l7.ecx)
    } else {
        (0, 0)
    };
    let avx = bit(l1.ecx, 28);
    let fma = bit(l1.ecx, 12);
    let f16c = bit(l1.ecx, 29);
    let avx2 = os_ymm && avx && fma && f16c && bit(b7, 5);
    let avx512 = bit(b7, 16) && bit(b7, 30) && bit(b7, 31) && bit(c7, 11);
    Features {
        avx2,
        avx512vnni: avx2 && os_zmm && avx512,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE, so `xgetbv` is enabled; register 0 always exists.
    unsafe { core::arch::x86_64::_xgetbv(0) }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn features() -> Features {
    Features::default()
}
