//! The row and cache kernels (norms, bias, residual add, SwiGLU, RoPE, KV stores, attention,
//! raster) against core's reference backend on random shapes (odd sizes, tails past every
//! work-group, offsets into shared buffers) and random data, bit for bit, on every OpenCL
//! device (CI: PoCL and rusticl on llvmpipe, see `scripts/opencl.sh`). The kernels compute in
//! the reference's own order and roundings: each fused multiply-add of the reference is an
//! OpenCL `fma` (correctly rounded) with contraction off, divisions and square roots are
//! corrected to IEEE rounding, f64 sums are float pairs, and `exp` is ggml's polynomial. A
//! pair sum can round differently from f64 only where the exact value lies within 2^-48 of a
//! midpoint between two floats, which random data does not hit. With `TERN_OPENCL_TESTS=1` a
//! missing device fails the tests instead of skipping them.

mod common;

use common::{f32_bytes, gpus, is_shape, kv_type, proptest_config};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use tern_backend_opencl::ops::rope_table;
use tern_backend_opencl::{AttentionShape, Batch, Buffer, ClError, DeviceKv, Gpu, KvFormat};
use tern_core::DType;
use tern_core::backend::reference;
use tern_core::kv::{KvCache, KvRow};
use tern_core::model::{ModelConfig, WeightView};
use tern_core::region::{Region, copy_regions};
use tern_core::testing::conformance::{Rng, model_config, rope_config};
use tern_core::testing::dense_cache::{dense_cache, filled_cache};

type CaseResult = Result<(), TestCaseError>;

/// Runs `case` on `cases` random inputs from `strategy` (no failure file: the seeds are in
/// the inputs, printed on failure).
fn check<S: Strategy>(cases: u32, strategy: S, case: impl Fn(S::Value) -> CaseResult)
where
    S::Value: std::fmt::Debug,
{
    if gpus().is_empty() {
        return;
    }
    TestRunner::new(proptest_config(cases))
        .run(&strategy, case)
        .unwrap();
}

/// `n` values uniform in [-scale, scale).
fn uniform(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.unit() * scale).collect()
}

/// Bit-for-bit equality, a NaN matching any NaN (the reference does not fix NaN payloads).
fn same_bits(what: &str, gpu: &Gpu, got: &[f32], want: &[f32]) -> CaseResult {
    prop_assert_eq!(got.len(), want.len(), "{}: lengths", what);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "{} on {}: element {} is {:e} ({:#010x}), the reference's {:e} ({:#010x})",
            what,
            gpu.info().name,
            i,
            g,
            g.to_bits(),
            w,
            w.to_bits()
        );
    }
    Ok(())
}

fn buffer_f32(gpu: &Gpu, data: &[f32]) -> Buffer {
    let b = gpu.buffer(4 * data.len()).unwrap();
    gpu.write_f32(&b, data).unwrap();
    b
}

fn buffer_u32(gpu: &Gpu, data: &[u32]) -> Buffer {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    gpu.buffer_from(&bytes).unwrap()
}

/// Words `offset..offset + len` of `buffer` as f32.
fn read_f32(gpu: &Gpu, buffer: &Buffer, offset: usize, len: usize) -> Vec<f32> {
    let mut all = vec![0f32; offset + len];
    gpu.read_f32(buffer, &mut all).unwrap();
    all.split_off(offset)
}

fn run(gpu: &Gpu, batch: &Batch) {
    gpu.submit(batch).unwrap();
    gpu.finish().unwrap();
}

fn f32_row<'a>(name: &'a str, bytes: &'a [u8]) -> WeightView<'a> {
    WeightView {
        name,
        dtype: DType::F32,
        rows: 1,
        cols: bytes.len() / 4,
        data: bytes,
    }
}

