//! Every kernel against core's reference backend on random shapes (odd sizes, tails, offsets
//! into shared buffers) and random data, bit for bit: the kernels compute in the reference's
//! own order and roundings (which are llama.cpp's), so every result must equal the
//! reference's exactly. How the shaders manage that on any driver: each sum runs in the
//! reference's order (one thread per dot product, lane order in attention), every fused
//! multiply-add of the reference is `fma_rn` (exact from Dekker's and Knuth's error-free
//! transformations, since drivers need not fuse `fma`: lavapipe does not), divisions and
//! square roots are corrected to IEEE rounding, f64 sums are float pairs, and `exp` is ggml's
//! polynomial. A pair sum can round differently from f64 only where the exact value lies
//! within 2^-48 of a midpoint between two floats, which random data does not hit.

mod common;

use std::cell::RefCell;

use common::{Rng, Worst, gpu, kv_type};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tern_backend_vulkan::ops::EMBED_FORMATS;
use tern_backend_vulkan::{
    AttentionShape, DeviceKv, DeviceWeight, KvFormat, Precision, rope_table,
};
use tern_core::DType;
use tern_core::backend::reference::{self as reference, dequantize_row};
use tern_core::kv::{KvCache, KvRow};
use tern_core::model::{ModelConfig, WeightView};
use tern_core::region::{Region, copy_regions};
use tern_core::testing::conformance::{model_config, rope_config};
use tern_core::testing::dense_cache::filled_cache;

const CASES: u32 = 24;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Random weights of `dtype`, quantized by core.
fn weight_bytes(rng: &mut Rng, dtype: DType, rows: usize, cols: usize) -> Vec<u8> {
    let values = rng.vec(rows * cols, 1.0);
    let bytes = dtype.bytes_for(rows * cols).expect("whole blocks");
    let mut out = vec![0u8; bytes];
    tern_core::quant::quantize(dtype, &values, &mut out).expect("quantize");
    out
}

fn view<'a>(
    name: &'a str,
    dtype: DType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
) -> WeightView<'a> {
    WeightView {
        name,
        dtype,
        rows,
        cols,
        data,
    }
}

fn matmul_case(
    worst: &mut Worst,
    dtype: DType,
    rows: usize,
    blocks: usize,
    tokens: usize,
    pad: usize,
    seed: u64,
) {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(seed);
    let cols = blocks * dtype.block_len();
    let data = weight_bytes(&mut rng, dtype, rows, cols);
    let w = view("w", dtype, rows, cols, &data);
    let x = rng.vec(tokens * cols, 2.0);
    let mut want = vec![0f32; tokens * rows];
    reference::matmul(&w, &x, &mut want);

    let dw = DeviceWeight::matrix(g, &w).unwrap();
    // x, the rounded x and the output share one buffer at odd offsets.
    let mut all = vec![0f32; pad + 2 * x.len() + want.len() + pad];
    all[pad..pad + x.len()].copy_from_slice(&x);
    let buf = g.buffer_f32(&all).unwrap();
    let xv = buf.view(pad, x.len()).unwrap();
    let sv = buf.view(pad + x.len(), x.len()).unwrap();
    let ov = buf.view(pad + 2 * x.len(), want.len()).unwrap();
    let mut batch = g.batch().unwrap();
    g.matmul(&mut batch, &dw, xv, sv, ov).unwrap();
    g.run(&mut batch).unwrap();
    let got = buf.read_f32(ov.offset, ov.len).unwrap();
    worst.check(&got, &want, |_| 0.0);
}

