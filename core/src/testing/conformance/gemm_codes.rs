//! `gemm_codes` of every format, kernel set and token count against `gemm_codes_scalar`,
//! each kernel set reading the panels its own `pack_codes` wrote (a level's layout may
//! differ from the portable one), under [`super::tolerance::gemm_codes`]'s rule.

use std::format;
use std::string::String;
use std::vec;

use proptest::prelude::*;

use super::{Matrix, Problem, Suite, blocks_of, same_bits};
use crate::DType;
use crate::cpu::codes::CodeFormat;
use crate::cpu::{
    ActLayout, ActTile, CpuKernels, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout, gemm_codes_scalar,
    pack_codes, panel_count, quantize_row,
};

impl Problem {
    /// Compares `k`'s `gemm_codes` with the scalar definition on every panel, both reading
    /// `acts` (this problem's rows, or others bit-identical to them), in calls of one panel
    /// and of two (and of every count up to `k.panels_per_call()`; the last call of a
    /// matrix takes what is left). Each result must also be bit-identical to the one for its
    /// token alone in a one-panel call: a row's value may not depend on what it was batched
    /// with.
    pub fn check<K: CpuKernels>(&self, k: &K, acts: &[u8]) -> Result<(), String> {
        let (n, bytes, panels) = (self.n, self.layout.panel_bytes(), self.panels());
        let rule = super::tolerance::gemm_codes(self.layout.format);
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
                    if !rule.holds_f64(g, w, m) || !same_bits(g, a) {
                        return Err(format!(
                            "{} {} rows {} cols {} n {} panels per call {group}: token {t} \
                             row {row}: {g} vs {w} (magnitude {m}; alone {a})",
                            k.name(),
                            self.matrix.dtype,
                            self.matrix.rows,
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

fn check_all_levels<K: CpuKernels>(
    levels: &[K],
    dtype: DType,
    rows: usize,
    blocks: usize,
    n: usize,
    seed: u64,
) -> Result<(), String> {
    let problem = Problem::new(dtype, rows, blocks, n, seed);
    levels
        .iter()
        .try_for_each(|k| problem.check(k, &problem.acts))
}

/// Random problems of `dtype` (a format with codes): partial panels, every block tail, one
/// to [`MAX_TILE_TOKENS`] tokens.
pub fn one_format<K: CpuKernels>(suite: &Suite<K>, dtype: DType) {
    let b = suite.budget;
    let strategy = (
        1usize..b.gemm_codes_rows,
        blocks_of(dtype),
        1usize..=MAX_TILE_TOKENS,
        any::<u64>(),
    );
    suite.run(b.gemm_codes_cases, strategy, |(rows, blocks, n, seed)| {
        check_all_levels(&suite.levels, dtype, rows, blocks, n, seed).map_err(TestCaseError::fail)
    });
}

/// One [`one_format`] property per format with codes, named after it.
macro_rules! each_format {
    ($($name:ident: $dtype:ident),*) => {
        $(
            #[doc = concat!("[`one_format`] of ", stringify!($dtype), ".")]
            pub fn $name<K: CpuKernels>(suite: &Suite<K>) {
                one_format(suite, DType::$dtype);
            }
        )*
    };
}

each_format!(
    q4_0: Q4_0,
    q4_1: Q4_1,
    q5_0: Q5_0,
    q5_1: Q5_1,
    q8_0: Q8_0,
    q4_k: Q4_K,
    q5_k: Q5_K,
    q6_k: Q6_K
);

/// Codes at the extremes of their range (Q8_0's 0 and 255 against ±127 activations) are
/// where 16-bit saturation would show.
pub fn extreme_codes_do_not_saturate<K: CpuKernels>(suite: &Suite<K>) {
    for dtype in CodeFormat::DTYPES {
        let cols = dtype.block_len();
        let format = CodeFormat::of(dtype).unwrap();
        let rule = super::tolerance::gemm_codes(format);
        let rows = 16;
        let mut w = vec![0f32; rows * cols];
        for (i, w) in w.iter_mut().enumerate() {
            // Rows alternate all-maximum and all-minimum weights (with one opposite weight so
            // that every format's scale covers both ends).
            let (r, c) = (i / cols, i % cols);
            let sign = if r % 2 == 0 { 1.0 } else { -1.0 };
            *w = if c == 0 { -sign } else { sign };
        }
        let matrix = Matrix::quantize(dtype, rows, cols, &w);
        let view = matrix.view();
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
            for k in &suite.levels {
                let mine = k.pack_codes(&view, layout);
                for p in 0..panel_count(rows) {
                    let at = p * layout.panel_bytes()..(p + 1) * layout.panel_bytes();
                    let (mut want, mut got) = ([[0f32; PANEL_ROWS]; 1], [[0f32; PANEL_ROWS]; 1]);
                    gemm_codes_scalar(layout, &packed[at.clone()], tile, &mut want);
                    k.gemm_codes(layout, &mine[at], tile, &mut got);
                    for (&g, &w) in got[0].iter().zip(&want[0]) {
                        assert!(
                            rule.holds(g, w, w.abs()),
                            "{} {dtype}: {g} vs {w}",
                            k.name()
                        );
                    }
                }
            }
        }
    }
}

/// Every format with the most rows, blocks and tokens the properties reach.
pub fn every_format_at_its_largest_shapes<K: CpuKernels>(suite: &Suite<K>) {
    for dtype in CodeFormat::DTYPES {
        let blocks = *blocks_of(dtype).end();
        for n in 1..=MAX_TILE_TOKENS {
            check_all_levels(&suite.levels, dtype, 40, blocks, n, n as u64).unwrap();
        }
    }
}