#[test]
fn rms_norm_and_head_norm_match_reference() {
    check(
        24,
        (1usize..6, 1usize..300, 0usize..3, any::<u64>()),
        |(rows, cols, pad, seed)| {
            let mut rng = Rng::new(seed);
            let x = rng.activations(rows * cols);
            let w = uniform(&mut rng, cols, 1.5);
            let wb = f32_bytes(&w);
            let eps = 1e-5;
            let mut want = vec![0f32; x.len()];
            reference::rms_norm(&x, &f32_row("norm", &wb), eps, &mut want);
            let mut want_head = x.clone();
            reference::head_norm(&mut want_head, &f32_row("norm", &wb), eps);
            for gpu in gpus() {
                // The weight sits after `pad` words of its buffer, the output one word in.
                let wbuf = buffer_f32(gpu, &[vec![9.0; pad], w.clone()].concat());
                let xb = buffer_f32(gpu, &x);
                let ob = gpu.buffer(4 * x.len() + 4).unwrap();
                let hb = buffer_f32(gpu, &x);
                let wv = wbuf.view(pad, cols).unwrap();
                let mut batch = Batch::new();
                let out = ob.view(1, x.len()).unwrap();
                gpu.rms_norm(&mut batch, xb.all(), wv, eps, out).unwrap();
                gpu.head_norm(&mut batch, hb.all(), wv, eps).unwrap();
                run(gpu, &batch);
                same_bits("rms_norm", gpu, &read_f32(gpu, &ob, 1, x.len()), &want)?;
                same_bits(
                    "head_norm",
                    gpu,
                    &read_f32(gpu, &hb, 0, x.len()),
                    &want_head,
                )?;
            }
            Ok(())
        },
    );
}

/// SwiGLU of `x` against the reference, `up` a ramp.
fn swiglu_case(x: &[f32]) {
    let y: Vec<f32> = (0..x.len()).map(|i| 0.5 + i as f32 * 0.25).collect();
    let mut want = x.to_vec();
    reference::swiglu(&mut want, &y);
    for gpu in gpus() {
        let buf = buffer_f32(gpu, &[x, &y].concat());
        let mut batch = Batch::new();
        let (xv, yv) = (
            buf.view(0, x.len()).unwrap(),
            buf.view(x.len(), x.len()).unwrap(),
        );
        gpu.swiglu(&mut batch, xv, yv).unwrap();
        run(gpu, &batch);
        same_bits("swiglu", gpu, &read_f32(gpu, &buf, 0, x.len()), &want).unwrap();
    }
}

#[test]
fn swiglu_at_the_edges_of_exp_matches_reference() {
    // Where exp overflows (x < -88.7), underflows into the subnormals (x > 87.3) or to zero
    // (x > 103.9), and the signed zeros, infinities and a NaN.
    let mut x = vec![
        0.0, -0.0, 1.0, -1.0, 87.0, 88.0, 89.0, 100.0, 104.0, 200.0, 1e30,
    ];
    x.extend(x.clone().iter().map(|v| -v));
    x.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    swiglu_case(&x);
}

/// Subnormal inputs, whose SiLU divides a subnormal: the division's correction runs `fma` on
/// subnormal operands. A device whose `fma` flushes them fails here (rusticl: libclc's
/// software `fma` flushes subnormal operands where the device reports no `CL_FP_DENORM`, and
/// every subnormal result).
#[test]
fn swiglu_of_subnormal_inputs_matches_reference() {
    swiglu_case(&[1e-40, -1e-40, 1e-45, -1e-45, 1.1754942e-38, -5e-39]);
}

#[test]
fn add_bias_swiglu_add_match_reference() {
    check(
        24,
        (1usize..5, 1usize..200, any::<u64>()),
        |(rows, cols, seed)| {
            let mut rng = Rng::new(seed);
            let n = rows * cols;
            let x = uniform(&mut rng, n, 8.0);
            let y = uniform(&mut rng, n, 3.0);
            let bias = uniform(&mut rng, cols, 1.0);
            let bb = f32_bytes(&bias);
            let mut want_add = x.clone();
            reference::add(&mut want_add, &y);
            reference::add_bias(&mut want_add, &f32_row("bias", &bb));
            let mut want_swiglu = x.clone();
            reference::swiglu(&mut want_swiglu, &y);
            for gpu in gpus() {
                // x twice, y and the bias in one buffer.
                let buf = buffer_f32(
                    gpu,
                    &[x.clone(), x.clone(), y.clone(), bias.clone()].concat(),
                );
                let (a, s, yv, bv) = (
                    buf.view(0, n).unwrap(),
                    buf.view(n, n).unwrap(),
                    buf.view(2 * n, n).unwrap(),
                    buf.view(3 * n, cols).unwrap(),
                );
                let mut batch = Batch::new();
                gpu.add(&mut batch, a, yv).unwrap();
                gpu.add_bias(&mut batch, a, bv).unwrap();
                gpu.swiglu(&mut batch, s, yv).unwrap();
                run(gpu, &batch);
                same_bits("add/add_bias", gpu, &read_f32(gpu, &buf, 0, n), &want_add)?;
                same_bits("swiglu", gpu, &read_f32(gpu, &buf, n, n), &want_swiglu)?;
            }
            Ok(())
        },
    );
}

