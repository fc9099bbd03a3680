//! The fast matmuls ([`Precision::Fast`]) against core's reference backend on every OpenCL
//! device of this machine (CI: PoCL and rusticl on llvmpipe), on random shapes: row counts
//! with tails past the GEMV's 16 rows and the layout's tiles of 64, rows of one to twelve
//! blocks (tails past the GEMV's four slices and the GEMM's stages of two), one token (the
//! GEMV) and two to nine (the GEMM, a tile of eight and a tail), offsets into shared buffers,
//! and random data with zero, tiny, huge and outlier blocks.
//!
//! The rule is the bound `src/ops/planar.rs` derives: per output, with `n` columns in `nb`
//! blocks and `M = Σ |w_i x_i| + Σ |m s|` (Q4_1's minimums), `|fast - reference| <=
//! γ(n + 3 nb) M + (n + 3 nb) 2^-150`, `γ(k) = k u / (1 - k u)`, `u = 2^-24`; where the
//! reference is not finite, neither is the fast result. With `TERN_OPENCL_TESTS=1` a missing
//! device fails the tests instead of skipping them.

mod common;

use common::{
    assert_bits, device_matmul, f32_bytes, gpus, is_shape, proptest_config, quantized,
    reference_matmul, view,
};
use proptest::prelude::*;
use tern_backend_opencl::ops::{FAST_FORMATS, MATMUL_FORMATS};
use tern_backend_opencl::{Batch, DeviceWeight, Gpu, Layout, Precision, View};
use tern_core::DType;
use tern_core::model::WeightView;
use tern_core::numerics::activation::{ActivationFormat, q8_1_sum, round};
use tern_core::testing::conformance::Rng;

/// A fast weight, checked to be in the planar layout.
fn fast_weight(gpu: &Gpu, w: &WeightView<'_>) -> DeviceWeight {
    let dw = DeviceWeight::matrix_in(gpu, w, Precision::Fast).unwrap();
    assert_eq!(
        (dw.layout, dw.precision, dw.dtype, dw.stored),
        (Layout::Planar, Precision::Fast, w.dtype, w.dtype)
    );
    assert_eq!(
        dw.bytes(),
        w.data.len() as u64,
        "the planar layout adds no bytes"
    );
    dw
}

/// Per block of `w`'s row `r`: the weights without the minimum (`d q_i`) and the minimum
/// (zero but for Q4_1), as the reference's dot products split them.
fn row_terms(w: &WeightView<'_>, r: usize) -> Vec<([f32; 32], f32)> {
    let bb = w.dtype.block_bytes();
    w.row(r)
        .unwrap()
        .chunks_exact(bb)
        .map(|block| {
            let mut b = block.to_vec();
            let mut m = 0.0;
            if w.dtype == DType::Q4_1 {
                m = half::f16::from_le_bytes([b[2], b[3]]).to_f32();
                b[2..4].fill(0);
            }
            let mut scaled = [0f32; 32];
            tern_core::quant::dequantize(w.dtype, &b, &mut scaled).unwrap();
            (scaled, m)
        })
        .collect()
}

/// Q8_1's block sum of `x` as the reference computes it.
fn q8_1_block_sum(x: &[f32]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let sum: f32 = x.iter().map(|v| (v * id).round_ties_even()).sum();
    q8_1_sum(amax / 127.0 * sum)
}

/// The bound of `ops/planar.rs` for a row of `cols` columns whose terms' magnitudes sum to
/// `magnitude`.
fn bound(cols: usize, magnitude: f64) -> f64 {
    let k = (cols + 3 * cols / 32) as f64;
    let u = 2f64.powi(-24);
    k * u / (1.0 - k * u) * magnitude + k * 2f64.powi(-150)
}

