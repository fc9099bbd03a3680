//! Test support of this crate's test binaries: the device (or why the tests skip), model
//! files, random data, error measures.

#![allow(dead_code)]

use std::fmt::Display;
use std::sync::OnceLock;

use tern_backend_vulkan::{Gpu, KvFormat, VkError};
use tern_core::kv::KvType;

/// The device every test in a binary shares, or `None` when there is none and
/// `TERN_VULKAN_TESTS` is unset (the caller returns early after a notice). With
/// `TERN_VULKAN_TESTS=1` a missing device fails the test.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| Gpu::open(device_index()).map_err(|e: VkError| e.to_string()));
    gpu.as_ref().map_err(no_device).ok()
}

/// A device of its own for a test that counts what it allocates and records, or `None` as
/// for [`gpu`].
pub fn open_gpu() -> Option<Gpu> {
    Gpu::open(device_index()).map_err(no_device).ok()
}

/// The device the tests use: `TERN_VULKAN_DEVICE`, else 0.
fn device_index() -> usize {
    std::env::var("TERN_VULKAN_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What a test does when there is no device: fails where one is required, else says why
/// it skips.
fn no_device(e: impl Display) {
    if required() {
        panic!("TERN_VULKAN_TESTS is set but there is no device: {e}");
    }
    eprintln!("skipping Vulkan test (set TERN_VULKAN_TESTS=1 to require a device): {e}");
}

/// Whether `TERN_VULKAN_TESTS` asks for a device: then a missing one fails the tests
/// instead of skipping them, so CI cannot pass by testing nothing.
pub fn required() -> bool {
    std::env::var_os("TERN_VULKAN_TESTS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The bytes of a file of this repository (models, fixtures), by its path from the root.
pub fn repo_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The element type of core's cache that holds what a device cache of `format` holds.
pub fn kv_type(format: KvFormat) -> KvType {
    match format {
        KvFormat::F32 => KvType::F32,
        KvFormat::F16 => KvType::F16,
    }
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
