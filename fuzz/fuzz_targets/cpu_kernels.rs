//! Every kernel of every CPU backend this machine runs (the scalar definitions, and x86's
//! AVX2 and AVX-512 VNNI levels where the CPU has them) against the reference backend, on
//! arbitrary shapes, thread splits and data: matrix products in every weight format,
//! attention over f32 and f16 caches, RoPE and SwiGLU through the backend interface, and the
//! activation quantizer and vector microkernels against their scalar definitions (with the
//! checks of the conformance suite in `tern_core::testing`).
#![no_main]

use arbitrary::Arbitrary;
use half::f16;
use libfuzzer_sys::fuzz_target;
use tern_core::DType;
use tern_core::backend::reference::{Reference, dequantize_row};
use tern_core::backend::{Backend, Parallel, Positions};
use tern_core::cpu::codes::CodeFormat;
use tern_core::cpu::{ActLayout, Cpu, CpuKernels, ScalarKernels};
use tern_core::kv::{BlockQ8_0 as Q8, DenseKv, Fp8E4M3 as Fp8, KvCache, KvElement};
use tern_core::model::{ModelConfig, RopeStyle, WeightRole, WeightView};
use tern_core::sample::Xoshiro256;
use tern_core::testing::conformance::{Matrix, exp, float, model_config, quantize};
use tern_fuzz::close::first_difference;

#[derive(Arbitrary, Debug)]
struct Input {
    threads: Threads,
    case: Case,
}

#[derive(Arbitrary, Debug)]
enum Case {
    Matmul {
        dtype: u8,
        rows: u8,
        blocks: u8,
        tokens: u8,
        weights: Data,
        x: Data,
    },
    Attention {
        n_head_kv: u8,
        group: u8,
        half_head_dim: u8,
        n_ctx: u16,
        first: u16,
        tokens: u8,
        /// Which key and value types the cache holds (see `KV_PAIRINGS`).
        cache: u8,
        data: Data,
    },
    Rope {
        n_head: u8,
        half_head_dim: u8,
        half_rope_dim: u8,
        first: u16,
        tokens: u8,
        half_split: bool,
        theta: u8,
        linear_scale: bool,
        x: Data,
    },
    Swiglu {
        len: u16,
        gate: Data,
        up: Data,
    },
    Micro {
        dtype: u8,
        blocks: u8,
        x: Data,
        y: Data,
        shift: i8,
    },
}

/// Values from the input's bytes, and past their end from a generator seeded by them (so
/// that a short input still fills a large matrix with varied data), scaled by a power of two.
#[derive(Arbitrary, Debug)]
struct Data {
    bytes: Vec<i8>,
    exponent: i8,
    seed: u64,
}

impl Data {
    /// `n` values; `min_exp..=max_exp` bounds the scale so that the references stay finite.
    fn values(&self, n: usize, min_exp: i32, max_exp: i32) -> Vec<f32> {
        let span = max_exp - min_exp + 1;
        let scale = 2f32.powi(min_exp + i32::from(self.exponent).rem_euclid(span)) / 128.0;
        let mut rng = Xoshiro256::seed_from_u64(self.seed);
        (0..n)
            .map(|i| {
                let v = match self.bytes.get(i) {
                    Some(&b) => b,
                    None => rng.next_u64() as i8,
                };
                f32::from(v) * scale
            })
            .collect()
    }
}

/// Up to four threads of arbitrary relative speed, their tasks run in an arbitrary order.
#[derive(Arbitrary, Debug)]
struct Threads {
    speeds: Vec<u8>,
    reverse: bool,
}

impl Parallel for Threads {
    fn n_threads(&self) -> usize {
        self.speeds.len().clamp(1, 4)
    }
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if self.reverse {
            (0..n_tasks).rev().for_each(task);
        } else {
            (0..n_tasks).for_each(task);
        }
    }
    fn speed(&self, thread: usize) -> f32 {
        f32::from(self.speeds.get(thread).copied().unwrap_or(1)) + 1.0
    }
}

fuzz_target!(|input: Input| {
    check(ScalarKernels, &input);
    #[cfg(target_arch = "x86_64")]
    for level in tern_backend_x86::Level::ALL {
        if let Some(kernels) = tern_backend_x86::X86Kernels::with_level(level) {
            check(kernels, &input);
        }
    }
});