/// A configuration of `n_head` query heads over `n_head_kv` KV heads of `head_dim`, rotated
/// over every whole pair.
fn config(n_head: usize, n_head_kv: usize, head_dim: usize) -> ModelConfig {
    let mut c = model_config(n_head, n_head_kv, head_dim);
    c.rope_dim = head_dim - head_dim % 2;
    c
}

#[test]
fn rope_matches_reference_in_both_pairings() {
    check(
        24,
        (
            (1usize..4, 1usize..40, 0usize..40, 1usize..4),
            (0usize..5000, any::<bool>(), any::<bool>(), 0usize..2),
            any::<u64>(),
        ),
        |((n_heads, half_head, rope_cut, tokens), (first, neox, long_theta, pad), seed)| {
            let mut rng = Rng::new(seed);
            let c = rope_config(n_heads, half_head, rope_cut, neox, long_theta);
            let x = uniform(&mut rng, tokens * n_heads * c.head_dim, 2.0);
            let mut want = x.clone();
            reference::rope(&mut want, n_heads, &c, first);
            let table = rope_table(&c, first, tokens);
            for gpu in gpus() {
                // x one word in; the table at an even word after it.
                let lead = 2 * pad;
                let xb = buffer_f32(gpu, &[vec![0.0], x.clone()].concat());
                let tb = buffer_f32(gpu, &[vec![5.0; lead], table.clone()].concat());
                let mut batch = Batch::new();
                let (xv, tv) = (
                    xb.view(1, x.len()).unwrap(),
                    tb.view(lead, table.len()).unwrap(),
                );
                gpu.rope(&mut batch, xv, n_heads, &c, tv).unwrap();
                run(gpu, &batch);
                same_bits("rope", gpu, &read_f32(gpu, &xb, 1, x.len()), &want)?;
            }
            Ok(())
        },
    );
}

/// A reference cache and a device cache holding the same random rows for every position of
/// both layers, stored on the device from position 0 with one `kv_store` per layer.
fn caches(
    gpu: &Gpu,
    rng: &mut Rng,
    format: KvFormat,
    n_ctx: usize,
    width: usize,
) -> (Box<dyn KvCache>, DeviceKv) {
    let n_layer = 2;
    let dev = DeviceKv::new(gpu, n_layer, n_ctx, width, format).unwrap();
    let k = uniform(rng, n_layer * n_ctx * width, 2.0);
    let v = uniform(rng, n_layer * n_ctx * width, 2.0);
    let host = filled_cache(kv_type(format), n_layer, n_ctx, width, &k, &v);
    let kb = buffer_f32(gpu, &k);
    let vb = buffer_f32(gpu, &v);
    let zero = buffer_u32(gpu, &[0]);
    let mut batch = Batch::new();
    for layer in 0..n_layer {
        let rows = kb.view(layer * n_ctx * width, n_ctx * width).unwrap();
        let vrows = vb.view(layer * n_ctx * width, n_ctx * width).unwrap();
        gpu.kv_store(&mut batch, &dev, layer, zero.all(), rows, vrows)
            .unwrap();
    }
    run(gpu, &batch);
    (host, dev)
}

