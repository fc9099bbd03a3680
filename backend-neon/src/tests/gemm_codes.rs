//! `gemm_codes` of every format, level and token count against `gemm_codes_scalar`, each
//! level reading the panels its own `pack_codes` wrote (the i8mm level's layout differs).

use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use tern_core::DType;
use tern_core::cpu::codes::{BlockCodes, CodeFormat, ZeroPoint};
use tern_core::cpu::{
    ActLayout, ActRow, ActTile, CpuKernels, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout,
    gemm_codes_scalar, pack_codes, panel_count, quantize_row,
};
use tern_core::model::WeightView;
use tern_core::quant::quantize;

use super::{Rng, levels};
use crate::NeonKernels;

/// A random problem: packed weights, quantized activation rows, and for every (token, row)
/// the magnitude `Σ (|s| (q + o) + |m|) |a|` that bounds every partial sum.
pub(crate) struct Problem {
    pub dtype: DType,
    pub rows: usize,
    pub layout: PanelLayout,
    /// The matrix in its file format.
    pub weights: Vec<u8>,
    /// In the portable layout, which the definition reads.
    pub packed: Vec<u8>,
    pub act: ActLayout,
    /// Unquantized activations, `n` rows of `cols`.
    pub x: Vec<f32>,
    pub acts: Vec<u8>,
    pub n: usize,
    pub magnitude: Vec<Vec<f64>>,
}