/// Checks the fast result `got` of `w` times `x` (rows of `w.cols`) against the reference's
/// `want`.
fn check_bound(what: &str, gpu: &Gpu, w: &WeightView<'_>, x: &[f32], got: &[f32], want: &[f32]) {
    let mut rounded = x.to_vec();
    round(ActivationFormat::Q8_0, &mut rounded);
    let rows: Vec<_> = (0..w.rows).map(|r| row_terms(w, r)).collect();
    for (t, (xt, rt)) in x
        .chunks_exact(w.cols)
        .zip(rounded.chunks_exact(w.cols))
        .enumerate()
    {
        for (r, terms) in rows.iter().enumerate() {
            let (g, e) = (got[t * w.rows + r], want[t * w.rows + r]);
            let at = format!("{what} on {}: token {t} row {r}", gpu.info().name);
            if !e.is_finite() {
                assert!(!g.is_finite(), "{at}: {g}, the reference {e}");
                assert!(!e.is_nan() || g.is_nan(), "{at}: {g}, the reference {e}");
                continue;
            }
            let mut magnitude = 0f64;
            for (b, (scaled, m)) in terms.iter().enumerate() {
                let xs = &rt[b * 32..][..32];
                let products: f64 = scaled
                    .iter()
                    .zip(xs)
                    .map(|(w, x)| (f64::from(*w) * f64::from(*x)).abs())
                    .sum();
                let s = q8_1_block_sum(&xt[b * 32..][..32]);
                magnitude += products + (f64::from(*m) * f64::from(s)).abs();
            }
            let limit = bound(w.cols, magnitude);
            let diff = (f64::from(g) - f64::from(e)).abs();
            assert!(
                diff <= limit,
                "{at}: {g}, the reference {e}: {diff:e} past the bound {limit:e}"
            );
        }
    }
}

fn fast_case(dtype: DType, rows: usize, blocks: usize, tokens: usize, pad: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let cols = blocks * 32;
    let data = quantized(dtype, &rng.weights(rows, cols));
    let w = view(dtype, rows, cols, &data);
    let x = rng.activations(tokens * cols);
    let want = reference_matmul(&w, &x);
    for gpu in gpus() {
        let dw = fast_weight(gpu, &w);
        let (got, _) = device_matmul(gpu, &dw, &x, pad);
        let what = format!("fast matmul {dtype:?} {rows} x {cols}, {tokens} tokens");
        check_bound(&what, gpu, &w, &x, &got, &want);
    }
}

macro_rules! fast_tests {
    ($($name:ident: $dtype:expr;)*) => {
        proptest! {
            #![proptest_config(proptest_config(32))]
            $(
                #[test]
                fn $name(
                    rows in 1usize..140,
                    blocks in 1usize..=12,
                    tokens in 1usize..=9,
                    pad in 0usize..5,
                    seed in any::<u64>(),
                ) {
                    fast_case($dtype, rows, blocks, tokens, pad, seed);
                }
            )*
        }
    };
}

fast_tests! {
    fast_q4_0_is_within_the_bound_of_the_reference: DType::Q4_0;
    fast_q4_1_is_within_the_bound_of_the_reference: DType::Q4_1;
    fast_q8_0_is_within_the_bound_of_the_reference: DType::Q8_0;
}

#[test]
fn every_fast_format_has_a_test() {
    assert_eq!(FAST_FORMATS, [DType::Q4_0, DType::Q4_1, DType::Q8_0]);
}

/// Many blocks per row (every GEMV slice loops) and many tiles, one token and a prefill of
/// more than one token tile.
#[test]
fn large_fast_matmuls_are_within_the_bound() {
    for dtype in FAST_FORMATS {
        for tokens in [1, 19] {
            fast_case(dtype, 3 * 64 + 21, 37, tokens, 1, 11);
        }
    }
}

/// A block of `dtype` whose weights are 1 at element `pick` and 0 elsewhere, exactly: scale
/// 1, no minimum, codes 1 and 0 (Q4_0: 9 and 8).
fn picking_block(dtype: DType, pick: usize) -> Vec<u8> {
    let one = half::f16::ONE.to_le_bytes();
    let (mut block, codes_at, zero) = match dtype {
        DType::Q4_0 => (vec![0x88u8; 18], 2, 8u8),
        DType::Q4_1 => (vec![0u8; 20], 4, 0),
        DType::Q8_0 => (vec![0u8; 34], 2, 0),
        _ => unreachable!("{dtype:?} is no fast format"),
    };
    block[..2].copy_from_slice(&one);
    if dtype == DType::Q8_0 {
        block[codes_at + pick] = 1;
    } else {
        let (byte, shift) = (codes_at + pick % 16, 4 * (pick / 16));
        block[byte] = block[byte] & !(15 << shift) | (zero + 1) << shift;
    }
    block
}