/// Every stored element of `cache` (keys or values), as the bits of its format widened to 32.
fn device_bits(gpu: &Gpu, kv: &DeviceKv, cache: &Buffer) -> Vec<u32> {
    let mut bytes = vec![0u8; cache.bytes()];
    gpu.read(cache, 0, &mut bytes).unwrap();
    match kv.format {
        KvFormat::F32 => bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        KvFormat::F16 => bytes
            .chunks_exact(2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
    }
}

/// Every stored element of the reference cache's keys or values, as [`device_bits`] gives
/// them.
fn host_bits(host: &dyn KvCache, keys: bool) -> Vec<u32> {
    let mut out = Vec::new();
    for layer in 0..host.n_layer() {
        let rows = if keys {
            host.keys(layer, 0, host.n_ctx())
        } else {
            host.values(layer, 0, host.n_ctx())
        };
        match rows {
            KvRow::F32(r) => out.extend(r.iter().map(|v| v.to_bits())),
            KvRow::F16(r) => out.extend(r.iter().map(|v| u32::from(v.to_bits()))),
            other => panic!("a device cache holds f32 or f16, not {}", other.kv_type()),
        }
    }
    out
}

#[test]
fn a_new_cache_reads_as_zeros() {
    for gpu in gpus() {
        for (format, size) in [(KvFormat::F32, 4), (KvFormat::F16, 2)] {
            let kv = DeviceKv::new(gpu, 3, 5, 7, format).unwrap();
            assert_eq!(kv.bytes(), 2 * 3 * 5 * 7 * size);
            for cache in [&kv.keys, &kv.values] {
                assert!(device_bits(gpu, &kv, cache).iter().all(|&b| b == 0));
            }
        }
    }
}

#[test]
fn kv_store_matches_dense_cache_bits() {
    check(
        24,
        (
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
            // Large keys (past f16's range when rounded) and small values (f16 subnormals).
            let k = uniform(&mut rng, rows * width, 1e5);
            let v = uniform(&mut rng, rows * width, 1e-3);
            for gpu in gpus() {
                // Start from a full cache so that rows around the written ones must survive.
                let (mut host, dev) = caches(gpu, &mut rng, format, n_ctx, width);
                let src = buffer_f32(gpu, &[k.clone(), v.clone()].concat());
                // The position sits at an odd word of a shared buffer, as in a session's.
                let at = buffer_u32(gpu, &[7, first as u32]);
                let mut batch = Batch::new();
                let (kv_, vv) = (
                    src.view(0, k.len()).unwrap(),
                    src.view(k.len(), v.len()).unwrap(),
                );
                gpu.kv_store(&mut batch, &dev, 1, at.view(1, 1).unwrap(), kv_, vv)
                    .unwrap();
                run(gpu, &batch);
                for r in 0..rows {
                    let row = r * width..(r + 1) * width;
                    host.write(1, first + r, &k[row.clone()], &v[row]).unwrap();
                }
                for (cache, keys) in [(&dev.keys, true), (&dev.values, false)] {
                    let got = device_bits(gpu, &dev, cache);
                    let want = host_bits(host.as_ref(), keys);
                    prop_assert_eq!(got, want, "{:?} cache on {}", format, gpu.info().name);
                }
            }
            Ok(())
        },
    );
}

/// The random choices of one attention case.
#[derive(Debug)]
struct AttentionCase {
    f16: bool,
    n_head_kv: usize,
    group: usize,
    head_dim: usize,
    rows: usize,
    first: usize,
    layer: usize,
    /// Half-width of the query's uniform values: large ones spread the scores past where
    /// ggml's `exp` underflows.
    q_scale: f32,
    seed: u64,
}

fn attention_cases(q_scale: f32, max_first: usize) -> impl Strategy<Value = AttentionCase> {
    (
        (
            any::<bool>(),
            1usize..3,
            1usize..3,
            any::<bool>(),
            1usize..140,
        ),
        (1usize..4, 0..max_first, 0usize..2),
        any::<u64>(),
    )
        .prop_map(
            move |((f16, n_head_kv, group, whole, dim), (rows, first, layer), seed)| {
                AttentionCase {
                    f16,
                    n_head_kv,
                    group,
                    // Half the cases take a multiple of 16 (tinyBLAS's lanes), half any width
                    // (64 lanes and a tail).
                    head_dim: if whole { 16 * (1 + dim % 5) } else { dim },
                    rows,
                    first,
                    layer,
                    q_scale,
                    seed,
                }
            },
        )
}

fn attention_case(case: AttentionCase) -> CaseResult {
    let AttentionCase {
        f16,
        n_head_kv,
        group,
        head_dim,
        rows,
        first,
        layer,
        q_scale,
        seed,
    } = case;
    let mut rng = Rng::new(seed);
    let format = if f16 { KvFormat::F16 } else { KvFormat::F32 };
    let n_head = n_head_kv * group;
    let c = config(n_head, n_head_kv, head_dim);
    let n_ctx = first + rows + 3;
    let q = uniform(&mut rng, rows * c.q_width(), q_scale);
    for gpu in gpus() {
        let (host, dev) = caches(gpu, &mut rng, format, n_ctx, c.kv_width());
        let mut scores = vec![0f32; n_ctx];
        let mut want = vec![0f32; q.len()];
        reference::attention(&q, host.as_ref(), layer, &c, first, &mut scores, &mut want);

        // q, the scores and the output share one buffer at odd offsets.
        let n_scores = rows * n_head * n_ctx;
        let buf = gpu.buffer(4 * (1 + q.len() + n_scores + q.len())).unwrap();
        gpu.write_f32(&buf, &[vec![0.0], q.clone()].concat())
            .unwrap();
        let at = buffer_u32(gpu, &[first as u32]);
        let shape = AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
        };
        let out = buf.view(1 + q.len() + n_scores, q.len()).unwrap();
        let mut batch = Batch::new();
        gpu.attention(
            &mut batch,
            buf.view(1, q.len()).unwrap(),
            &dev,
            layer,
            shape,
            at.all(),
            buf.view(1 + q.len(), n_scores).unwrap(),
            out,
        )
        .unwrap();
        run(gpu, &batch);
        let got = read_f32(gpu, &buf, out.offset, q.len());
        let what = if f16 {
            "attention, f16 cache"
        } else {
            "attention, f32 cache"
        };
        same_bits(what, gpu, &got, &want)?;
    }
    Ok(())
}

