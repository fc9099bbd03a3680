//! Test support of this crate's test binaries: which devices to test on (or why the tests
//! skip), the proptest settings, weights and buffers for the kernels, and model files.
//!
//! Every binary that names `mod common;` compiles all of it and uses a part.

#![allow(dead_code)]

use std::fmt::Display;
use std::sync::OnceLock;

use proptest::test_runner::Config;
use tern_backend_opencl::{Batch, ClError, Gpu, KvFormat, View, enumerate};
use tern_core::DType;
use tern_core::kv::KvType;
use tern_core::model::WeightView;
use tern_core::testing::whole_model::assert_same_bits;

/// Whether `TERN_OPENCL_TESTS` asks for a device: then a missing one fails the tests
/// instead of skipping them, so CI cannot pass by testing nothing.
pub fn required() -> bool {
    std::env::var_os("TERN_OPENCL_TESTS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// What a test does when there is no device: fails where one is required, else says why
/// it skips.
fn no_device(e: impl Display) {
    if required() {
        panic!("TERN_OPENCL_TESTS is set but there is no device: {e}");
    }
    eprintln!("skipping OpenCL test (set TERN_OPENCL_TESTS=1 to require a device): {e}");
}

/// The index of every device, or none (after [`no_device`]) where OpenCL is absent.
pub fn devices() -> Vec<usize> {
    match enumerate(None) {
        Ok(devices) => devices.iter().map(|d| d.index).collect(),
        Err(e) => {
            no_device(e);
            Vec::new()
        }
    }
}

/// Every device, opened once per test binary so that each program is built once per device;
/// none where OpenCL is absent and not required.
pub fn gpus() -> &'static [Gpu] {
    static GPUS: OnceLock<Vec<Gpu>> = OnceLock::new();
    GPUS.get_or_init(|| {
        devices()
            .into_iter()
            .map(|index| Gpu::open(None, index).expect("open the device"))
            .collect()
    })
}

/// A device of its own for a test that counts what it allocates and records: device
/// `TERN_OPENCL_DEVICE` (else 0), or `None` where there is none and none is required.
pub fn open_gpu() -> Option<Gpu> {
    let index = std::env::var("TERN_OPENCL_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Gpu::open(None, index).map_err(no_device).ok()
}

/// `cases` random cases a property, and no failure file: the seeds are among the inputs a
/// failure prints.
pub fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
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

/// `values` quantized to `dtype` by core.
pub fn quantized(dtype: DType, values: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; dtype.bytes_for(values.len()).expect("whole blocks")];
    tern_core::quant::quantize(dtype, values, &mut out).expect("quantize");
    out
}

/// A `rows x cols` weight of `dtype` over `data`.
pub fn view(dtype: DType, rows: usize, cols: usize, data: &[u8]) -> WeightView<'_> {
    WeightView {
        name: "w",
        dtype,
        rows,
        cols,
        data,
    }
}

/// The reference's `w x`, for `x` of whole rows of `w.cols`.
pub fn reference_matmul(w: &WeightView<'_>, x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len() / w.cols * w.rows];
    tern_core::backend::reference::matmul(w, x, &mut out);
    out
}

/// The little-endian bytes of `values`, as a device buffer holds them.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The f32 values `v` selects.
pub fn read(gpu: &Gpu, v: View<'_>) -> Vec<f32> {
    let mut bytes = vec![0u8; 4 * v.len];
    gpu.read(v.buf, 4 * v.offset, &mut bytes).unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// `w x` on the device, and the scratch the rounded `x` went to, with `x`, the scratch and
/// the output after `pad` words of one buffer (and `pad` words after them).
pub fn device_matmul(
    gpu: &Gpu,
    w: &tern_backend_opencl::DeviceWeight,
    x: &[f32],
    pad: usize,
) -> (Vec<f32>, Vec<f32>) {
    let out_len = x.len() / w.cols * w.rows;
    let mut all = vec![0f32; pad + 2 * x.len() + out_len + pad];
    all[pad..pad + x.len()].copy_from_slice(x);
    let buf = gpu.buffer_from(&f32_bytes(&all)).unwrap();
    let xv = buf.view(pad, x.len()).unwrap();
    let sv = buf.view(pad + x.len(), x.len()).unwrap();
    let ov = buf.view(pad + 2 * x.len(), out_len).unwrap();
    let mut batch = Batch::new();
    gpu.matmul(&mut batch, w, xv, sv, ov).unwrap();
    gpu.submit(&batch).unwrap();
    (read(gpu, ov), read(gpu, sv))
}

/// Panics unless `got` has `want`'s length and bits, naming the device.
#[track_caller]
pub fn assert_bits(what: &str, gpu: &Gpu, got: &[f32], want: &[f32]) {
    assert_same_bits(&format!("{what} on {}", gpu.info().name), got, want);
}

/// Whether `r` is the error of a shape that does not fit.
pub fn is_shape(r: Result<(), ClError>) -> bool {
    matches!(r, Err(ClError::Shape { .. }))
}
