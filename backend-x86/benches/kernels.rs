//! Microkernel throughput, one thread: GEMV (one token) and GEMM (a tile of 8 tokens) per
//! format and level, attention's f16 dot/axpy loops, SwiGLU and softmax's exp, and memcpy
//! bandwidth for scale.
//!
//! `cargo bench -p tern-backend-x86 --bench kernels [-- FILTER]`. GEMV reports GB/s of panel
//! bytes (the matrices of 4864 rows fit this machine's L3; `gemv_dram` streams 192 MiB
//! from memory), GEMM reports Gelem/s = GOPS (2 operations per multiply-add), `activation`
//! Gelem/s = elements per ns.
// `criterion_main!` writes a public `main` without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::f16;
use tern_backend_x86::{Level, X86Kernels};
use tern_core::DType;
use tern_core::backend::Sequential;
use tern_core::cpu::attention as attention_driver;
use tern_core::cpu::codes::CodeFormat;
use tern_core::cpu::{
    ActLayout, ActTile, CpuKernels, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout, panel_count,
};
use tern_core::kv::{DenseKv, KvCache};
use tern_core::model::{Arch, ModelConfig, RopeStyle};
use tern_core::sample::Xoshiro256;

const ROWS: usize = 4864;

fn levels() -> Vec<X86Kernels> {
    [Level::Avx512Vnni, Level::Avx2]
        .into_iter()
        .filter_map(|l| {
            let k = X86Kernels::with_level(l);
            if k.is_none() {
                eprintln!("note: this CPU lacks {}; not measured", l.name());
            }
            k
        })
        .collect()
}

/// `cols` rounded up to whole blocks of `dtype`: K-quant rows are multiples of 256, so
/// their "896" case is 1024.
fn whole_blocks(dtype: DType, cols: usize) -> usize {
    cols.next_multiple_of(dtype.block_len())
}

/// Panels of random valid codes with small scales (and minimums): the kernels' cost does not
/// depend on the values, so no quantizer needs to run.
fn random_panels(
    format: CodeFormat,
    rows: usize,
    cols: usize,
    seed: u64,
) -> (PanelLayout, Vec<u8>) {
    let layout = PanelLayout { format, cols };
    let mut rng = Xoshiro256::seed_from_u64(seed);
    let mut data = vec![0u8; panel_count(rows) * layout.panel_bytes()];
    let mask = match format.bits {
        4 | 8 => 0xff,
        bits => (1u8 << bits) - 1,
    };
    let mut small_f16 = |v: &mut [u8]| {
        let x = (rng.next_f64() as f32 - 0.5) * 0.01;
        v.copy_from_slice(&f16::from_f32(x).to_le_bytes());
    };
    let mut next = Xoshiro256::seed_from_u64(seed ^ 1);
    for block in data.chunks_exact_mut(layout.block_bytes()) {
        let (subs, factors) = block.split_at_mut(block.len() - layout.factor_bytes());
        for sub in subs.chunks_exact_mut(layout.sub_block_bytes()) {
            let (codes, trailer) = sub.split_at_mut(layout.code_bytes());
            codes
                .iter_mut()
                .for_each(|b| *b = next.next_u64() as u8 & mask);
            if layout.scale_size() == 2 {
                trailer.chunks_exact_mut(2).for_each(&mut small_f16);
            } else {
                trailer
                    .iter_mut()
                    .for_each(|b| *b = next.next_u64() as u8 & 0x3f);
            }
        }
        factors.chunks_exact_mut(2).for_each(&mut small_f16);
    }
    (layout, data)
}

/// `n` quantized activation rows for `format`.
fn activations(k: &X86Kernels, format: CodeFormat, cols: usize, n: usize) -> (ActLayout, Vec<u8>) {
    let layout = ActLayout::for_codes(format, cols);
    let mut rng = Xoshiro256::seed_from_u64(7);
    let mut acts = vec![0u8; n * layout.stride()];
    for row in acts.chunks_exact_mut(layout.stride()) {
        let x: Vec<f32> = (0..cols).map(|_| rng.next_f64() as f32 - 0.5).collect();
        k.quantize_row(layout, &x, row);
    }
    (layout, acts)
}