#[test]
fn attention_matches_reference() {
    check(32, attention_cases(2.0, 40), attention_case);
}

/// Queries large enough that scores spread over hundreds: some probabilities fall into the
/// subnormals or to zero under ggml's `exp`, as the oldest positions of a long context do.
#[test]
fn attention_with_probabilities_past_exp_underflow_matches_reference() {
    check(24, attention_cases(60.0, 100), attention_case);
}

/// One batch of `kv_store` and `attention`, recorded once, serves every step: the position is
/// read when the batch runs. A step whose rows would pass the cache's end writes nothing.
#[test]
fn one_batch_serves_every_step() {
    let (n_head, n_head_kv, head_dim, n_ctx, rows) = (4, 2, 24, 9, 2);
    let c = config(n_head, n_head_kv, head_dim);
    for format in [KvFormat::F32, KvFormat::F16] {
        for gpu in gpus() {
            let mut rng = Rng::new(11);
            let mut host = dense_cache(kv_type(format), 1, n_ctx, c.kv_width());
            let dev = DeviceKv::new(gpu, 1, n_ctx, c.kv_width(), format).unwrap();
            let (qn, kn) = (rows * c.q_width(), rows * c.kv_width());
            let (qb, kb, vb) = (
                gpu.buffer(4 * qn).unwrap(),
                gpu.buffer(4 * kn).unwrap(),
                gpu.buffer(4 * kn).unwrap(),
            );
            let sb = gpu.buffer(4 * rows * n_head * n_ctx).unwrap();
            let ob = gpu.buffer(4 * qn).unwrap();
            let at = gpu.buffer(4).unwrap();
            let shape = AttentionShape {
                n_head,
                n_head_kv,
                head_dim,
            };
            let mut batch = Batch::new();
            gpu.kv_store(&mut batch, &dev, 0, at.all(), kb.all(), vb.all())
                .unwrap();
            gpu.attention(
                &mut batch,
                qb.all(),
                &dev,
                0,
                shape,
                at.all(),
                sb.all(),
                ob.all(),
            )
            .unwrap();
            assert_eq!(batch.dispatches(), 3);
            for first in (0..n_ctx).step_by(rows) {
                let (q, k, v) = (
                    uniform(&mut rng, qn, 2.0),
                    uniform(&mut rng, kn, 2.0),
                    uniform(&mut rng, kn, 2.0),
                );
                for (b, d) in [(&qb, &q), (&kb, &k), (&vb, &v)] {
                    gpu.write_f32(b, d).unwrap();
                }
                gpu.write(&at, 0, &(first as u32).to_le_bytes()).unwrap();
                gpu.write_f32(&ob, &vec![7.0; qn]).unwrap();
                run(gpu, &batch);
                let got = read_f32(gpu, &ob, 0, qn);
                if first + rows > n_ctx {
                    // Past the end: neither cache nor output is written.
                    assert!(got.iter().all(|&g| g == 7.0), "{format:?} step {first}");
                    assert_eq!(
                        device_bits(gpu, &dev, &dev.keys),
                        host_bits(host.as_ref(), true)
                    );
                    continue;
                }
                let w = c.kv_width();
                for r in 0..rows {
                    host.write(0, first + r, &k[r * w..(r + 1) * w], &v[r * w..(r + 1) * w])
                        .unwrap();
                }
                let mut scores = vec![0f32; n_ctx];
                let mut want = vec![0f32; qn];
                reference::attention(&q, host.as_ref(), 0, &c, first, &mut scores, &mut want);
                same_bits("attention step", gpu, &got, &want).unwrap();
            }
        }
    }
}