/// Weights that pick one element each give back the activations as the reference rounds
/// them (equal values; a zero's sign aside): the rounding is the reference's, and every row
/// and block lands where it belongs.
#[test]
fn picking_weights_give_back_the_reference_rounding() {
    let (blocks, tokens) = (5, 9);
    let cols = blocks * 32;
    let rows = cols;
    let mut rng = Rng::new(5);
    let x = rng.activations(tokens * cols);
    let mut rounded = x.clone();
    round(ActivationFormat::Q8_0, &mut rounded);
    for dtype in FAST_FORMATS {
        // Row r picks column (7 r) mod cols: every column once, rows in shuffled order.
        let pick = |r: usize| (7 * r) % cols;
        let data: Vec<u8> = (0..rows)
            .flat_map(|r| (0..blocks).map(move |b| (r, b)))
            .flat_map(|(r, b)| {
                let p = pick(r);
                if p / 32 == b {
                    picking_block(dtype, p % 32)
                } else {
                    picking_block(dtype, 0).iter().map(|_| 0).collect()
                }
            })
            .collect();
        let w = view(dtype, rows, cols, &data);
        let mut dense = vec![0f32; rows * cols];
        tern_core::quant::dequantize(dtype, &data, &mut dense).unwrap();
        for (r, row) in dense.chunks_exact(cols).enumerate() {
            assert!(
                row.iter()
                    .enumerate()
                    .all(|(c, &v)| v == f32::from(c == pick(r)))
            );
        }
        for gpu in gpus() {
            let dw = fast_weight(gpu, &w);
            for n in [1, tokens] {
                let (got, _) = device_matmul(gpu, &dw, &x[..n * cols], 2);
                for t in 0..n {
                    for r in 0..rows {
                        let want = rounded[t * cols + pick(r)];
                        let g = got[t * rows + r];
                        assert!(
                            g == want,
                            "{dtype:?} on {}, {n} tokens: token {t} row {r}: {g} for {want}",
                            gpu.info().name
                        );
                    }
                }
            }
        }
    }
}

/// A NaN among a token's activations makes every output of that token NaN, as in the
/// reference, and leaves the other tokens alone.
#[test]
fn a_nan_activation_gives_nan_outputs_for_its_token_only() {
    let (rows, cols, tokens) = (20, 96, 3);
    let mut rng = Rng::new(9);
    let mut x = rng.activations(tokens * cols);
    x[cols + 40] = f32::NAN;
    for dtype in FAST_FORMATS {
        let data = quantized(dtype, &rng.weights(rows, cols));
        let w = view(dtype, rows, cols, &data);
        let want = reference_matmul(&w, &x);
        assert!(want[rows..2 * rows].iter().all(|v| v.is_nan()));
        for gpu in gpus() {
            let dw = fast_weight(gpu, &w);
            for n in [1, 2, 3] {
                let (got, _) = device_matmul(gpu, &dw, &x[..n * cols], 0);
                check_bound(
                    &format!("{dtype:?} with a NaN"),
                    gpu,
                    &w,
                    &x[..n * cols],
                    &got,
                    &want[..n * rows],
                );
            }
        }
    }
}

/// Formats without fast kernels keep the reference's layout, kernels and bits when Fast is
/// asked.
#[test]
fn other_formats_asked_for_fast_stay_on_the_reference() {
    for dtype in MATMUL_FORMATS
        .into_iter()
        .filter(|d| !FAST_FORMATS.contains(d))
    {
        let mut rng = Rng::new(13);
        let (rows, cols, tokens) = (70, 2 * dtype.block_len().max(32), 2);
        let data = quantized(dtype, &rng.weights(rows, cols));
        let w = view(dtype, rows, cols, &data);
        let x = rng.activations(tokens * cols);
        let want = reference_matmul(&w, &x);
        for gpu in gpus() {
            let dw = DeviceWeight::matrix_in(gpu, &w, Precision::Fast).unwrap();
            assert_eq!(
                (dw.layout, dw.precision),
                (Layout::Interleaved, Precision::Reference),
                "{dtype:?}"
            );
            let (got, _) = device_matmul(gpu, &dw, &x, 1);
            assert_bits(&format!("{dtype:?}"), gpu, &got, &want);
        }
    }
}

