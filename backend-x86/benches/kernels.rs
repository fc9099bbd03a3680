//! Microkernel throughput, one thread: GEMV (one token) and GEMM (a tile of 8 tokens) per
//! format and level, attention's f16 dot/axpy loops, and memcpy bandwidth for scale.
//!
//! `cargo bench -p tern-backend-x86 --bench kernels [-- FILTER]`. GEMV reports GB/s of panel
//! bytes (the matrices of 4864 rows fit this machine's L3; `gemv_dram` streams 192 MiB
//! from memory), GEMM reports Gelem/s = GOPS (2 operations per multiply-add).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::f16;
use tern_backend_x86::{Level, X86Kernels};
use tern_core::DType;
use tern_core::cpu::codes::CodeFormat;
use tern_core::cpu::{
    ActLayout, ActTile, CpuKernels, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout, panel_count,
};
use tern_core::sample::Xoshiro256;

const FORMATS: [DType; 8] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
    DType::Q4_K,
    DType::Q5_K,
    DType::Q6_K,
];
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
    let size = layout.scale_size();
    for sub in data.chunks_exact_mut(layout.sub_block_bytes()) {
        let (codes, trailer) = sub.split_at_mut(layout.code_bytes());
        codes
            .iter_mut()
            .for_each(|b| *b = rng.next_u64() as u8 & mask);
        for v in trailer.chunks_exact_mut(size) {
            let x = (rng.next_f64() as f32 - 0.5) * 0.01;
            if size == 2 {
                v.copy_from_slice(&f16::from_f32(x).to_le_bytes());
            } else {
                v.copy_from_slice(&x.to_le_bytes());
            }
        }
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

/// `out` for every panel of `data`, `n` tokens at a time.
fn run_panels(k: &X86Kernels, layout: PanelLayout, data: &[u8], tile: ActTile<'_>) -> f32 {
    let mut out = [[0f32; PANEL_ROWS]; MAX_TILE_TOKENS];
    let mut sum = 0.0;
    for panel in data.chunks_exact(layout.panel_bytes()) {
        k.gemm_codes(layout, panel, tile, &mut out[..tile.n]);
        sum += out[0][0];
    }
    sum
}

fn gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemv");
    for k in levels() {
        for dtype in FORMATS {
            let format = CodeFormat::of(dtype).unwrap();
            for cols in [896, 4864] {
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
                    b.iter(|| run_panels(&k, layout, black_box(&data), tile))
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
        for dtype in FORMATS {
            let format = CodeFormat::of(dtype).unwrap();
            for (rows, cols) in [(512, 896), (96, 4864)] {
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
                    b.iter(|| run_panels(&k, layout, black_box(&data), tile))
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
                b.iter(|| run_panels(&k, layout, black_box(&data), tile))
            });
        }
    }
    g.finish();
}

/// A tile of 8 tokens over 32 panels (256 rows), the driver's cache-sized chunk order.
fn gemm(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm8");
    let n = MAX_TILE_TOKENS;
    for k in levels() {
        for dtype in FORMATS {
            let format = CodeFormat::of(dtype).unwrap();
            for cols in [896, 4864] {
                let (layout, data) = random_panels(format, 32 * PANEL_ROWS, cols, 3);
                let (act, acts) = activations(&k, format, cols, n);
                let tile = ActTile {
                    layout: act,
                    bytes: &acts,
                    n,
                };
                g.throughput(Throughput::Elements(
                    (2 * 32 * PANEL_ROWS * cols * n) as u64,
                ));
                let id = BenchmarkId::new(format!("{}/{}", k.name(), dtype), cols);
                g.bench_function(id, |b| {
                    b.iter(|| run_panels(&k, layout, black_box(&data), tile))
                });
            }
        }
    }
    g.finish();
}

/// One head's scores and weighted sum over `positions` f16 rows of 64.
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
    targets = memcpy, gemv_l2, gemv, gemv_dram, gemm, attention
}
criterion_main!(benches);
