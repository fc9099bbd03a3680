//! The microkernels a CPU backend supplies, and their scalar definitions.
//!
//! The driver ([`super::matmul`], [`super::attention`]) owns tiling, thread split and loop
//! order; a backend crate (x86, NEON) only supplies these small kernels over the shared panel
//! and activation layouts. Every method has a scalar default that *is* its definition: SIMD
//! versions must agree with it up to float summation order, and are property-tested against
//! it.

use half::f16;

use crate::kv::{BlockQ8_0, Fp8E4M3, Q8_BLOCK};

use super::act::{ActLayout, ActRow, quantize_row};
use super::codes::{FloatSteps, Scales, ZeroPoint};
use alloc::vec::Vec;

use super::panel::{PANEL_ROWS, PanelLayout, block_factor, pack_codes, packed_code, trailer_value};
use crate::backend::reference;
use crate::model::WeightView;
use crate::numerics::{ggml_kquant, ggml_math};

/// Most token rows one kernel call multiplies.
pub const MAX_TILE_TOKENS: usize = 8;

/// Calls `$kernel::<G.., N>(c, out)` with the generic arguments `G..` in brackets and the
/// token count `N = $n` (1 to [`MAX_TILE_TOKENS`]; any other count calls nothing), so a
/// backend compiles each kernel once per token count with its accumulators in registers:
/// `by_tokens!(n, avx2::gemm_codes[F], c, out)`.
#[macro_export]
macro_rules! by_tokens {
    ($n:expr, $($kernel:ident)::+ [$($g:tt),*], $c:expr, $out:expr) => {
        match $n {
            1 => $($kernel)::+::<$($g,)* 1>($c, $out),
            2 => $($kernel)::+::<$($g,)* 2>($c, $out),
            3 => $($kernel)::+::<$($g,)* 3>($c, $out),
            4 => $($kernel)::+::<$($g,)* 4>($c, $out),
            5 => $($kernel)::+::<$($g,)* 5>($c, $out),
            6 => $($kernel)::+::<$($g,)* 6>($c, $out),
            7 => $($kernel)::+::<$($g,)* 7>($c, $out),
            8 => $($kernel)::+::<$($g,)* 8>($c, $out),
            _ => {}
        }
    };
}

const _: () = assert!(MAX_TILE_TOKENS == 8, "by_tokens! covers 1 to 8 tokens");

/// A tile of consecutive quantized activation rows: `n` rows, `layout.stride()` bytes apart.
#[derive(Clone, Copy)]
pub struct ActTile<'a> {
    /// The layout of every row.
    pub layout: ActLayout,
    /// The rows, one after another: at least `n * layout.stride()` bytes.
    pub bytes: &'a [u8],
    /// Token rows in the tile: 1 to [`MAX_TILE_TOKENS`].
    pub n: usize,
}

impl<'a> ActTile<'a> {
    /// Token row `t` of the tile: its `layout.stride()` bytes from `t * layout.stride()` on.
    pub fn row(&self, t: usize) -> ActRow<'a> {
        let stride = self.layout.stride();
        ActRow {
            layout: self.layout,
            bytes: &self.bytes[t * stride..(t + 1) * stride],
        }
    }
}

/// Microkernels and their scalar definitions.
pub trait CpuKernels: Sync {
    /// The instruction set in use, for messages and benchmarks (e.g. "x86-avx512vnni").
    fn name(&self) -> &'static str;

    /// Token rows per `gemm_*` call this implementation is fastest with (at most
    /// [`MAX_TILE_TOKENS`]).
    fn tile_tokens(&self) -> usize {
        4
    }

    /// Repacks a matrix of a format with codes into panels of `layout.panel_bytes()` bytes
    /// each, in the layout this implementation's `gemm_codes` reads. The default is the
    /// portable layout that [`super::pack_codes`] writes.
    fn pack_codes(&self, w: &WeightView<'_>, layout: PanelLayout) -> Vec<u8> {
        pack_codes(w, layout)
    }

    /// Consecutive panels one `gemm_codes` call takes at most: more rows per call let wide
    /// vectors (16 rows of 32-bit lanes in 512 bits) share their per-sub-block work.
    fn panels_per_call(&self) -> usize {
        1
    }

    /// For each of the `panels.len() / layout.panel_bytes()` consecutive panels `p` (at most
    /// [`CpuKernels::panels_per_call`]) and each activation row `t` of `acts` (at most
    /// [`MAX_TILE_TOKENS`]): `out[p * acts.n + t][r]` = dot(row `r` of panel `p`, row `t`).
    fn gemm_codes(
        &self,
        layout: PanelLayout,
        panels: &[u8],
        acts: ActTile<'_>,
        out: &mut [[f32; PANEL_ROWS]],
    ) {
        let n = acts.n;
        for (panel, out) in panels
            .chunks_exact(layout.panel_bytes())
            .zip(out.chunks_exact_mut(n))
        {
            gemm_codes_scalar(layout, panel, acts, out);
        }
    }

