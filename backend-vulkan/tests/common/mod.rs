//! Test support: the shared device (or why the tests skip), random data, error measures.

#![allow(dead_code)]

use std::sync::OnceLock;

use tern_backend_vulkan::{Gpu, VkError};

/// The device every test in a binary shares, or `None` when there is none and
/// `TERN_VULKAN_TESTS` is unset (the caller returns early after a notice). With
/// `TERN_VULKAN_TESTS=1` a missing device fails the test.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| {
        let index = std::env::var("TERN_VULKAN_DEVICE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Gpu::open(index).map_err(|e: VkError| e.to_string())
    });
    match gpu {
        Ok(g) => Some(g),
        Err(e) if required() => panic!("TERN_VULKAN_TESTS is set but there is no device: {e}"),
        Err(e) => {
            eprintln!("skipping Vulkan test (set TERN_VULKAN_TESTS=1 to require a device): {e}");
            None
        }
    }
}

pub fn required() -> bool {
    std::env::var_os("TERN_VULKAN_TESTS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A small deterministic generator, so failures reproduce from the proptest seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }

    /// Uniform in [-scale, scale).
    pub fn f32(&mut self, scale: f32) -> f32 {
        (self.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
    }

    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(scale)).collect()
    }
}

/// Tracks the largest error seen, relative to each value's own error bound (0: bit for bit),
/// and prints it.
pub struct Worst {
    pub name: &'static str,
    pub abs: f32,
    pub ratio: f32,
}

impl Worst {
    pub fn new(name: &'static str) -> Worst {
        Worst {
            name,
            abs: 0.0,
            ratio: 0.0,
        }
    }

    /// Checks `got` against `want` element-wise with bound `tol(i)`.
    pub fn check(&mut self, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f32) {
        assert_eq!(got.len(), want.len(), "{}: lengths", self.name);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let err = (g - w).abs();
            let bound = tol(i);
            assert!(
                err <= bound || (g.is_nan() && w.is_nan()) || g == w,
                "{}: element {i}: got {g}, reference {w}, error {err} > bound {bound}",
                self.name
            );
            self.abs = self.abs.max(err);
            if bound > 0.0 {
                self.ratio = self.ratio.max(err / bound);
            }
        }
    }
}

impl Drop for Worst {
    fn drop(&mut self) {
        println!(
            "max error {}: {:e} absolute, {:.3} of the stated bound",
            self.name, self.abs, self.ratio
        );
    }
}