#[test]
fn the_reference_precision_keeps_the_interleaved_layout() {
    for gpu in gpus() {
        let data = quantized(DType::Q4_0, &[0.5; 64]);
        let w = view(DType::Q4_0, 2, 32, &data);
        for dw in [
            DeviceWeight::matrix(gpu, &w).unwrap(),
            DeviceWeight::matrix_in(gpu, &w, Precision::Reference).unwrap(),
        ] {
            assert_eq!(
                (dw.layout, dw.precision),
                (Layout::Interleaved, Precision::Reference)
            );
        }
    }
    assert_eq!(Precision::default(), Precision::Reference);
}

#[test]
fn fast_matmul_shapes_that_do_not_fit_are_errors_and_record_nothing() {
    for gpu in gpus() {
        let mut rng = Rng::new(3);
        let (rows, cols) = (5, 64);
        let data = quantized(DType::Q8_0, &rng.weights(rows, cols));
        let m = fast_weight(gpu, &view(DType::Q8_0, rows, cols, &data));
        let buf = gpu.buffer(4 * 1000).unwrap();
        let v = |offset, len| buf.view(offset, len).unwrap();
        // One token and two: the activations' rounding, then the GEMV or the GEMM.
        for (x, out) in [(64, 5), (128, 10)] {
            let mut batch = Batch::new();
            assert!(
                gpu.matmul(&mut batch, &m, v(0, x), v(128, x), v(256, out))
                    .is_ok()
            );
            assert_eq!(batch.dispatches(), 2);
        }
        let mut batch = Batch::new();
        assert!(
            gpu.matmul(&mut batch, &m, v(0, 0), v(0, 0), v(0, 0))
                .is_ok()
        );
        // x not whole rows, out too short or too long, scratch too short, a view past the
        // end of its buffer.
        let past = View {
            buf: &buf,
            offset: 990,
            len: 128,
        };
        for (x, s, o) in [
            (v(0, 100), v(128, 100), v(256, 10)),
            (v(0, 128), v(128, 128), v(256, 9)),
            (v(0, 128), v(128, 128), v(256, 15)),
            (v(0, 128), v(128, 127), v(256, 10)),
            (past, v(128, 128), v(256, 10)),
        ] {
            assert!(is_shape(gpu.matmul(&mut batch, &m, x, s, o)));
        }
        assert_eq!(batch.dispatches(), 0);
    }
}

/// Milliseconds of one matmul of a 2048 x 2048 matrix, Reference against Fast, for one token
/// and for 64 (no assertion: CPU implementations of OpenCL say little about a phone GPU).
/// Run with `cargo test --release -p tern-backend-opencl --test fast -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn matmul_timings() {
    use std::time::Instant;
    let (rows, cols) = (2048, 2048);
    let mut rng = Rng::new(1);
    let values = rng.weights(rows, cols);
    for dtype in FAST_FORMATS {
        let data = quantized(dtype, &values);
        let w = view(dtype, rows, cols, &data);
        for gpu in gpus() {
            for precision in [Precision::Reference, Precision::Fast] {
                let dw = DeviceWeight::matrix_in(gpu, &w, precision).unwrap();
                for tokens in [1, 64] {
                    let x = rng.activations(tokens * cols);
                    let buf = gpu.buffer(4 * (2 * x.len() + tokens * rows)).unwrap();
                    gpu.write(&buf, 0, &f32_bytes(&x)).unwrap();
                    let xv = buf.view(0, x.len()).unwrap();
                    let sv = buf.view(x.len(), x.len()).unwrap();
                    let ov = buf.view(2 * x.len(), tokens * rows).unwrap();
                    let mut batch = Batch::new();
                    gpu.matmul(&mut batch, &dw, xv, sv, ov).unwrap();
                    let runs = 8;
                    gpu.submit(&batch).unwrap();
                    gpu.finish().unwrap();
                    let start = Instant::now();
                    for _ in 0..runs {
                        gpu.submit(&batch).unwrap();
                    }
                    gpu.finish().unwrap();
                    let ms = start.elapsed().as_secs_f64() * 1e3 / runs as f64;
                    eprintln!(
                        "{dtype:?} {rows} x {cols}, {tokens} tokens, {precision:?} on {}: {ms:.2} ms",
                        gpu.info().name
                    );
                }
            }
        }
    }
}