    /// `out[t][r]` = dot(row `r` of the f32 `panel`, `x` row `t`) with rows of `cols`.
    fn gemm_f32(&self, cols: usize, panel: &[f32], x: &[f32], out: &mut [[f32; PANEL_ROWS]]) {
        gemm_f32_scalar(cols, panel, x, out);
    }

    /// Quantizes `x` into `row` (laid out as [`ActLayout`] says) exactly as
    /// [`super::quantize_row`] defines it.
    fn quantize_row(&self, layout: ActLayout, x: &[f32], row: &mut [u8]) {
        quantize_row(layout, x, row);
    }

    /// `gate[i] = silu(gate[i]) * up[i]` with ggml's vectorized SiLU
    /// ([`ggml_math::silu`]), as the reference computes it.
    fn swiglu(&self, gate: &mut [f32], up: &[f32]) {
        reference::swiglu(gate, up);
    }

    /// `x[i] = exp(x[i] - shift)` with ggml's vectorized exp ([`ggml_math::expf`]).
    fn exp_shifted(&self, x: &mut [f32], shift: f32) {
        x.iter_mut().for_each(|v| *v = ggml_math::expf(*v - shift));
    }

    /// `out[j] = Σ q[i] * rows[j * stride + i]` for every `j < out.len()`: attention's scores
    /// of one query head against a block of cached key rows.
    fn dot_rows_f16(&self, q: &[f32], rows: &[f16], stride: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.dot_f16(q, &rows[j * stride..j * stride + q.len()]);
        }
    }

    /// [`CpuKernels::dot_rows_f16`] for an f32 cache.
    fn dot_rows_f32(&self, q: &[f32], rows: &[f32], stride: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.dot_f32(q, &rows[j * stride..j * stride + q.len()]);
        }
    }

    /// `Σ a[i] * b[i]`.
    fn dot_f32(&self, a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    /// `Σ a[i] * b[i]` with `b` in f16.
    fn dot_f16(&self, a: &[f32], b: &[f16]) -> f32 {
        a.iter().zip(b).map(|(a, b)| a * b.to_f32()).sum()
    }

    /// `y[i] += a * x[i]`.
    fn axpy_f32(&self, y: &mut [f32], a: f32, x: &[f32]) {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
    }

    /// `y[i] += a * x[i]` with `x` in f16.
    fn axpy_f16(&self, y: &mut [f32], a: f32, x: &[f16]) {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x.to_f32());
    }

    /// Attention's scores of one query head (quantized to `q.len()` q8_0 blocks, codes within
    /// ±127) against a block of cached q8_0 key rows, `stride` blocks apart: for every
    /// `j < out.len()`, `out[j] = Σ_b (d_q[b] * d_k[b]) * idot_b as f32`, summed in f32 from
    /// zero in block order, where `idot_b` is the exact integer dot product of block `b`'s
    /// codes and `d_k`, `idot_b` read row `j`'s block `b`. SIMD versions compute `idot_b` in
    /// integers, so they agree with this to the bit.
    fn dot_rows_q8_0(&self, q: &[BlockQ8_0], rows: &[BlockQ8_0], stride: usize, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            let row = &rows[j * stride..j * stride + q.len()];
            *o = q.iter().zip(row).fold(0f32, |acc, (q, k)| {
                let idot: i32 =
                    q.qs.iter()
                        .zip(&k.qs)
                        .map(|(&a, &b)| i32::from(a) * i32::from(b))
                        .sum();
                acc + (q.d.to_f32() * k.d.to_f32()) * idot as f32
            });
        }
    }

    /// `y[32 * b + i] += (a * d_b) * qs_b[i]` for every block `b` of `x`: a value row in q8_0
    /// added into attention's accumulator, dequantized on the way.
    fn axpy_q8_0(&self, y: &mut [f32], a: f32, x: &[BlockQ8_0]) {
        for (y, x) in y.chunks_exact_mut(Q8_BLOCK).zip(x) {
            let s = a * x.d.to_f32();
            y.iter_mut()
                .zip(&x.qs)
                .for_each(|(y, &q)| *y += s * f32::from(q));
        }
    }

    /// `y[i] += a * x[i]` with `x` in FP8 E4M3.
    fn axpy_fp8(&self, y: &mut [f32], a: f32, x: &[Fp8E4M3]) {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x.to_f32());
    }
}

/// The scalar kernels: the definitions, and the fallback on CPUs without SIMD paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarKernels;

impl CpuKernels for ScalarKernels {
    fn name(&self) -> &'static str {
        "scalar"
    }
}