/// `out` for every panel of `data`, `group` panels per call (the driver's
/// `k.panels_per_call()`, or fewer), `tile.n` tokens at a time.
fn run_panels(
    k: &X86Kernels,
    layout: PanelLayout,
    data: &[u8],
    tile: ActTile<'_>,
    group: usize,
) -> f32 {
    let mut out = [[0f32; PANEL_ROWS]; 2 * MAX_TILE_TOKENS];
    let mut sum = 0.0;
    for panels in data.chunks_exact(group * layout.panel_bytes()) {
        k.gemm_codes(layout, panels, tile, &mut out[..group * tile.n]);
        sum += out[0][0];
    }
    sum
}

fn gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv");
    for k in levels() {
        for dtype in CodeFormat::DTYPES {
            let format = CodeFormat::of(dtype).unwrap();
            for cols in [896, 4864] {
                let cols = whole_blocks(dtype, cols);
                let (layout, data) = random_panels(format, ROWS, cols, 1);
                let (act, acts) = activations(&k, format, cols, 1);
                let tile = ActTile {
                    layout: act,
                    bytes: &acts,
                    n: 1,
                };
                g.throughput(Throughput::Bytes(data.len() as u64));
                let id = BenchmarkId::new(format!("{}/{}", k.name(), dtype), cols);
                g.bench_function(id, |b| {
                    b.iter(|| run_panels(&k, layout, black_box(&data), tile, k.panels_per_call()))
                });
            }
        }
    }
    g.finish();
}

/// GEMV over matrices of 256 to 550 KiB (in L2): the kernels' own speed, memory aside.
fn gemv_l2(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv_l2");
    for k in levels() {
        for dtype in CodeFormat::DTYPES {
            let format = CodeFormat::of(dtype).unwrap();
            for (rows, cols) in [(512, 896), (96, 4864)] {
                let cols = whole_blocks(dtype, cols);
                let (layout, data) = random_panels(format, rows, cols, 4);
                let (act, acts) = activations(&k, format, cols, 1);
                let tile = ActTile {
                    layout: act,
                    bytes: &acts,
                    n: 1,
                };
                g.throughput(Throughput::Bytes(data.len() as u64));
                let id = BenchmarkId::new(format!("{}/{}", k.name(), dtype), cols);
                g.bench_function(id, |b| {
                    b.iter(|| run_panels(&k, layout, black_box(&data), tile, k.panels_per_call()))
                });
            }
        }
    }
    g.finish();
}

/// GEMV over a matrix four times the size of the L3: decode's memory-bound case.
fn gemv_dram(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv_dram");
    g.sample_size(10);
    for k in levels() {
        for dtype in [DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K] {
            let format = CodeFormat::of(dtype).unwrap();
            let cols = 4864;
            let layout = PanelLayout { format, cols };
            let rows = (192 << 20) / layout.panel_bytes() * PANEL_ROWS;
            let (layout, data) = random_panels(format, rows, cols, 2);
            let (act, acts) = activations(&k, format, cols, 1);
            let tile = ActTile {
                layout: act,
                bytes: &acts,
                n: 1,
            };
            g.throughput(Throughput::Bytes(data.len() as u64));
            let id = BenchmarkId::new(format!("{}/{}", k.name(), dtype), cols);
            g.bench_function(id, |b| {
                b.iter(|| run_panels(&k, layout, black_box(&data), tile, k.panels_per_call()))
            });
        }
    }
    g.finish();
}

/// A tile of 8 tokens over 32 panels (256 rows), the driver's cache-sized chunk order, one
/// panel per call (`gemm8`) and two (`gemm8x2`, where the level takes two).
fn gemm(c: &mut Criterion) {
    for group in [1, 2] {
        let name = if group == 1 { "gemm8" } else { "gemm8x2" };
        let mut g = c.benchmark_group(name);
        for k in levels()
            .into_iter()
            .filter(|k| k.panels_per_call() >= group)
        {
            for dtype in CodeFormat::DTYPES {
                gemm_case(&mut g, &k, dtype, group, MAX_TILE_TOKENS);
            }
        }
        g.finish();
    }
}

/// Tiles of 2 to 8 tokens, as many panels per call as the level takes: the tile size to pick.
fn gemm_tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_tokens");
    for k in levels() {
        for dtype in [DType::Q4_0, DType::Q8_0, DType::Q6_K] {
            for n in [2, 4, 6, 8] {
                gemm_case(&mut g, &k, dtype, k.panels_per_call(), n);
            }
        }
    }
    g.finish();
}

