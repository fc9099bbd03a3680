//! The matmul and the embedding lookup against core's reference backend on every OpenCL
//! device of this machine (CI: PoCL and rusticl on llvmpipe, see `scripts/opencl.sh`), on
//! random shapes (row counts with tails past every group of 64, several tokens, offsets into
//! shared buffers) and random data with zero, tiny, huge and outlier blocks, bit for bit:
//! the kernels sum in the reference's order with its roundings. With `TERN_OPENCL_TESTS=1`
//! a missing device fails the tests instead of skipping them.

mod common;

use common::{
    assert_bits, device_matmul, f32_bytes, gpus, is_shape, proptest_config, quantized, read,
    reference_matmul, view,
};
use proptest::prelude::*;
use tern_backend_opencl::ops::{EMBED_FORMATS, MATMUL_FORMATS, ROW_GROUP};
use tern_backend_opencl::{Batch, ClError, DeviceWeight, Layout, View};
use tern_core::DType;
use tern_core::backend::reference;
use tern_core::numerics::activation::{ActivationFormat, round};
use tern_core::testing::conformance::Rng;

/// `rows x cols` random weights quantized to `dtype` by core.
fn weight_bytes(rng: &mut Rng, dtype: DType, rows: usize, cols: usize) -> Vec<u8> {
    quantized(dtype, &rng.weights(rows, cols))
}

fn matmul_case(dtype: DType, rows: usize, blocks: usize, tokens: usize, pad: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let cols = blocks * dtype.block_len();
    let data = weight_bytes(&mut rng, dtype, rows, cols);
    let w = view(dtype, rows, cols, &data);
    let x = rng.activations(tokens * cols);
    let want = reference_matmul(&w, &x);
    // The scratch holds x as the reference rounds it, where the format rounds it apart.
    let format = ActivationFormat::for_weights(dtype);
    let rounded = matches!(format, ActivationFormat::F16 | ActivationFormat::Q8_0).then(|| {
        let mut r = x.clone();
        round(format, &mut r);
        r
    });
    for gpu in gpus() {
        let dw = DeviceWeight::matrix(gpu, &w).unwrap();
        assert_eq!(
            (dw.layout, dw.dtype, dw.stored),
            (Layout::Interleaved, dtype, dtype)
        );
        let (got, scratch) = device_matmul(gpu, &dw, &x, pad);
        let what = format!("matmul {dtype:?} {rows} x {cols}, {tokens} tokens");
        assert_bits(&what, gpu, &got, &want);
        if let Some(rounded) = &rounded {
            assert_bits(&format!("{what}: rounded x"), gpu, &scratch, rounded);
        }
    }
}

/// One test per format, each on random row counts (tails below and past 64), block counts,
/// token counts and offsets.
macro_rules! matmul_tests {
    ($($name:ident: $dtype:expr, $max_blocks:expr;)*) => {
        proptest! {
            #![proptest_config(proptest_config(24))]
            $(
                #[test]
                fn $name(
                    rows in 1usize..140,
                    blocks in 1usize..=$max_blocks,
                    tokens in 1usize..4,
                    pad in 0usize..5,
                    seed in any::<u64>(),
                ) {
                    matmul_case($dtype, rows, blocks, tokens, pad, seed);
                }
            )*
        }
    };
}

matmul_tests! {
    matmul_f32_equals_the_reference: DType::F32, 150;
    matmul_f16_equals_the_reference: DType::F16, 150;
    matmul_q4_0_equals_the_reference: DType::Q4_0, 12;
    matmul_q4_1_equals_the_reference: DType::Q4_1, 12;
    matmul_q5_1_equals_the_reference: DType::Q5_1, 12;
    matmul_q8_0_equals_the_reference: DType::Q8_0, 12;
    matmul_q4_k_equals_the_reference: DType::Q4_K, 3;
    matmul_q5_k_equals_the_reference: DType::Q5_K, 3;
    matmul_q6_k_equals_the_reference: DType::Q6_K, 3;
}

#[test]
fn every_matmul_format_has_a_test() {
    assert_eq!(
        MATMUL_FORMATS,
        [
            DType::F32,
            DType::F16,
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_1,
            DType::Q8_0,
            DType::Q4_K,
            DType::Q5_K,
            DType::Q6_K
        ]
    );
}

/// Zero weights times negative activations: every product is -0, and the reference's sum,
/// from +0, is +0 (a compiler that drops the sign rule of zero addends gives -0).
#[test]
fn a_zero_row_gives_plus_zero_in_every_format() {
    for dtype in MATMUL_FORMATS {
        let (rows, cols) = (3, dtype.block_len().max(32) * 2);
        let data = quantized(dtype, &vec![0.0; rows * cols]);
        let w = view(dtype, rows, cols, &data);
        let x: Vec<f32> = (0..2 * cols)
            .map(|i| -1.0 - (i % 7) as f32 * 0.25)
            .collect();
        let mut want = vec![f32::NAN; 2 * rows];
        reference::matmul(&w, &x, &mut want);
        assert!(want.iter().all(|v| v.to_bits() == 0), "{dtype:?}: {want:?}");
        for gpu in gpus() {
            let dw = DeviceWeight::matrix(gpu, &w).unwrap();
            let (got, _) = device_matmul(gpu, &dw, &x, 1);
            assert_bits(&format!("matmul {dtype:?} of zeros"), gpu, &got, &want);
        }
    }
}