#[test]
fn raster_matches_reference_copy() {
    check(24, (1usize..4, any::<u64>()), |(n_regions, seed)| {
        let mut rng = Rng::new(seed);
        let mut below = |n: usize| rng.below(n as u64) as usize;
        let (src_len, dst_len) = (600, 700);
        let mut regions = Vec::new();
        for _ in 0..n_regions {
            let size = [1 + below(4), 1 + below(5), 1 + below(7)];
            let src_stride = [below(60), below(9), below(3)];
            // A destination laid out densely in a random loop order: never one element twice.
            let (inner, mid, outer) = match below(3) {
                0 => (2, 1, 0),
                1 => (0, 2, 1),
                _ => (1, 0, 2),
            };
            let mut dst_stride = [0usize; 3];
            dst_stride[inner] = 1;
            dst_stride[mid] = size[inner];
            dst_stride[outer] = size[inner] * size[mid];
            let r = Region {
                src_offset: below(100),
                dst_offset: below(500),
                size,
                src_stride,
                dst_stride,
            };
            if r.src_end().unwrap() <= src_len && r.dst_end().unwrap() <= dst_len {
                regions.push(r);
            }
        }
        let src = uniform(&mut rng, src_len, 10.0);
        let dst = uniform(&mut rng, dst_len, 10.0);
        let mut want = dst.clone();
        copy_regions(&src, &mut want, &regions).unwrap();
        for gpu in gpus() {
            // The source one word into its buffer, the destination two.
            let sb = buffer_f32(gpu, &[vec![0.0], src.clone()].concat());
            let db = buffer_f32(gpu, &[vec![0.0; 2], dst.clone()].concat());
            let mut batch = Batch::new();
            let (sv, dv) = (sb.view(1, src_len).unwrap(), db.view(2, dst_len).unwrap());
            gpu.raster(&mut batch, sv, dv, &regions).unwrap();
            run(gpu, &batch);
            same_bits("raster", gpu, &read_f32(gpu, &db, 2, dst_len), &want)?;
        }
        Ok(())
    });
}