fn check<K: CpuKernels>(kernels: K, input: &Input) {
    let par = &input.threads;
    let cpu = Cpu::new(kernels);
    let name = cpu.kernels.name();
    match input.case {
        Case::Matmul {
            dtype,
            rows,
            blocks,
            tokens,
            ref weights,
            ref x,
        } => {
            let dtype = DType::ALL[usize::from(dtype) % DType::ALL.len()];
            let rows = 1 + usize::from(rows) % 40;
            let blocks = 1 + usize::from(blocks) % 3;
            let n = 1 + usize::from(tokens) % 12;
            let cols = blocks * dtype.block_len().max(32);
            let matrix = Matrix::quantize(dtype, rows, cols, &weights.values(rows * cols, -20, 8));
            let view = matrix.view();
            let x = x.values(n * cols, -24, 12);
            let mut want = vec![0f32; n * rows];
            let mut scratch = vec![0f32; n * (cols + 16)];
            let w = Reference
                .prepare(view, WeightRole::Matrix)
                .expect("prepared");
            Reference.matmul(&w, &x, &mut want, &mut scratch, par);
            let w = cpu.prepare(view, WeightRole::Matrix).expect("prepared");
            let mut got = vec![0f32; n * rows];
            cpu.matmul(&w, &x, &mut got, &mut scratch, par);
            let scale = matmul_scale(&view, &x);
            if let Some(i) = first_difference(&got, &want, &scale, 1e-4) {
                panic!(
                    "{name} {dtype} {rows}x{cols} n={n}: out[{i}] = {} vs {}",
                    got[i], want[i]
                );
            }
        }
        Case::Attention {
            n_head_kv,
            group,
            half_head_dim,
            n_ctx,
            first,
            tokens,
            cache,
            ref data,
        } => {
            let cache = cache % 7;
            let n_head_kv = 1 + usize::from(n_head_kv) % 4;
            let head_dim = match cache {
                // A q8_0 half needs heads of whole blocks of 32, as the engine requires.
                3 | 5 | 6 => 32 * (1 + usize::from(half_head_dim) % 4),
                _ => 2 * (1 + usize::from(half_head_dim) % 40),
            };
            let n_head = n_head_kv * (1 + usize::from(group) % 4);
            let n_ctx = 1 + usize::from(n_ctx) % 320;
            let n_tok = 1 + usize::from(tokens) % n_ctx.min(9);
            let first = usize::from(first) % (n_ctx - n_tok + 1);
            let c = model_config(n_head, n_head_kv, head_dim);
            let args = (&cpu, &c, n_ctx, first, n_tok, data, par);
            // Keys and values: plain, mixed, and quantized (the one-pass path, q8_0 keys by
            // integer dot products, q8_0 and fp8 values dequantized as they accumulate).
            match cache {
                0 => attention::<f32, f32, K>(args),
                1 => attention::<f16, f16, K>(args),
                2 => attention::<f32, f16, K>(args),
                3 => attention::<Q8, Q8, K>(args),
                4 => attention::<f16, Fp8, K>(args),
                5 => attention::<Q8, Fp8, K>(args),
                _ => attention::<Q8, f16, K>(args),
            }
        }
        Case::Rope {
            n_head,
            half_head_dim,
            half_rope_dim,
            first,
            tokens,
            half_split,
            theta,
            linear_scale,
            ref x,
        } => {
            let n_head = 1 + usize::from(n_head) % 4;
            let head_dim = 2 * (1 + usize::from(half_head_dim) % 40);
            let mut c = model_config(n_head, n_head, head_dim);
            c.rope_dim = 2 * (1 + usize::from(half_rope_dim) % (head_dim / 2));
            c.rope_style = if half_split {
                RopeStyle::HalfSplit
            } else {
                RopeStyle::AdjacentPairs
            };
            c.rope_theta = [10_000.0, 500_000.0, 1e6, 100.0][usize::from(theta) % 4];
            c.rope_freq_scale = if linear_scale { 0.25 } else { 1.0 };
            let n_tok = 1 + usize::from(tokens) % 4;
            let first = usize::from(first) % 4096;
            let x = x.values(n_tok * c.q_width(), -8, 4);
            let (mut want, mut got) = (x.clone(), x);
            Reference.rope(&mut want, n_head, &c, Positions { first }, par);
            cpu.rope(&mut got, n_head, &c, Positions { first }, par);
            // Each head keeps its norm; ggml's angles (repeated products) and the
            // reference's differ by a few ulps, which at positions in the thousands is
            // ~1e-4 of a turn.
            let scale = head_norms(&want, head_dim);
            if let Some(i) = first_difference(&got, &want, &scale, 2e-3) {
                panic!(
                    "{name} rope {c:?} at {first}: [{i}] {} vs {}",
                    got[i], want[i]
                );
            }
        }
        Case::Swiglu {
            len,
            ref gate,
            ref up,
        } => {
            let len = 1 + usize::from(len) % 600;
            let g = gate.values(len, -10, 10);
            let u = up.values(len, -10, 10);
            let (mut want, mut got) = (g.clone(), g.clone());
            Reference.swiglu(&mut want, &u, par);
            cpu.swiglu(&mut got, &u, par);
            let scale: Vec<f32> = g.iter().zip(&u).map(|(g, u)| (g * u).abs()).collect();
            if let Some(i) = first_difference(&got, &want, &scale, 1e-5) {
                panic!(
                    "{name} swiglu({}, {}): {} vs {}",
                    g[i], u[i], got[i], want[i]
                );
            }
        }
        Case::Micro {
            dtype,
            blocks,
            ref x,
            ref y,
            shift,
        } => micro(&cpu.kernels, dtype, blocks, x, y, shift),
    }
}