#[test]
fn matmul_over_a_thousand_row_groups_equals_the_reference() {
    matmul_case(DType::F32, 1000 * ROW_GROUP + 17, 3, 2, 1, 7);
}

proptest! {
    #![proptest_config(proptest_config(24))]

    /// A matrix dequantized at upload keeps its file format's activation rounding: F32
    /// weights from Q8_0 and F16 files multiply activations rounded as Q8_0 and F16.
    #[test]
    fn a_dequantized_matrix_rounds_activations_as_its_file_format(
        f16 in any::<bool>(),
        rows in 1usize..70,
        blocks in 1usize..6,
        tokens in 1usize..3,
        seed in any::<u64>(),
    ) {
        let (stored, format) = if f16 {
            (DType::F16, ActivationFormat::F16)
        } else {
            (DType::Q8_0, ActivationFormat::Q8_0)
        };
        let mut rng = Rng::new(seed);
        let cols = blocks * 32;
        let values = f32_bytes(&rng.weights(rows, cols));
        let w = view(DType::F32, rows, cols, &values);
        let x = rng.activations(tokens * cols);
        let mut rounded = x.clone();
        round(format, &mut rounded);
        let want = reference_matmul(&w, &rounded);
        for gpu in gpus() {
            let dw = DeviceWeight::dequantized_matrix(gpu, &w, stored).unwrap();
            assert_eq!((dw.dtype, dw.stored), (DType::F32, stored));
            let (got, scratch) = device_matmul(gpu, &dw, &x, 3);
            assert_bits(&format!("matmul F32 from {stored:?}"), gpu, &got, &want);
            assert_bits(&format!("x rounded as {stored:?}"), gpu, &scratch, &rounded);
        }
    }

    /// Rows of every table format, with one id past the table (zeros), into an output at an
    /// offset.
    #[test]
    fn embed_equals_the_reference(
        format in 0usize..EMBED_FORMATS.len(),
        rows in 1usize..12,
        blocks in 1usize..4,
        tokens in 1usize..6,
        seed in any::<u64>(),
    ) {
        let dtype = EMBED_FORMATS[format];
        let mut rng = Rng::new(seed);
        let cols = blocks * dtype.block_len() + if dtype.block_len() == 1 { 3 } else { 0 };
        let data = weight_bytes(&mut rng, dtype, rows, cols);
        let w = view(dtype, rows, cols, &data);
        let ids: Vec<u32> = (0..tokens).map(|_| rng.below(rows as u64) as u32).collect();
        let mut want = vec![0f32; tokens * cols];
        reference::embed(&w, &ids, &mut want);
        let mut ids_dev = ids.clone();
        ids_dev.push(rows as u32 + 5);
        want.extend(std::iter::repeat_n(0.0, cols));
        let id_bytes: Vec<u8> = ids_dev.iter().flat_map(|v| v.to_le_bytes()).collect();
        for gpu in gpus() {
            let dw = DeviceWeight::rows(gpu, &w).unwrap();
            assert_eq!(dw.layout, Layout::Rows);
            let tok = gpu.buffer_from(&id_bytes).unwrap();
            let out = gpu.buffer_from(&vec![0xffu8; 4 * want.len() + 8]).unwrap();
            let ov = out.view(1, want.len()).unwrap();
            let mut batch = Batch::new();
            gpu.embed(&mut batch, &dw, tok.all(), ov).unwrap();
            gpu.submit(&batch).unwrap();
            assert_bits(&format!("embed {dtype:?}"), gpu, &read(gpu, ov), &want);
        }
    }
}