fn matmul_prop(dtype: DType, max_blocks: usize) {
    if gpu().is_none() {
        return;
    }
    let worst = RefCell::new(Worst::new(match dtype {
        DType::F32 => "matmul F32",
        DType::F16 => "matmul F16",
        DType::Q4_0 => "matmul Q4_0",
        DType::Q4_1 => "matmul Q4_1",
        DType::Q5_1 => "matmul Q5_1",
        DType::Q8_0 => "matmul Q8_0",
        DType::Q4_K => "matmul Q4_K",
        DType::Q5_K => "matmul Q5_K",
        _ => "matmul Q6_K",
    }));
    runner()
        .run(
            &(
                1usize..70,
                1..=max_blocks,
                1usize..4,
                0usize..5,
                any::<u64>(),
            ),
            |(rows, blocks, tokens, pad, seed)| {
                matmul_case(
                    &mut worst.borrow_mut(),
                    dtype,
                    rows,
                    blocks,
                    tokens,
                    pad,
                    seed,
                );
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn matmul_f32() {
    matmul_prop(DType::F32, 150);
}

#[test]
fn matmul_f16() {
    matmul_prop(DType::F16, 150);
}

#[test]
fn matmul_q4_0() {
    matmul_prop(DType::Q4_0, 12);
}

#[test]
fn matmul_q4_1() {
    matmul_prop(DType::Q4_1, 12);
}

#[test]
fn matmul_q5_1() {
    matmul_prop(DType::Q5_1, 12);
}

#[test]
fn matmul_q8_0() {
    matmul_prop(DType::Q8_0, 12);
}

#[test]
fn matmul_q4_k() {
    matmul_prop(DType::Q4_K, 3);
}

#[test]
fn matmul_q5_k() {
    matmul_prop(DType::Q5_K, 3);
}

#[test]
fn matmul_q6_k() {
    matmul_prop(DType::Q6_K, 3);
}

/// f16 matmuls (`Precision::F16`) against exact sums of the f16-rounded activations and the
/// file's weights. Each block of 32 converts weights to f16, rounds 32 products and 32
/// partial sums in f16 (rounding to nearest or toward zero: up to 2^-10 each), so a block's
/// error stays within `3 * 33 * 2^-10` of its `Σ |w x|`; the f32 sum of blocks adds little.
#[test]
fn matmul_in_f16_stays_within_f16_rounding() {
    let Some(g) = gpu() else { return };
    if !g.info().shader_float16 {
        eprintln!("skipping: {} has no shaderFloat16", g.info().name);
        return;
    }
    let worst = RefCell::new(Worst::new("matmul in f16"));
    runner()
        .run(
            &(0usize..3, 1usize..70, 1usize..8, 1usize..3, any::<u64>()),
            |(ti, rows, blocks, tokens, seed)| {
                let dtype = [DType::F16, DType::Q4_0, DType::Q8_0][ti];
                let mut rng = Rng::new(seed);
                let cols = blocks * 32;
                let data = weight_bytes(&mut rng, dtype, rows, cols);
                let w = view("w", dtype, rows, cols, &data);
                let x = rng.vec(tokens * cols, 2.0);
                let dw = DeviceWeight::matrix_in(g, &w, Precision::F16).unwrap();
                assert_eq!(dw.precision, Precision::F16);
                let xb = g.buffer_f32(&x).unwrap();
                let sb = g.buffer(x.len() as u64 * 4).unwrap();
                let ob = g.buffer((tokens * rows) as u64 * 4).unwrap();
                let mut batch = g.batch().unwrap();
                g.matmul(&mut batch, &dw, xb.all(), sb.all(), ob.all())
                    .unwrap();
                g.run(&mut batch).unwrap();
                let got = ob.read_f32(0, tokens * rows).unwrap();
                let mut row = vec![0f32; cols];
                let (mut want, mut bound) = (Vec::new(), Vec::new());
                for t in 0..tokens {
                    let xr: Vec<f32> = x[t * cols..(t + 1) * cols]
                        .iter()
                        .map(|&v| half::f16::from_f32(v).to_f32())
                        .collect();
                    for r in 0..rows {
                        dequantize_row(&w, r, &mut row);
                        let exact: f64 = row
                            .iter()
                            .zip(&xr)
                            .map(|(a, b)| *a as f64 * *b as f64)
                            .sum();
                        let size: f32 = row.iter().zip(&xr).map(|(a, b)| (a * b).abs()).sum();
                        want.push(exact as f32);
                        bound.push(99.0 / 1024.0 * size + 1e-5 * blocks as f32);
                    }
                }
                worst.borrow_mut().check(&got, &want, |i| bound[i]);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn matmul_with_more_rows_than_one_grid_dimension() {
    let mut worst = Worst::new("matmul F32, 70001 rows");
    matmul_case(&mut worst, DType::F32, 70_001, 3, 1, 1, 7);
}

#[test]
fn embed_matches_reference() {
    let Some(g) = gpu() else { return };
    let worst = RefCell::new(Worst::new("embed"));
    runner()
        .run(
            &(0usize..6, 1usize..12, 1usize..4, 1usize..6, any::<u64>()),
            |(ti, rows, blocks, tokens, seed)| {
                let dtype = EMBED_FORMATS[ti];
                let mut rng = Rng::new(seed);
                let cols = blocks * dtype.block_len() + if dtype.block_len() == 1 { 3 } else { 0 };
                let data = weight_bytes(&mut rng, dtype, rows, cols);
                let w = view("tok", dtype, rows, cols, &data);
                let ids: Vec<u32> = (0..tokens).map(|_| rng.next_u32() % rows as u32).collect();
                let mut want = vec![0f32; tokens * cols];
                reference::embed(&w, &ids, &mut want);
                // One id past the table: zeros.
                let mut ids_dev = ids.clone();
                ids_dev.push(rows as u32 + 5);
                want.extend(std::iter::repeat_n(0.0, cols));

                let dw = DeviceWeight::rows(g, &w).unwrap();
                let tok = g.buffer_u32(&ids_dev).unwrap();
                let out = g.buffer(want.len() as u64 * 4 + 8).unwrap();
                let ov = out.view(1, want.len()).unwrap();
                let mut batch = g.batch().unwrap();
                g.embed(&mut batch, &dw, tok.all(), ov).unwrap();
                g.run(&mut batch).unwrap();
                let got = out.read_f32(1, want.len()).unwrap();
                worst.borrow_mut().check(&got, &want, |_| 0.0);
                Ok(())
            },
        )
        .unwrap();
}

fn f32_weight(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn rms_norm_and_head_norm_match_reference() {
    let Some(g) = gpu() else { return };
    let worst = RefCell::new(Worst::new("rms_norm/head_norm"));
    runner()
        .run(
            &(1usize..6, 1usize..300, any::<u64>()),
            |(rows, cols, seed)| {
                let mut rng = Rng::new(seed);
                let x = rng.vec(rows * cols, 3.0);
                let wv = rng.vec(cols, 1.5);
                let wb = f32_weight(&wv);
                let w = view("norm", DType::F32, 1, cols, &wb);
                let eps = 1e-5;
                let mut want = vec![0f32; x.len()];
                reference::rms_norm(&x, &w, eps, &mut want);
                let mut want_head = x.clone();
                reference::head_norm(&mut want_head, &w, eps);

                let dw = DeviceWeight::rows(g, &w).unwrap();
                let xb = g.buffer_f32(&x).unwrap();
                let ob = g.buffer(x.len() as u64 * 4 + 4).unwrap();
                let hb = g.buffer_f32(&x).unwrap();
                let mut batch = g.batch().unwrap();
                g.rms_norm(&mut batch, xb.all(), &dw, eps, ob.view(1, x.len()).unwrap())
                    .unwrap();
                g.head_norm(&mut batch, hb.all(), &dw, eps).unwrap();
                g.run(&mut batch).unwrap();
                let mut worst = worst.borrow_mut();
                worst.check(&ob.read_f32(1, x.len()).unwrap(), &want, |_| 0.0);
                worst.check(&hb.read_f32(0, x.len()).unwrap(), &want_head, |_| 0.0);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn swiglu_at_the_edges_of_exp_matches_reference() {
    let Some(g) = gpu() else { return };
    // Where exp overflows (x < -88.7), underflows into the subnormals (x > 87.3) or to zero
    // (x > 103.9), and the signed zeros, infinities and a NaN.
    let mut x = vec![
        0.0, -0.0, 1.0, -1.0, 87.0, 88.0, 89.0, 100.0, 104.0, 200.0, 1e30,
    ];
    x.extend(x.clone().iter().map(|v| -v));
    x.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, -1e-40]);
    let y: Vec<f32> = (0..x.len()).map(|i| 0.5 + i as f32 * 0.25).collect();
    let mut want = x.clone();
    reference::swiglu(&mut want, &y);
    let buf = g.buffer_f32(&[x.clone(), y].concat()).unwrap();
    let mut batch = g.batch().unwrap();
    let (xv, yv) = (
        buf.view(0, x.len()).unwrap(),
        buf.view(x.len(), x.len()).unwrap(),
    );
    g.swiglu(&mut batch, xv, yv).unwrap();
    g.run(&mut batch).unwrap();
    Worst::new("swiglu edges").check(&buf.read_f32(0, x.len()).unwrap(), &want, |_| 0.0);
}

#[test]
fn add_bias_swiglu_add_match_reference() {
    let Some(g) = gpu() else { return };
    let exact = RefCell::new(Worst::new("add/add_bias"));
    let silu = RefCell::new(Worst::new("swiglu"));
    runner()
        .run(
            &(1usize..5, 1usize..200, any::<u64>()),
            |(rows, cols, seed)| {
                let mut rng = Rng::new(seed);
                let n = rows * cols;
                let x = rng.vec(n, 8.0);
                let y = rng.vec(n, 3.0);
                let bias = rng.vec(cols, 1.0);
                let bb = f32_weight(&bias);
                let bw = view("bias", DType::F32, 1, cols, &bb);
                let mut want_add = x.clone();
                reference::add(&mut want_add, &y);
                reference::add_bias(&mut want_add, &bw);
                let mut want_swiglu = x.clone();
                reference::swiglu(&mut want_swiglu, &y);

                let db = DeviceWeight::rows(g, &bw).unwrap();
                // x twice and y in one buffer.
                let mut all = x.clone();
                all.extend(&x);
                all.extend(&y);
                let buf = g.buffer_f32(&all).unwrap();
                let (a, s, yv) = (
                    buf.view(0, n).unwrap(),
                    buf.view(n, n).unwrap(),
                    buf.view(2 * n, n).unwrap(),
                );
                let mut batch = g.batch().unwrap();
                g.add(&mut batch, a, yv).unwrap();
                g.add_bias(&mut batch, a, &db).unwrap();
                g.swiglu(&mut batch, s, yv).unwrap();
                g.run(&mut batch).unwrap();
                exact
                    .borrow_mut()
                    .check(&buf.read_f32(0, n).unwrap(), &want_add, |_| 0.0);
                silu.borrow_mut()
                    .check(&buf.read_f32(n, n).unwrap(), &want_swiglu, |_| 0.0);
                Ok(())
            },
        )
        .unwrap();
}

/// A configuration of `n_head` query heads over `n_head_kv` KV heads of `head_dim`, rotated
/// over every whole pair.
fn config(n_head: usize, n_head_kv: usize, head_dim: usize) -> ModelConfig {
    let mut c = model_config(n_head, n_head_kv, head_dim);
    c.rope_dim = head_dim - head_dim % 2;
    c
}

#[test]
fn rope_matches_reference() {
    let Some(g) = gpu() else { return };
    let worst = RefCell::new(Worst::new("rope"));
    runner()
        .run(
            &(
                1usize..4,
                1usize..40,
                0usize..40,
                1usize..4,
                0usize..5000,
                any::<bool>(),
                any::<bool>(),
                any::<u64>(),
            ),
            |(n_heads, half_head, rope_cut, tokens, first, neox, long_theta, seed)| {
                let mut rng = Rng::new(seed);
                let c = rope_config(n_heads, half_head, rope_cut, neox, long_theta);
                let x = rng.vec(tokens * n_heads * c.head_dim, 2.0);
                let mut want = x.clone();
                reference::rope(&mut want, n_heads, &c, first);

                let table = rope_table(&c, first, tokens);
                let xb = g.buffer_f32(&x).unwrap();
                let tb = g.buffer_f32(&table).unwrap();
                let mut batch = g.batch().unwrap();
                g.rope(&mut batch, xb.all(), n_heads, &c, tb.all()).unwrap();
                g.run(&mut batch).unwrap();
                let got = xb.read_f32(0, x.len()).unwrap();
                worst.borrow_mut().check(&got, &want, |_| 0.0);
                Ok(())
            },
        )
        .unwrap();
}

/// A reference cache and a device cache holding the same random rows for every position.
fn caches(
    g: &tern_backend_vulkan::Gpu,
    rng: &mut Rng,
    format: KvFormat,
    n_ctx: usize,
    width: usize,
) -> (Box<dyn KvCache>, DeviceKv) {
    let n_layer = 2;
    let dev = DeviceKv::new(g, n_layer, n_ctx, width, format).unwrap();
    let k = rng.vec(n_layer * n_ctx * width, 2.0);
    let v = rng.vec(n_layer * n_ctx * width, 2.0);
    let host = filled_cache(kv_type(format), n_layer, n_ctx, width, &k, &v);
    let kb = g.buffer_f32(&k).unwrap();
    let vb = g.buffer_f32(&v).unwrap();
    let zero = g.buffer_u32(&[0]).unwrap();
    let mut batch = g.batch().unwrap();
    for layer in 0..n_layer {
        let rows = kb.view(layer * n_ctx * width, n_ctx * width).unwrap();
        let vrows = vb.view(layer * n_ctx * width, n_ctx * width).unwrap();
        g.kv_store(&mut batch, &dev, layer, zero.all(), rows, vrows)
            .unwrap();
    }
    g.run(&mut batch).unwrap();
    drop(batch);
    (host, dev)
}

#[test]
fn kv_store_matches_dense_cache_bits() {
    let Some(g) = gpu() else { return };
    let worst = RefCell::new(Worst::new("kv_store"));
    runner()
        .run(
            &(
                any::<bool>(),
                1usize..12,
                1usize..4,
                0usize..6,
                any::<u64>(),
            ),
            |(f16, width, rows, first, seed)| {
                let mut rng = Rng::new(seed);
                let format = if f16 { KvFormat::F16 } else { KvFormat::F32 };
                let n_ctx = first + rows + 2;
                // Start from a full cache so that rows around the written ones must survive.
                let (mut host, dev) = caches(g, &mut rng, format, n_ctx, width);
                let k = rng.vec(rows * width, 100.0);
                let v = rng.vec(rows * width, 1e-3);
                let src = g.buffer_f32(&[k.clone(), v.clone()].concat()).unwrap();
                // The position sits at an odd word of a shared buffer, as in a session's.
                let at = g.buffer_u32(&[7, first as u32]).unwrap();
                let mut batch = g.batch().unwrap();
                let (kv_, vv) = (
                    src.view(0, k.len()).unwrap(),
                    src.view(k.len(), v.len()).unwrap(),
                );
                let pos = at.view(1, 1).unwrap();
                g.kv_store(&mut batch, &dev, 1, pos, kv_, vv).unwrap();
                g.run(&mut batch).unwrap();
                for r in 0..rows {
                    host.write(
                        1,
                        first + r,
                        &k[r * width..(r + 1) * width],
                        &v[r * width..(r + 1) * width],
                    )
                    .unwrap();
                }
                let n = 2 * n_ctx * width;
                for (buf, keys) in [(&dev.keys, true), (&dev.values, false)] {
                    let (got, want): (Vec<f32>, Vec<f32>) = match format {
                        KvFormat::F32 => {
                            let got = buf.read_f32(0, n).unwrap();
                            let want = (0..2)
                                .flat_map(|l| {
                                    let row = if keys {
                                        host.keys(l, 0, n_ctx)
                                    } else {
                                        host.values(l, 0, n_ctx)
                                    };
                                    (0..n_ctx * width)
                                        .map(move |i| row.get(i))
                                        .collect::<Vec<_>>()
                                })
                                .collect();
                            (got, want)
                        }
                        KvFormat::F16 => {
                            let mut bytes = vec![0u8; n * 2];
                            buf.read(0, &mut bytes).unwrap();
                            let got = bytes
                                .chunks_exact(2)
                                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                                .collect();
                            let mut want = Vec::new();
                            for l in 0..2 {
                                let row = if keys {
                                    host.keys(l, 0, n_ctx)
                                } else {
                                    host.values(l, 0, n_ctx)
                                };
                                let KvRow::F16(r) = row else {
                                    panic!("f16 cache")
                                };
                                want.extend(r.iter().map(|h| h.to_f32()));
                            }
                            (got, want)
                        }
                    };
                    worst.borrow_mut().check(&got, &want, |_| 0.0);
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn attention_matches_reference() {
    let Some(g) = gpu() else { return };
    let w32 = RefCell::new(Worst::new("attention, f32 cache"));
    let w16 = RefCell::new(Worst::new("attention, f16 cache"));
    runner()
        .run(
            &(
                any::<bool>(),
                1usize..3,
                1usize..3,
                1usize..70,
                1usize..4,
                0usize..40,
                0usize..2,
                any::<u64>(),
            ),
            |(f16, n_head_kv, group, head_dim, rows, first, layer, seed)| {
                let mut rng = Rng::new(seed);
                let format = if f16 { KvFormat::F16 } else { KvFormat::F32 };
                let n_head = n_head_kv * group;
                let c = config(n_head, n_head_kv, head_dim);
                let n_ctx = first + rows + 3;
                let (host, dev) = caches(g, &mut rng, format, n_ctx, c.kv_width());
                let q = rng.vec(rows * c.q_width(), 2.0);
                let mut scores = vec![0f32; n_ctx];
                let mut want = vec![0f32; q.len()];
                reference::attention(&q, host.as_ref(), layer, &c, first, &mut scores, &mut want);

                let qb = g.buffer_f32(&q).unwrap();
                let sb = g.buffer((rows * n_head * n_ctx) as u64 * 4).unwrap();
                let ob = g.buffer(q.len() as u64 * 4).unwrap();
                let at = g.buffer_u32(&[first as u32]).unwrap();
                let shape = AttentionShape {
                    n_head,
                    n_head_kv,
                    head_dim,
                };
                let mut batch = g.batch().unwrap();
                g.attention(
                    &mut batch,
                    qb.all(),
                    &dev,
                    layer,
                    shape,
                    at.all(),
                    sb.all(),
                    ob.view(0, q.len()).unwrap(),
                )
                .unwrap();
                g.run(&mut batch).unwrap();
                let got = ob.read_f32(0, q.len()).unwrap();
                let worst = if f16 { &w16 } else { &w32 };
                worst.borrow_mut().check(&got, &want, |_| 0.0);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn raster_matches_reference_copy() {
    let Some(g) = gpu() else { return };
    let worst = RefCell::new(Worst::new("raster"));
    runner()
        .run(&(1usize..4, any::<u64>()), |(n_regions, seed)| {
            let mut rng = Rng::new(seed);
            let src_len = 600;
            let dst_len = 700;
            let mut regions = Vec::new();
            for _ in 0..n_regions {
                let size = [
                    1 + rng.next_u32() as usize % 4,
                    1 + rng.next_u32() as usize % 5,
                    1 + rng.next_u32() as usize % 7,
                ];
                let src_stride = [
                    rng.next_u32() as usize % 60,
                    rng.next_u32() as usize % 9,
                    rng.next_u32() as usize % 3,
                ];
                // A destination laid out densely in a random loop order: never one element twice.
                let order = rng.next_u32() as usize % 3;
                let mut dst_stride = [0usize; 3];
                let (inner, mid, outer) = match order {
                    0 => (2, 1, 0),
                    1 => (0, 2, 1),
                    _ => (1, 0, 2),
                };
                dst_stride[inner] = 1;
                dst_stride[mid] = size[inner];
                dst_stride[outer] = size[inner] * size[mid];
                let r = Region {
                    src_offset: rng.next_u32() as usize % 100,
                    dst_offset: rng.next_u32() as usize % 500,
                    size,
                    src_stride,
                    dst_stride,
                };
                if r.src_end().unwrap() <= src_len && r.dst_end().unwrap() <= dst_len {
                    regions.push(r);
                }
            }
            let src: Vec<f32> = rng.vec(src_len, 10.0);
            let mut want = rng.vec(dst_len, 10.0);
            let sb = g.buffer_f32(&src).unwrap();
            let db = g.buffer_f32(&want).unwrap();
            copy_regions(&src, &mut want, &regions).unwrap();
            let mut batch = g.batch().unwrap();
            g.raster(&mut batch, sb.all(), db.view(0, dst_len).unwrap(), &regions)
                .unwrap();
            g.run(&mut batch).unwrap();
            worst
                .borrow_mut()
                .check(&db.read_f32(0, dst_len).unwrap(), &want, |_| 0.0);
            Ok(())
        })
        .unwrap();
}
