//! The matmul driver: activations quantized once per step, then the output rows split over
//! threads by panel, each thread walking its panels in cache-sized chunks and, within a
//! chunk, the tokens in kernel-sized tiles (GEMV when there is one token, GEMM otherwise).

use alloc::borrow::Cow;
use core::ops::Range;

use super::act::ActLayout;
use super::kernels::{ActTile, CpuKernels, MAX_TILE_TOKENS};
use super::panel::{F32Panels, PANEL_ROWS, PanelLayout, panel_count};
use super::split::{SharedMut, share};
use crate::backend::Parallel;
use crate::numerics::{ActivationFormat, round_activations};

/// Panels a thread finishes for every token tile before moving on: small enough that the
/// chunk stays in L2 while the tiles stream past it.
const PANEL_CHUNK: usize = 16;

/// A matrix in a CPU backend's layout: owned when packed at load, borrowed when mapped from
/// a packed-weight cache.
pub enum Packed<'w> {
    /// Integer codes in panels (the fast formats).
    Codes {
        /// The code format and the matrix's columns, which fix every panel's size.
        layout: PanelLayout,
        /// Rows of the matrix; the last panel pads them to [`PANEL_ROWS`] with zeros.
        rows: usize,
        /// [`panel_count`]`(rows)` panels of `layout.panel_bytes()` bytes each, as the
        /// backend's [`CpuKernels::pack_codes`] lays them out.
        data: Cow<'w, [u8]>,
    },
    /// Dequantized f32 panels; activations are first rounded as the file's format pairs them
    /// (see [`ActivationFormat`]).
    F32 {
        /// How activations are rounded before the multiply, as the file's format pairs them.
        activations: ActivationFormat,
        /// The dequantized matrix.
        panels: F32Panels<'w>,
    },
}

impl Packed<'_> {
    /// The packed data as bytes: what a packed-weight cache stores.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Packed::Codes { data, .. } => data,
            Packed::F32 { panels, .. } => panels.as_bytes(),
        }
    }

    /// Whether the data lives in this process's heap (else in a mapped cache file).
    pub fn is_owned(&self) -> bool {
        match self {
            Packed::Codes { data, .. } => matches!(data, Cow::Owned(_)),
            Packed::F32 { panels, .. } => matches!(panels.data, Cow::Owned(_)),
        }
    }

    /// Rows of the matrix: the outputs per token.
    pub fn rows(&self) -> usize {
        match self {
            Packed::Codes { rows, .. } => *rows,
            Packed::F32 { panels, .. } => panels.rows,
        }
    }

    /// Columns of the matrix: the inputs per token.
    pub fn cols(&self) -> usize {
        match self {
            Packed::Codes { layout, .. } => layout.cols,
            Packed::F32 { panels, .. } => panels.cols,
        }
    }
}