/// Shapes that do not fit are errors that add nothing to the batch.
#[test]
fn bad_shapes_are_errors() {
    for gpu in gpus() {
        let buf = gpu.buffer(4 * 4096).unwrap();
        let v = |offset, len| buf.view(offset, len).unwrap();
        let mut b = Batch::new();
        let eps = 1e-5;

        // Norms: rows of the weight's width, an output as long as the input.
        let mut norm = |x, w, out| gpu.rms_norm(&mut b, x, w, eps, out);
        assert!(is_shape(norm(v(0, 10), v(100, 3), v(200, 10))));
        assert!(is_shape(norm(v(0, 10), v(100, 0), v(200, 10))));
        assert!(is_shape(norm(v(0, 10), v(100, 5), v(200, 9))));
        assert!(is_shape(gpu.head_norm(&mut b, v(0, 10), v(100, 4), eps)));

        // RoPE: whole rows of heads, a table of the rows' pairs at an even word.
        let c = config(2, 2, 8);
        assert!(is_shape(gpu.rope(&mut b, v(0, 15), 2, &c, v(100, 8))));
        assert!(is_shape(gpu.rope(&mut b, v(0, 16), 2, &c, v(100, 6))));
        assert!(is_shape(gpu.rope(&mut b, v(0, 16), 2, &c, v(101, 8))));
        assert!(is_shape(gpu.rope(&mut b, v(0, 16), 0, &c, v(100, 0))));
        let mut wide = c;
        wide.rope_dim = 10;
        assert!(is_shape(gpu.rope(&mut b, v(0, 16), 2, &wide, v(100, 10))));

        // The cache: sizes past 32-bit indexing or overflowing.
        for (n_layer, n_ctx, width) in [(1 << 12, 1 << 12, 1 << 9), (usize::MAX, 2, 2)] {
            let e = DeviceKv::new(gpu, n_layer, n_ctx, width, KvFormat::F16).err();
            assert!(matches!(e, Some(ClError::Shape { .. })), "{e:?}");
        }
        let kv = DeviceKv::new(gpu, 2, 4, 6, KvFormat::F32).unwrap();
        let at = v(4000, 1);
        // Stores: whole rows, as many values as keys, one position word, a layer and no more
        // rows than the cache holds.
        let mut store =
            |layer, at, keys, values| gpu.kv_store(&mut b, &kv, layer, at, keys, values);
        assert!(is_shape(store(0, at, v(0, 7), v(100, 7))));
        assert!(is_shape(store(0, at, v(0, 6), v(100, 12))));
        assert!(is_shape(store(0, v(4000, 2), v(0, 6), v(100, 6))));
        assert!(is_shape(store(2, at, v(0, 6), v(100, 6))));
        assert!(is_shape(store(0, at, v(0, 30), v(100, 30))));

        // Attention: query heads in whole groups of KV heads as wide as the cache's rows, one
        // position word, an output as long as the query, `rows * n_head * n_ctx` scores.
        let shape = |n_head, n_head_kv, head_dim| AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
        };
        let s = v(1000, 4 * 4);
        let mut attend = |q: usize, sh: AttentionShape, at, scores, out: usize| {
            gpu.attention(&mut b, v(0, q), &kv, 0, sh, at, scores, v(2000, out))
        };
        assert!(is_shape(attend(12, shape(3, 2, 3), at, s, 12)));
        assert!(is_shape(attend(12, shape(2, 0, 6), at, s, 12)));
        assert!(is_shape(attend(12, shape(2, 2, 6), at, s, 12)));
        assert!(is_shape(attend(13, shape(4, 2, 3), at, s, 13)));
        assert!(is_shape(attend(12, shape(4, 2, 3), v(4000, 0), s, 12)));
        assert!(is_shape(attend(12, shape(4, 2, 3), at, v(1000, 15), 12)));
        assert!(is_shape(attend(12, shape(4, 2, 3), at, s, 11)));
        let big = DeviceKv::new(gpu, 1, 1, 2 * 1028, KvFormat::F32).unwrap();
        let e = gpu.attention(
            &mut b,
            v(0, 2056),
            &big,
            0,
            shape(2, 2, 1028),
            at,
            v(3000, 2),
            v(0, 2056),
        );
        assert!(is_shape(e));
        assert_eq!(b.dispatches(), 0);
        // The shapes that fit.
        let q = shape(4, 2, 3);
        gpu.attention(&mut b, v(0, 12), &kv, 1, q, at, s, v(2000, 12))
            .unwrap();
        gpu.kv_store(&mut b, &kv, 1, at, v(0, 24), v(100, 24))
            .unwrap();
        assert_eq!(b.dispatches(), 3);
    }
}