/// Per output, the sum over the row of |weight| (plus the largest |weight| of its block,
/// which bounds the scale and minimum terms that cancel inside a block) times |x|.
fn matmul_scale(w: &WeightView<'_>, x: &[f32]) -> Vec<f32> {
    let block = w.dtype.block_len().max(32);
    let mut row = vec![0f32; w.cols];
    let bound: Vec<Vec<f32>> = (0..w.rows)
        .map(|r| {
            dequantize_row(w, r, &mut row);
            row.chunks(block)
                .flat_map(|b| {
                    let max = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                    b.iter().map(move |v| v.abs() + 2.0 * max)
                })
                .collect()
        })
        .collect();
    x.chunks_exact(w.cols)
        .flat_map(|x| {
            bound
                .iter()
                .map(move |b| b.iter().zip(x).map(|(b, x)| b * x.abs()).sum::<f32>())
        })
        .collect()
}

/// The Euclidean norm of each `width`-wide head, repeated for each of its elements.
fn head_norms(x: &[f32], width: usize) -> Vec<f32> {
    x.chunks(width)
        .flat_map(|h| {
            let norm = h.iter().map(|v| v * v).sum::<f32>().sqrt();
            std::iter::repeat_n(norm, h.len())
        })
        .collect()
}

/// The CPU backend's attention against the reference's, on a cache of keys `KE` and values
/// `VE`: (the backend, the model, n_ctx, the first position, tokens, data, threads).
type AttentionCase<'a, K> = (
    &'a Cpu<K>,
    &'a ModelConfig,
    usize,
    usize,
    usize,
    &'a Data,
    &'a Threads,
);

fn attention<KE, VE, K>((cpu, c, n_ctx, first, n_tok, data, par): AttentionCase<'_, K>)
where
    KE: KvElement + Sync,
    VE: KvElement + Sync,
    DenseKv<KE, Vec<KE>, VE, Vec<VE>>: KvCache,
    K: CpuKernels,
{
    let width = c.kv_width();
    let filled = first + n_tok;
    let mut kv =
        DenseKv::<KE, Vec<KE>, VE, Vec<VE>>::zeroed(1, n_ctx, width).expect("a small cache");
    let values = data.values(2 * filled * width + n_tok * c.q_width(), -6, 3);
    let (cache, q) = values.split_at(2 * filled * width);
    for (pos, kv_row) in cache.chunks_exact(2 * width).enumerate() {
        let (k, v) = kv_row.split_at(width);
        kv.write(0, pos, k, v).expect("inside the cache");
    }
    let at = Positions { first };
    let mut scores = vec![0f32; n_ctx];
    let mut want = vec![0f32; q.len()];
    Reference.attention(q, &kv, 0, c, at, &mut scores, &mut want, par);
    let mut got = vec![0f32; q.len()];
    Backend::attention(cpu, q, &kv, 0, c, at, &mut scores, &mut got, par);
    // Each output is a convex combination of cached values: bound its error by the largest
    // value of its dimension.
    let max_v = |head: usize, d: usize| {
        (0..filled)
            .map(|pos| kv.value(0, pos).get(head * c.head_dim + d).abs())
            .fold(0f32, f32::max)
    };
    let scale: Vec<f32> = (0..q.len())
        .map(|i| {
            let head = (i % c.q_width()) / c.head_dim;
            max_v(head / c.group_size(), i % c.head_dim)
        })
        .collect();
    if let Some(i) = first_difference(&got, &want, &scale, 1e-3) {
        panic!(
            "{} attention {c:?} n_ctx={n_ctx} first={first} n_tok={n_tok}: [{i}] {} vs {}",
            cpu.kernels.name(),
            got[i],
            want[i]
        );
    }
}

/// The activation quantizer, the dot products, `axpy`, `exp_shifted` and `swiglu` against
/// their scalar definitions, under the conformance suite's rules.
fn micro<K: CpuKernels>(k: &K, dtype: u8, blocks: u8, x: &Data, y: &Data, shift: i8) {
    let k = core::slice::from_ref(k);
    let dtype = CodeFormat::DTYPES[usize::from(dtype) % CodeFormat::DTYPES.len()];
    let format = CodeFormat::of(dtype).expect("a code format");
    let cols = (1 + usize::from(blocks) % 4) * dtype.block_len();
    let xs = x.values(cols, -30, 20);
    quantize::check(k, ActLayout::for_codes(format, cols), &xs).unwrap();
    let ys = y.values(cols, -10, 10);
    let y16: Vec<f16> = ys.iter().map(|&v| f16::from_f32(v)).collect();
    float::check_dots(k, &xs, &ys, &y16).unwrap();
    let x16: Vec<f16> = xs.iter().map(|&v| f16::from_f32(v)).collect();
    let a = ys.first().copied().unwrap_or(1.0);
    float::check_axpy(k, &ys, a, &xs, &x16).unwrap();
    exp::check(k, &y.values(cols, -4, 6), &ys, f32::from(shift)).unwrap();
}