impl Problem {
    pub(crate) fn new(dtype: DType, rows: usize, blocks: usize, n: usize, seed: u64) -> Problem {
        let mut rng = Rng::new(seed);
        let cols = blocks * dtype.block_len();
        let w = rng.weights(rows, cols);
        let mut bytes = vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, &w, &mut bytes).unwrap();
        let view = WeightView {
            name: "w",
            dtype,
            rows,
            cols,
            data: &bytes,
        };
        let format = CodeFormat::of(dtype).unwrap();
        let layout = PanelLayout { format, cols };
        let packed = pack_codes(&view, layout);
        let act = ActLayout::for_codes(format, cols);
        let x = rng.activations(n * cols);
        let mut acts = vec![0u8; n * act.stride()];
        for (x, row) in x
            .chunks_exact(cols)
            .zip(acts.chunks_exact_mut(act.stride()))
        {
            quantize_row(act, x, row);
        }
        let magnitude = (0..n)
            .map(|t| {
                let a = ActRow {
                    layout: act,
                    bytes: &acts[t * act.stride()..][..act.stride()],
                };
                (0..rows).map(|r| magnitude(&view, format, a, r)).collect()
            })
            .collect();
        Problem {
            dtype,
            rows,
            layout,
            weights: bytes,
            packed,
            act,
            x,
            acts,
            n,
            magnitude,
        }
    }

    pub(crate) fn panel(&self, p: usize) -> &[u8] {
        let bytes = self.layout.panel_bytes();
        &self.packed[p * bytes..(p + 1) * bytes]
    }

    /// The matrix as `k` packs it.
    pub(crate) fn packed_for(&self, k: &NeonKernels) -> Vec<u8> {
        let view = WeightView {
            name: "w",
            dtype: self.dtype,
            rows: self.rows,
            cols: self.layout.cols,
            data: &self.weights,
        };
        let packed = k.pack_codes(&view, self.layout);
        assert_eq!(
            packed.len(),
            self.packed.len(),
            "{} {}",
            k.name(),
            self.dtype
        );
        packed
    }

    /// Compares `k`'s `gemm_codes` with the scalar definition on every panel, both reading
    /// `acts` (this problem's rows, or others bit-identical to them), in calls of one panel
    /// and of two (and of every count up to `k.panels_per_call()`; the last call of a matrix
    /// takes what is left). Each result must also be bit-identical to the one for its token alone in a
    /// one-panel call: a row's value may not depend on what it was batched with.
    pub(crate) fn check(&self, k: &NeonKernels, acts: &[u8]) -> Result<(), String> {
        let (n, bytes, panels) = (self.n, self.layout.panel_bytes(), panel_count(self.rows));
        let mine = self.packed_for(k);
        let my_panel = |p: usize| &mine[p * bytes..(p + 1) * bytes];
        let tile = ActTile {
            layout: self.act,
            bytes: acts,
            n,
        };
        let mut want = vec![[0f32; PANEL_ROWS]; panels * n];
        for (p, want) in want.chunks_exact_mut(n).enumerate() {
            gemm_codes_scalar(self.layout, self.panel(p), tile, want);
        }
        // Every token alone, one panel per call.
        let mut alone = vec![[f32::NAN; PANEL_ROWS]; panels * n];
        for (p, alone) in alone.chunks_exact_mut(n).enumerate() {
            for (t, out) in alone.iter_mut().enumerate() {
                let stride = self.act.stride();
                let one = ActTile {
                    layout: self.act,
                    bytes: &acts[t * stride..(t + 1) * stride],
                    n: 1,
                };
                k.gemm_codes(self.layout, my_panel(p), one, core::slice::from_mut(out));
            }
        }
        for group in 1..=k.panels_per_call().max(2) {
            let mut got = vec![[f32::NAN; PANEL_ROWS]; panels * n];
            for (first, got) in (0..panels).step_by(group).zip(got.chunks_mut(group * n)) {
                let count = group.min(panels - first);
                let data = &mine[first * bytes..(first + count) * bytes];
                k.gemm_codes(self.layout, data, tile, got);
            }
            for (i, ((g, w), a)) in got.iter().zip(&want).zip(&alone).enumerate() {
                let (p, t) = (i / n, i % n);
                for r in 0..PANEL_ROWS {
                    let row = p * PANEL_ROWS + r;
                    let m = self.magnitude[t].get(row).copied().unwrap_or(0.0);
                    let (g, w, a) = (g[r], w[r], a[r]);
                    // Huge activations can overflow f32 products: then the definition's
                    // infinity (or NaN) is required.
                    let close = if w.is_finite() {
                        f64::from(g - w).abs() <= 1e-5 * m
                    } else {
                        g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan())
                    };
                    let same = g.to_bits() == a.to_bits() || (g.is_nan() && a.is_nan());
                    if !close || !same {
                        return Err(format!(
                            "{} {} rows {} cols {} n {} panels per call {group}: token {t} \
                             row {row}: {g} vs {w} (magnitude {m}; alone {a})",
                            k.name(),
                            self.dtype,
                            self.rows,
                            self.layout.cols,
                            self.n,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `Σ (|s| (q + o) + |m|) |a|` over row `r`, from the file's blocks.
fn magnitude(w: &WeightView<'_>, format: CodeFormat, a: ActRow<'_>, r: usize) -> f64 {
    let offset = match format.zero {
        ZeroPoint::Offset(o) => f64::from(o),
        ZeroPoint::Min => 0.0,
    };
    let (len, bytes) = (w.dtype.block_len(), w.dtype.block_bytes());
    let row = w.row(r).unwrap();
    let mut codes = BlockCodes::new();
    let mut sum = 0.0;
    for (blk, block) in row.chunks_exact(bytes).enumerate() {
        assert!(codes.unpack(w.dtype, block));
        for i in 0..len {
            let col = blk * len + i;
            let sub = i / format.sub_block;
            let s = f64::from(codes.scales[sub]).abs();
            let m = f64::from(codes.mins[sub]).abs();
            let av = f64::from(a.d(col / format.sub_block) * f32::from(a.code(col))).abs();
            sum += (s * (f64::from(codes.q[i]) + offset) + m) * av;
        }
    }
    sum
}

fn check_all_levels(dtype: DType, rows: usize, blocks: usize, n: usize, seed: u64) {
    let problem = Problem::new(dtype, rows, blocks, n, seed);
    for k in levels() {
        problem.check(&k, &problem.acts).unwrap();
    }
}

fn blocks_of(dtype: DType) -> core::ops::RangeInclusive<usize> {
    if dtype.block_len() == 32 {
        1..=9
    } else {
        1..=3
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn q4_0(rows in 1usize..30, blocks in 1usize..=9, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q4_0, rows, blocks, n, seed);
    }

    #[test]
    fn q4_1(rows in 1usize..30, blocks in 1usize..=9, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q4_1, rows, blocks, n, seed);
    }

    #[test]
    fn q5_0(rows in 1usize..30, blocks in 1usize..=9, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q5_0, rows, blocks, n, seed);
    }

    #[test]
    fn q5_1(rows in 1usize..30, blocks in 1usize..=9, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q5_1, rows, blocks, n, seed);
    }

    #[test]
    fn q8_0(rows in 1usize..30, blocks in 1usize..=9, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q8_0, rows, blocks, n, seed);
    }

    #[test]
    fn q4_k(rows in 1usize..30, blocks in 1usize..=3, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q4_K, rows, blocks, n, seed);
    }

    #[test]
    fn q5_k(rows in 1usize..30, blocks in 1usize..=3, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q5_K, rows, blocks, n, seed);
    }

    #[test]
    fn q6_k(rows in 1usize..30, blocks in 1usize..=3, n in 1usize..=8, seed in any::<u64>()) {
        check_all_levels(DType::Q6_K, rows, blocks, n, seed);
    }
}