/// `out[t]` = W `x[t]` for every row of `x`. `scratch` holds `cols + 16` floats per row.
pub fn matmul<K: CpuKernels + ?Sized>(
    k: &K,
    w: &Packed<'_>,
    x: &[f32],
    out: &mut [f32],
    scratch: &mut [f32],
    par: &dyn Parallel,
) {
    let (rows, cols) = (w.rows(), w.cols());
    let n = x.len() / cols;
    let threads = par.n_threads().max(1);
    match w {
        Packed::Codes { layout, data, .. } => {
            let act = ActLayout::for_codes(layout.format, cols);
            let stride = act.stride();
            let acts = &mut as_bytes(scratch)[..n * stride];
            {
                let shared = SharedMut::new(acts);
                par.run(threads, &|i| {
                    for t in share(n, par, i) {
                        // SAFETY: each token's row is written by the one thread whose share
                        // holds the token.
                        let row = unsafe { shared.range(t * stride..(t + 1) * stride) };
                        k.quantize_row(act, &x[t * cols..(t + 1) * cols], row);
                    }
                });
            }
            let acts: &[u8] = acts;
            let panel_bytes = layout.panel_bytes();
            let group = k.panels_per_call().max(1);
            for_each_tile(k, rows, n, group, out, par, |panels, t0, nt, out| {
                let tile = ActTile {
                    layout: act,
                    bytes: &acts[t0 * stride..(t0 + nt) * stride],
                    n: nt,
                };
                let data = &data[panels.start * panel_bytes..panels.end * panel_bytes];
                k.gemm_codes(*layout, data, tile, out);
            });
        }
        Packed::F32 {
            activations,
            panels,
        } => {
            let xs = &mut scratch[..x.len()];
            xs.copy_from_slice(x);
            if *activations != ActivationFormat::F32 {
                let shared = SharedMut::new(xs);
                par.run(threads, &|i| {
                    let r = share(n, par, i);
                    // SAFETY: each thread rounds the rows of its own share.
                    let rows = unsafe { shared.range(r.start * cols..r.end * cols) };
                    rows.chunks_exact_mut(cols)
                        .for_each(|row| round_activations(*activations, row));
                });
            }
            let xs: &[f32] = xs;
            for_each_tile(k, rows, n, 1, out, par, |panel, t0, nt, out| {
                let x = &xs[t0 * cols..(t0 + nt) * cols];
                k.gemm_f32(cols, panels.panel(panel.start), x, out);
            });
        }
    }
}

/// Runs `tile(panels, first_token, n_tokens, out)` over every group of at most `group`
/// consecutive panels and every token tile, panels split over threads, and scatters each
/// tile's results (`n_tokens` rows per panel, panel-major) into `out` (token-major, `rows`
/// wide).
fn for_each_tile<K: CpuKernels + ?Sized>(
    k: &K,
    rows: usize,
    n: usize,
    group: usize,
    out: &mut [f32],
    par: &dyn Parallel,
    tile: impl Fn(Range<usize>, usize, usize, &mut [[f32; PANEL_ROWS]]) + Sync,
) {
    const MAX_GROUP: usize = 4;
    let group = group.clamp(1, MAX_GROUP);
    let n_panels = panel_count(rows);
    let tile_tokens = k.tile_tokens().clamp(1, MAX_TILE_TOKENS);
    let out = SharedMut::new(out);
    par.run(par.n_threads().max(1), &|i| {
        let mine = share(n_panels, par, i);
        let mut results = [[0f32; PANEL_ROWS]; MAX_TILE_TOKENS * MAX_GROUP];
        let mut chunk = mine.start;
        while chunk < mine.end {
            let chunk_end = (chunk + PANEL_CHUNK).min(mine.end);
            for t0 in (0..n).step_by(tile_tokens) {
                let nt = tile_tokens.min(n - t0);
                let mut first = chunk;
                while first < chunk_end {
                    let last = (first + group).min(chunk_end);
                    let results = &mut results[..(last - first) * nt];
                    tile(first..last, t0, nt, results);
                    for (p, block) in (first..last).zip(results.chunks_exact(nt)) {
                        let row0 = p * PANEL_ROWS;
                        let valid = PANEL_ROWS.min(rows - row0);
                        for (t, r) in block.iter().enumerate() {
                            let at = (t0 + t) * rows + row0;
                            // SAFETY: this thread alone owns the rows of its panels, in
                            // every token's output row.
                            let dst = unsafe { out.range(at..at + valid) };
                            dst.copy_from_slice(&r[..valid]);
                        }
                    }
                    first = last;
                }
            }
            chunk = chunk_end;
        }
    });
}

/// The scratch floats as bytes, for quantized activations.
fn as_bytes(floats: &mut [f32]) -> &mut [u8] {
    // SAFETY: u8 has no alignment requirement and every byte pattern is a valid u8 (and,
    // read back later as f32, a valid f32); the length covers exactly the same memory, and
    // the borrow of `floats` is handed over for the returned slice's lifetime.
    unsafe { core::slice::from_raw_parts_mut(floats.as_mut_ptr().cast::<u8>(), floats.len() * 4) }
}