/// Definition of [`CpuKernels::gemm_codes`]. Per sub-block `b`, with integer dot
/// `idot = Σ q_w * q_a`:
///
/// - legacy formats, zero point `o`: `acc += (s_w * d_a) * (idot - o * isum_a) as f32`;
/// - legacy formats, minimum: `acc += (s_w * d_a) * idot as f32 + m_w * fsum_a`;
/// - K-quants sum each float step (a super-block, or a pair of sub-blocks: [`FloatSteps`])
///   in integers, `s1 = Σ sc * (idot - o * isum_a)` and `s2 = Σ m * isum_a`, then add
///   `(s1 * d - dmin * s2) * d_a` in ggml's order and roundings
///   ([`ggml_kquant::Accumulator::add`]).
pub fn gemm_codes_scalar(
    layout: PanelLayout,
    panel: &[u8],
    acts: ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    for (t, out) in out.iter_mut().enumerate().take(acts.n) {
        let a = acts.row(t);
        *out = match layout.format.scales {
            Scales::PerSubBlock => legacy_row_dots(layout, panel, a),
            Scales::SuperBlock(steps) => k_quant_row_dots(layout, steps, panel, a),
        };
    }
}

/// `Σ q_w * q_a` over sub-block `b` (packed at `sub`) for row `r`.
fn idot(layout: PanelLayout, sub: &[u8], a: ActRow<'_>, b: usize, r: usize) -> i32 {
    let sb = layout.format.sub_block;
    (0..sb)
        .map(|k| i32::from(packed_code(layout, sub, r, k)) * i32::from(a.code(b * sb + k)))
        .sum()
}

fn legacy_row_dots(layout: PanelLayout, panel: &[u8], a: ActRow<'_>) -> [f32; PANEL_ROWS] {
    let mut acc = [0f32; PANEL_ROWS];
    for (b, sub) in panel.chunks_exact(layout.sub_block_bytes()).enumerate() {
        let d_a = a.d(b);
        for (r, acc) in acc.iter_mut().enumerate() {
            let idot = idot(layout, sub, a, b, r);
            let scale = trailer_value(layout, sub, 0, r) * d_a;
            *acc += match layout.format.zero {
                ZeroPoint::Offset(o) => scale * (idot - i32::from(o) * a.isum(b)) as f32,
                ZeroPoint::Min => {
                    scale * idot as f32 + trailer_value(layout, sub, 1, r) * a.fsum(b)
                }
            };
        }
    }
    acc
}

fn k_quant_row_dots(
    layout: PanelLayout,
    steps: FloatSteps,
    panel: &[u8],
    a: ActRow<'_>,
) -> [f32; PANEL_ROWS] {
    let per = layout.subs_per_block();
    let step = steps.sub_blocks_per_step(per);
    let mut out = [0f32; PANEL_ROWS];
    for (r, out) in out.iter_mut().enumerate() {
        let mut acc = ggml_kquant::Accumulator::default();
        for (blk, block) in panel.chunks_exact(layout.block_bytes()).enumerate() {
            let d = block_factor(layout, block, 0, r);
            let dmin = if layout.has_mins() {
                block_factor(layout, block, 1, r)
            } else {
                0.0
            };
            let d_a = a.d(blk * per);
            for first in (0..per).step_by(step) {
                let (mut s1, mut s2) = (0i32, 0i32);
                for s in first..first + step {
                    let sub = &block[s * layout.sub_block_bytes()..][..layout.sub_block_bytes()];
                    let b = blk * per + s;
                    let sc = trailer_value(layout, sub, 0, r) as i32;
                    match layout.format.zero {
                        ZeroPoint::Offset(o) => {
                            s1 += sc * (idot(layout, sub, a, b, r) - i32::from(o) * a.isum(b));
                        }
                        ZeroPoint::Min => {
                            s1 += sc * idot(layout, sub, a, b, r);
                            s2 += trailer_value(layout, sub, 1, r) as i32 * a.isum(b);
                        }
                    }
                }
                acc.add(steps, [d, dmin, d_a], s1, s2);
            }
        }
        *out = acc.value();
    }
    out
}

/// Definition of [`CpuKernels::gemm_f32`].
pub fn gemm_f32_scalar(cols: usize, panel: &[f32], x: &[f32], out: &mut [[f32; PANEL_ROWS]]) {
    for (x, out) in x.chunks_exact(cols).zip(out.iter_mut()) {
        let mut acc = [0f32; PANEL_ROWS];
        for (k, &xv) in x.iter().enumerate() {
            let w = &panel[k * PANEL_ROWS..(k + 1) * PANEL_ROWS];
            for (acc, &w) in acc.iter_mut().zip(w) {
                *acc += w * xv;
            }
        }
        *out = acc;
    }
}
