//! The device layer: enumeration, the error when there is no driver, and typed errors for
//! bad input instead of panics.

mod common;

use std::process::Command;

use common::gpu;
use tern_backend_vulkan::{DeviceWeight, VkError, enumerate};
use tern_core::DType;
use tern_core::model::WeightView;

#[test]
fn enumerate_lists_the_device_the_tests_use() {
    let Some(g) = gpu() else { return };
    let devices = enumerate().expect("a device opened, so enumeration works");
    let info = &devices[g.info().index];
    assert_eq!(info, g.info());
    assert!(info.has_compute_queue);
    println!("{info:#?}");
}

/// Set in the child process that runs [`no_device_child`] with no usable driver.
const CHILD: &str = "TERN_VULKAN_NO_DEVICE_CHILD";

#[test]
fn enumeration_without_a_driver_reports_no_device() {
    // The loader reads its driver list once per process, so the check runs in a child
    // process of this test binary whose environment points the loader at no driver.
    let missing = std::env::temp_dir().join("tern-no-such-vulkan-icd.json");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_device_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("VK_ICD_FILENAMES", &missing)
        .env("VK_DRIVER_FILES", &missing)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_device_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match enumerate() {
        Err(VkError::NoDevice(why)) => println!("no device, as expected: {why}"),
        Err(VkError::NoLoader(why)) => println!("no loader library at all: {why}"),
        other => panic!("expected the no-device error, got {other:?}"),
    }
    match tern_backend_vulkan::Gpu::open(0) {
        Err(VkError::NoDevice(_) | VkError::NoLoader(_)) => {}
        Err(e) => panic!("expected the no-device error, got {e}"),
        Ok(_) => panic!("a device opened with no driver"),
    }
}

#[test]
fn device_index_past_the_end_is_an_error() {
    if gpu().is_none() {
        return;
    }
    let count = enumerate().unwrap().len();
    match tern_backend_vulkan::Gpu::open(count) {
        Err(VkError::NoSuchDevice { index, count: c }) => assert_eq!((index, c), (count, count)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a device past the end"),
    }
}

#[test]
fn bad_spirv_is_an_error() {
    let Some(g) = gpu() else { return };
    assert!(matches!(
        g.try_kernel("junk", &[1, 2, 3, 4, 5, 6], 1),
        Err(VkError::BadSpirv("junk"))
    ));
    assert!(matches!(
        g.try_kernel("junk", &[0u8; 40], 1),
        Err(VkError::BadSpirv("junk"))
    ));
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let Some(g) = gpu() else { return };
    let data = vec![0u8; 2 * 18];
    let w = WeightView {
        name: "w",
        dtype: DType::Q4_0,
        rows: 2,
        cols: 32,
        data: &data,
    };
    let dw = DeviceWeight::matrix(g, &w).unwrap();
    let short = WeightView {
        data: &data[..20],
        ..w
    };
    assert!(matches!(
        DeviceWeight::matrix(g, &short),
        Err(VkError::Shape { .. })
    ));
    let buf = g.buffer(4 * 100).unwrap();
    assert!(buf.view(90, 20).is_err());
    let mut batch = g.batch().unwrap();
    let x = buf.view(0, 32).unwrap();
    let s = buf.view(32, 32).unwrap();
    let wrong_out = buf.view(64, 3).unwrap();
    let err = g.matmul(&mut batch, &dw, x, s, wrong_out).unwrap_err();
    assert!(err.to_string().contains("out holds 3"), "{err}");
    let odd_x = buf.view(0, 31).unwrap();
    assert!(g.matmul(&mut batch, &dw, odd_x, s, wrong_out).is_err());
    // A table in the file's layout is not a matmul's, nor a matrix an embedding table.
    let table = DeviceWeight::rows(g, &w).unwrap();
    let out = buf.view(64, 2).unwrap();
    let err = g.matmul(&mut batch, &table, x, s, out).unwrap_err();
    assert!(err.to_string().contains("layout"), "{err}");
    let ids = buf.view(0, 1).unwrap();
    let err = g.embed(&mut batch, &dw, ids, x).unwrap_err();
    assert!(err.to_string().contains("layout"), "{err}");
    let mut bytes = [0u8; 8];
    assert!(buf.read(400 - 4, &mut bytes).is_err());
    assert_eq!(batch.dispatches(), 0);
}

#[test]
fn batches_replay_and_count() {
    let Some(shared) = gpu() else { return };
    // A device of its own, so that tests running beside it do not move its counters.
    let g = &tern_backend_vulkan::Gpu::open(shared.info().index).unwrap();
    let buf = g.buffer_f32(&[1.0, 2.0, 3.0]).unwrap();
    let one = g.buffer_f32(&[1.0, 1.0, 1.0]).unwrap();
    let (before, allocations) = (g.recordings(), g.allocations());
    assert_eq!(allocations, 2);
    let mut batch = g.batch().unwrap();
    g.add(&mut batch, buf.all(), one.all()).unwrap();
    for _ in 0..3 {
        g.run(&mut batch).unwrap();
    }
    assert_eq!(buf.read_f32(0, 3).unwrap(), [4.0, 5.0, 6.0]);
    assert_eq!(g.recordings() - before, 1, "replays record nothing");
    // Recording after submission is refused.
    assert!(g.add(&mut batch, buf.all(), one.all()).is_err());
}

#[test]
fn staged_buffers_round_trip_and_feed_kernels() {
    let Some(g) = gpu() else { return };
    let mut buf = g.buffer_unmapped(4 * 5).unwrap();
    assert!(!buf.is_mapped());
    buf.write_f32(1, &[1.5, -2.0, 3.25]).unwrap();
    assert_eq!(buf.read_f32(0, 5).unwrap(), [0.0, 1.5, -2.0, 3.25, 0.0]);
    let y = g.buffer_f32(&[1.0, 1.0, 1.0]).unwrap();
    let mut batch = g.batch().unwrap();
    g.add(&mut batch, buf.view(1, 3).unwrap(), y.all()).unwrap();
    g.run(&mut batch).unwrap();
    assert_eq!(buf.read_f32(1, 3).unwrap(), [2.5, -1.0, 4.25]);
}