fn gemm_case(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    k: &X86Kernels,
    dtype: DType,
    group: usize,
    n: usize,
) {
    let format = CodeFormat::of(dtype).unwrap();
    for cols in [896, 4864] {
        let cols = whole_blocks(dtype, cols);
        let (layout, data) = random_panels(format, 32 * PANEL_ROWS, cols, 3);
        let (act, acts) = activations(k, format, cols, n);
        let tile = ActTile {
            layout: act,
            bytes: &acts,
            n,
        };
        g.throughput(Throughput::Elements(
            (2 * 32 * PANEL_ROWS * cols * n) as u64,
        ));
        let name = if n == MAX_TILE_TOKENS {
            format!("{}/{}", k.name(), dtype)
        } else {
            format!("{}/{}/n{n}", k.name(), dtype)
        };
        g.bench_function(BenchmarkId::new(name, cols), |b| {
            b.iter(|| run_panels(k, layout, black_box(&data), tile, group))
        });
    }
}

/// One head's scores (one row per call, and 32 rows per call as attention makes them) and
/// weighted sum over `positions` f16 rows of 64.
fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention");
    const HEAD_DIM: usize = 64;
    let mut rng = Xoshiro256::seed_from_u64(5);
    for k in levels() {
        for positions in [512, 4096] {
            let keys: Vec<f16> = (0..positions * HEAD_DIM)
                .map(|_| f16::from_f32(rng.next_f64() as f32 - 0.5))
                .collect();
            let q: Vec<f32> = (0..HEAD_DIM).map(|_| rng.next_f64() as f32 - 0.5).collect();
            g.throughput(Throughput::Bytes((keys.len() * 2) as u64));
            let id = BenchmarkId::new(format!("{}/dot_f16", k.name()), positions);
            g.bench_function(id, |b| {
                b.iter(|| {
                    keys.chunks_exact(HEAD_DIM)
                        .map(|key| k.dot_f16(black_box(&q), key))
                        .sum::<f32>()
                })
            });
            // Attention's calls: 32 rows at a time.
            let id = BenchmarkId::new(format!("{}/dot_rows_f16", k.name()), positions);
            let mut scores = [0f32; 32];
            g.bench_function(id, |b| {
                b.iter(|| {
                    for rows in keys.chunks_exact(32 * HEAD_DIM) {
                        k.dot_rows_f16(black_box(&q), rows, HEAD_DIM, &mut scores);
                    }
                    scores[0]
                })
            });
            let keys32: Vec<f32> = keys.iter().map(|v| v.to_f32()).collect();
            let id = BenchmarkId::new(format!("{}/dot_rows_f32", k.name()), positions);
            g.bench_function(id, |b| {
                b.iter(|| {
                    for rows in keys32.chunks_exact(32 * HEAD_DIM) {
                        k.dot_rows_f32(black_box(&q), rows, HEAD_DIM, &mut scores);
                    }
                    scores[0]
                })
            });
            let id = BenchmarkId::new(format!("{}/axpy_f16", k.name()), positions);
            let mut out = [0f32; HEAD_DIM];
            g.bench_function(id, |b| {
                b.iter(|| {
                    for (i, value) in keys.chunks_exact(HEAD_DIM).enumerate() {
                        k.axpy_f16(&mut out, i as f32 * 1e-4, black_box(value));
                    }
                    out[0]
                })
            });
        }
    }
    g.finish();
}

