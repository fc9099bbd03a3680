//! The OpenCL device layer and kernels on whatever OpenCL devices this machine has (CI: PoCL
//! and rusticl on llvmpipe, see `scripts/opencl.sh`). With `TERN_OPENCL_TESTS=1` a missing
//! device fails the tests instead of skipping them.

mod common;

use std::path::Path;

use common::devices;
use proptest::prelude::*;
use tern_backend_opencl::{Batch, ClError, Gpu, enumerate};
use tern_core::backend::reference;

#[test]
fn every_device_opens_and_says_what_it_is() {
    for index in devices() {
        let gpu = Gpu::open(None, index).unwrap();
        let info = gpu.info();
        eprintln!("{info}");
        assert_eq!(info.index, index);
        assert!(!info.name.is_empty() && info.c_version.starts_with("OpenCL C"));
        assert!(info.max_buffer > 0 && info.compute_units > 0);
    }
}

#[test]
fn a_library_that_is_not_there_is_named_in_the_error() {
    let e = enumerate(Some(Path::new("/no/such/libOpenCL.so"))).unwrap_err();
    assert!(matches!(e, ClError::NoLibrary { .. }), "{e:?}");
    assert!(e.to_string().contains("/no/such/libOpenCL.so"), "{e}");
}

#[test]
fn a_library_without_opencl_is_refused() {
    // libc is a shared library with no OpenCL entry points.
    let e = enumerate(Some(Path::new("libc.so.6"))).unwrap_err();
    assert!(e.to_string().contains("clGetPlatformIDs"), "{e}");
}

#[test]
fn a_device_index_past_the_last_is_an_error() {
    let n = devices().len();
    if n == 0 {
        return;
    }
    let e = Gpu::open(None, n + 3).err().unwrap();
    assert!(matches!(e, ClError::NoSuchDevice { index, count } if index == n + 3 && count == n));
}

#[test]
fn a_kernel_that_does_not_build_gives_the_first_line_of_the_log() {
    for index in devices() {
        let gpu = Gpu::open(None, index).unwrap();
        let e = gpu
            .program(
                "broken.cl",
                "__kernel void k(__global float *x) { x[0] = y; }",
                "",
            )
            .err()
            .unwrap();
        let ClError::Build { program, log } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*program, "broken.cl");
        assert!(!log.is_empty() && !log.contains('\n'), "{log}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `add` equals the reference bit for bit, on lengths with tails past every work-group.
    #[test]
    fn add_equals_the_reference(n in 1usize..700, seed in any::<u64>()) {
        for index in devices() {
            let gpu = Gpu::open(None, index).unwrap();
            let mut rng = tern_core::testing::conformance::Rng::new(seed);
            let x = rng.activations(n);
            let y = rng.activations(n);
            let (bx, by) = (gpu.buffer(4 * n).unwrap(), gpu.buffer(4 * n).unwrap());
            gpu.write_f32(&bx, &x).unwrap();
            gpu.write_f32(&by, &y).unwrap();
            let mut batch = Batch::new();
            gpu.add(&mut batch, bx.view(0, n).unwrap(), by.view(0, n).unwrap()).unwrap();
            gpu.submit(&batch).unwrap();
            let mut got = vec![0f32; n];
            gpu.read_f32(&bx, &mut got).unwrap();
            let mut want = x.clone();
            reference::add(&mut want, &y);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                prop_assert_eq!(g.to_bits(), w.to_bits(), "device {} element {} of {}", index, i, n);
            }
        }
    }
}

/// `x += y` on fresh buffers through `gpu`, checked: proves a program (from source or from
/// the cache) computes.
fn add_works(gpu: &Gpu) {
    let (x, y) = ([1.0f32, 2.0, 3.0], [0.5f32, 0.25, -3.0]);
    let (bx, by) = (gpu.buffer(12).unwrap(), gpu.buffer(12).unwrap());
    gpu.write_f32(&bx, &x).unwrap();
    gpu.write_f32(&by, &y).unwrap();
    let mut batch = Batch::new();
    gpu.add(&mut batch, bx.view(0, 3).unwrap(), by.view(0, 3).unwrap())
        .unwrap();
    gpu.submit(&batch).unwrap();
    let mut got = [0f32; 3];
    gpu.read_f32(&bx, &mut got).unwrap();
    assert_eq!(got, [1.5, 2.25, 0.0]);
}

#[test]
fn programs_come_from_the_cache_on_a_second_start_and_damage_means_a_rebuild() {
    for index in devices() {
        let dir = std::env::temp_dir().join(format!(
            "tern-program-cache-test-{}-{index}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let open = || {
            Gpu::open(None, index)
                .unwrap()
                .with_program_cache(Some(&dir))
        };

        let cold = open();
        add_works(&cold);
        assert_eq!(cold.program_builds(), (1, 0), "compiled on the first start");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");

        let warm = open();
        add_works(&warm);
        assert_eq!(warm.program_builds(), (0, 1), "loaded on the second start");

        // A damaged file is compiled again and rewritten.
        let mut bytes = std::fs::read(&files[0]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x5a;
        std::fs::write(&files[0], &bytes).unwrap();
        let repaired = open();
        add_works(&repaired);
        assert_eq!(repaired.program_builds(), (1, 0), "rebuilt after damage");
        let again = open();
        add_works(&again);
        assert_eq!(again.program_builds(), (0, 1), "the rewritten file is used");

        // Without a cache every start compiles.
        let plain = Gpu::open(None, index).unwrap();
        add_works(&plain);
        assert_eq!(plain.program_builds(), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_buffer_larger_than_the_device_allows_is_out_of_memory_not_a_fault() {
    for index in devices() {
        let gpu = Gpu::open(None, index).unwrap();
        let too_large = usize::try_from(gpu.info().max_buffer).unwrap() + 1;
        let e = gpu.buffer(too_large).err().unwrap();
        assert!(matches!(e, ClError::OutOfMemory { bytes, .. } if bytes == too_large));
        let line = e.to_string();
        assert!(
            line.contains("out of OpenCL device") && !line.contains('\n'),
            "{line}"
        );
        assert_eq!(gpu.allocations(), 0);
    }
}