/// Codes at the extremes of their range (Q8_0's 0 and 255 against ±127 activations) are where
/// 16-bit saturation would show.
#[test]
fn extreme_codes_do_not_saturate() {
    for dtype in CodeFormat::DTYPES {
        let cols = dtype.block_len();
        let format = CodeFormat::of(dtype).unwrap();
        let rows = 16;
        let mut w = vec![0f32; rows * cols];
        for (i, w) in w.iter_mut().enumerate() {
            // Rows alternate all-maximum and all-minimum weights (with one opposite weight so
            // that every format's scale covers both ends).
            let (r, c) = (i / cols, i % cols);
            let sign = if r % 2 == 0 { 1.0 } else { -1.0 };
            *w = if c == 0 { -sign } else { sign };
        }
        let mut bytes = vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, &w, &mut bytes).unwrap();
        let view = WeightView {
            name: "w",
            dtype,
            rows,
            cols,
            data: &bytes,
        };
        let layout = PanelLayout { format, cols };
        let packed = pack_codes(&view, layout);
        let act = ActLayout::for_codes(format, cols);
        for x in [vec![1f32; cols], vec![-1f32; cols]] {
            let mut row = vec![0u8; act.stride()];
            quantize_row(act, &x, &mut row);
            let tile = ActTile {
                layout: act,
                bytes: &row,
                n: 1,
            };
            for k in levels() {
                let mine = k.pack_codes(&view, layout);
                for p in 0..panel_count(rows) {
                    let at = p * layout.panel_bytes()..(p + 1) * layout.panel_bytes();
                    let (mut want, mut got) = ([[0f32; 8]; 1], [[0f32; 8]; 1]);
                    gemm_codes_scalar(layout, &packed[at.clone()], tile, &mut want);
                    k.gemm_codes(layout, &mine[at], tile, &mut got);
                    for (g, w) in got[0].iter().zip(&want[0]) {
                        assert!(
                            (g - w).abs() <= 1e-5 * w.abs(),
                            "{} {dtype}: {g} vs {w}",
                            k.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_format_at_its_largest_shapes() {
    for dtype in CodeFormat::DTYPES {
        let blocks = *blocks_of(dtype).end();
        for n in 1..=MAX_TILE_TOKENS {
            check_all_levels(dtype, 40, blocks, n, n as u64);
        }
    }
}

/// Every code format takes a SIMD kernel at every level (the tests above would also pass on
/// the scalar fallback): a layout core changes under these kernels fails here.
#[cfg(target_arch = "aarch64")]
#[test]
fn every_format_takes_a_fast_path() {
    for k in levels() {
        for dtype in CodeFormat::DTYPES {
            let p = Problem::new(dtype, 9, 1, 3, 7);
            let packed = p.packed_for(&k);
            let tile = ActTile {
                layout: p.act,
                bytes: &p.acts,
                n: p.n,
            };
            let mut out = vec![[0f32; PANEL_ROWS]; panel_count(p.rows) * p.n];
            let bytes = p.layout.panel_bytes();
            for (panel, out) in packed.chunks_exact(bytes).zip(out.chunks_exact_mut(p.n)) {
                // SAFETY: `levels` holds only levels this CPU runs.
                let fast = unsafe {
                    crate::gemm_codes::gemm_codes(k.level(), p.layout, panel, &tile, out)
                };
                assert!(fast, "{} {dtype}: no SIMD kernel took the call", k.name());
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The i8mm layout holds the portable layout's codes: its own scalar definition (which
    /// the i8mm level falls back to) gives the same bits as core's on the portable panels.
    #[test]
    fn i8mm_layout_holds_the_portable_codes(
        which in 0usize..5, rows in 1usize..20, blocks in 1usize..4, n in 1usize..=8,
        seed in any::<u64>(),
    ) {
        let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0][which];
        let p = Problem::new(dtype, rows, blocks, n, seed);
        let view = WeightView {
            name: "w",
            dtype,
            rows,
            cols: p.layout.cols,
            data: &p.weights,
        };
        let pairs = crate::i8mm::layout::pack_codes(&view, p.layout);
        prop_assert_eq!(pairs.len(), p.packed.len());
        let tile = ActTile { layout: p.act, bytes: &p.acts, n };
        let panels = panel_count(rows);
        let mut want = vec![[0f32; PANEL_ROWS]; panels * n];
        for (i, want) in want.chunks_exact_mut(n).enumerate() {
            gemm_codes_scalar(p.layout, p.panel(i), tile, want);
        }
        let mut got = vec![[f32::NAN; PANEL_ROWS]; panels * n];
        crate::i8mm::layout::gemm_codes_scalar(p.layout, &pairs, tile, &mut got);
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            prop_assert_eq!(g.to_bits(), w.to_bits(), "{}: {} vs {}", dtype, g, w);
        }
    }
}