/// The whole attention of one decode step (the driver: online softmax over blocks of keys,
/// GQA groups) with Qwen2.5-0.5B's heads (14 query, 2 KV, 64 wide) over an f16 cache.
fn attention_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention_step");
    let config = ModelConfig {
        arch: Arch::Qwen2,
        n_vocab: 32,
        n_embd: 896,
        n_layer: 1,
        n_head: 14,
        n_head_kv: 2,
        head_dim: 64,
        n_ff: 4864,
        n_ctx_train: 4096,
        rms_eps: 1e-6,
        rope_theta: 1e6,
        rope_freq_scale: 1.0,
        rope_dim: 64,
        rope_style: RopeStyle::HalfSplit,
        qkv_bias: true,
        qk_norm: false,
    };
    let mut rng = Xoshiro256::seed_from_u64(9);
    for k in levels() {
        for positions in [512, 4096] {
            let mut kv =
                DenseKv::<f16, Vec<f16>>::zeroed(1, positions, config.kv_width()).expect("cache");
            for pos in 0..positions {
                let row: Vec<f32> = (0..config.kv_width())
                    .map(|_| rng.next_f64() as f32 - 0.5)
                    .collect();
                kv.write(0, pos, &row, &row).expect("write");
            }
            let q: Vec<f32> = (0..config.q_width())
                .map(|_| rng.next_f64() as f32 - 0.5)
                .collect();
            let mut out = vec![0f32; config.q_width()];
            let id = BenchmarkId::new(k.name(), positions);
            g.bench_function(id, |b| {
                b.iter(|| {
                    let first = positions - 1;
                    attention_driver(
                        &k,
                        black_box(&q),
                        &kv,
                        0,
                        &config,
                        first,
                        &mut out,
                        &Sequential,
                    );
                    out[0]
                })
            });
        }
    }
    g.finish();
}

/// `quantize_row` of one activation row of 896 and of 4864 for Q4_0 (Q8_0 blocks) and Q4_K
/// (Q8_K blocks): Gelem/s = values per ns.
fn quantize(c: &mut Criterion) {
    let mut g = c.benchmark_group("quantize");
    let mut rng = Xoshiro256::seed_from_u64(8);
    for k in levels() {
        for dtype in [DType::Q4_0, DType::Q4_K] {
            for cols in [896, 4864] {
                let cols = cols / 256 * 256 + if dtype == DType::Q4_K { 0 } else { cols % 256 };
                let layout = ActLayout::for_codes(CodeFormat::of(dtype).unwrap(), cols);
                let x: Vec<f32> = (0..cols).map(|_| rng.next_f64() as f32 - 0.5).collect();
                let mut row = vec![0u8; layout.stride()];
                g.throughput(Throughput::Elements(cols as u64));
                let id = BenchmarkId::new(format!("{}/{}", k.name(), dtype), cols);
                g.bench_function(id, |b| {
                    b.iter(|| {
                        k.quantize_row(layout, black_box(&x), &mut row);
                        row[0]
                    })
                });
            }
        }
    }
    g.finish();
}

/// `swiglu` and `exp_shifted` over one row of 4864 (an FFN width), the scalar definitions
/// included; every iteration starts from the same (untimed) copy of the input.
fn activation(c: &mut Criterion) {
    let mut g = c.benchmark_group("activation");
    let len = 4864;
    let mut rng = Xoshiro256::seed_from_u64(6);
    let mut uniform = |width: f64| -> Vec<f32> {
        (0..len)
            .map(|_| ((rng.next_f64() - 0.5) * width) as f32)
            .collect()
    };
    let (gate, up, scores) = (uniform(16.0), uniform(4.0), uniform(40.0));
    g.throughput(Throughput::Elements(len as u64));
    let scalar = X86Kernels::with_level(Level::Scalar).unwrap();
    for k in levels().into_iter().chain([scalar]) {
        g.bench_function(BenchmarkId::new(format!("{}/swiglu", k.name()), len), |b| {
            b.iter_batched_ref(
                || gate.clone(),
                |x| k.swiglu(x, black_box(&up)),
                BatchSize::SmallInput,
            )
        });
        let id = BenchmarkId::new(format!("{}/exp_shifted", k.name()), len);
        g.bench_function(id, |b| {
            b.iter_batched_ref(
                || scores.clone(),
                |x| k.exp_shifted(x, black_box(20.0)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// memcpy of a 256 MiB buffer: bytes copied per second (each read once and written once);
/// and the same buffer only read.
fn memcpy(c: &mut Criterion) {
    let mut g = c.benchmark_group("memcpy");
    g.sample_size(10);
    let len = 256 << 20;
    let src = vec![1u8; len];
    let mut dst = vec![0u8; len];
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("256MiB", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&src));
            dst[len / 2]
        })
    });
    // Reading alone (a sum the compiler vectorizes): the ceiling of a memory-bound GEMV.
    g.bench_function("read-256MiB", |b| {
        b.iter(|| {
            black_box(&src)
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .fold(0u64, u64::wrapping_add)
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = memcpy, gemv_l2, gemv, gemv_dram, gemm, gemm_tokens, attention, attention_step,
        quantize, activation
}
criterion_main!(benches);