#[test]
fn matmul_shapes_that_do_not_fit_are_errors_and_record_nothing() {
    for gpu in gpus() {
        let mut rng = Rng::new(3);
        let (rows, cols) = (5, 64);
        let data = weight_bytes(&mut rng, DType::Q8_0, rows, cols);
        let w = view(DType::Q8_0, rows, cols, &data);
        let m = DeviceWeight::matrix(gpu, &w).unwrap();
        let r = DeviceWeight::rows(gpu, &w).unwrap();
        let buf = gpu.buffer(4 * 1000).unwrap();
        let v = |offset, len| buf.view(offset, len).unwrap();
        let mut batch = Batch::new();
        // Two tokens: x 128, scratch 128, out 10.
        assert!(
            gpu.matmul(&mut batch, &m, v(0, 128), v(128, 128), v(256, 10))
                .is_ok()
        );
        assert_eq!(batch.dispatches(), 2);
        // No tokens: nothing to run.
        let mut batch = Batch::new();
        assert!(
            gpu.matmul(&mut batch, &m, v(0, 0), v(0, 0), v(0, 0))
                .is_ok()
        );
        assert_eq!(batch.dispatches(), 0);
        // x not whole rows, out too short or too long, scratch too short, weights in rows.
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &m,
            v(0, 100),
            v(128, 100),
            v(256, 10)
        )));
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &m,
            v(0, 128),
            v(128, 128),
            v(256, 9)
        )));
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &m,
            v(0, 128),
            v(128, 128),
            v(256, 15)
        )));
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &m,
            v(0, 128),
            v(128, 127),
            v(256, 10)
        )));
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &r,
            v(0, 128),
            v(128, 128),
            v(256, 10)
        )));
        // A view past the end of its buffer.
        let past = View {
            buf: &buf,
            offset: 990,
            len: 128,
        };
        assert!(is_shape(gpu.matmul(
            &mut batch,
            &m,
            past,
            v(128, 128),
            v(256, 10)
        )));
        assert_eq!(batch.dispatches(), 0);

        let bf16 = vec![0u8; 2 * rows * cols];
        let bw = DeviceWeight::matrix(gpu, &view(DType::BF16, rows, cols, &bf16)).unwrap();
        let e = gpu.matmul(&mut batch, &bw, v(0, 64), v(64, 64), v(128, 5));
        assert!(matches!(e, Err(ClError::Unsupported { .. })), "{e:?}");
        assert_eq!(batch.dispatches(), 0);
    }
}

#[test]
fn embed_shapes_that_do_not_fit_are_errors_and_record_nothing() {
    for gpu in gpus() {
        let data = f32_bytes(&[1.0; 4 * 6]);
        let w = view(DType::F32, 4, 6, &data);
        let table = DeviceWeight::rows(gpu, &w).unwrap();
        let buf = gpu.buffer(4 * 200).unwrap();
        let v = |offset, len| buf.view(offset, len).unwrap();
        let mut batch = Batch::new();
        assert!(gpu.embed(&mut batch, &table, v(0, 3), v(10, 18)).is_ok());
        assert_eq!(batch.dispatches(), 1);
        let mut batch = Batch::new();
        assert!(is_shape(gpu.embed(&mut batch, &table, v(0, 3), v(10, 17))));
        let m = DeviceWeight::matrix(gpu, &w).unwrap();
        assert!(is_shape(gpu.embed(&mut batch, &m, v(0, 3), v(10, 18))));
        let q4_1 = vec![0u8; 20 * 4];
        let t = DeviceWeight::rows(gpu, &view(DType::Q4_1, 4, 32, &q4_1)).unwrap();
        let e = gpu.embed(&mut batch, &t, v(0, 3), v(10, 96));
        assert!(matches!(e, Err(ClError::Unsupported { .. })), "{e:?}");
        assert_eq!(batch.dispatches(), 0);
    }
}

#[test]
fn weights_whose_bytes_are_not_their_shape_are_refused() {
    for gpu in gpus() {
        let data = vec![0u8; 34 * 3];
        for (rows, cols) in [(3, 33), (2, 32), (4, 32)] {
            let w = view(DType::Q8_0, rows, cols, &data);
            assert!(matches!(
                DeviceWeight::matrix(gpu, &w),
                Err(ClError::Shape { .. })
            ));
            assert!(matches!(
                DeviceWeight::rows(gpu, &w),
                Err(ClError::Shape { .. })
            ));
        }
        let w = DeviceWeight::rows(gpu, &view(DType::Q8_0, 3, 32, &data)).unwrap();
        assert_eq!(w.bytes(), data.len() as u64);
    }
}

#[test]
fn only_f32_weights_in_rows_are_f32_views() {
    for gpu in gpus() {
        let values = [1.5f32, -2.0, 3.25, 0.5, 8.0, -1.0];
        let data = f32_bytes(&values);
        let w = view(DType::F32, 2, 3, &data);
        let rows = DeviceWeight::rows(gpu, &w).unwrap();
        let v = rows.f32_view("test").unwrap();
        assert_eq!((v.offset, v.len), (0, 6));
        assert_eq!(read(gpu, v), values);
        let matrix = DeviceWeight::matrix(gpu, &w).unwrap();
        assert!(matches!(
            matrix.f32_view("test"),
            Err(ClError::Shape { .. })
        ));
        let f16 = vec![0u8; 12];
        let h = DeviceWeight::rows(gpu, &view(DType::F16, 2, 3, &f16)).unwrap();
        assert!(matches!(
            h.f32_view("test"),
            Err(ClError::Unsupported { .. })
        ));
    }
}
