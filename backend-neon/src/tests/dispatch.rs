//! The NEON dispatch: every format with codes takes a SIMD kernel at every level, and the
//! i8mm level's own panel layout holds the portable layout's codes.

use std::vec;

use proptest::prelude::*;
use tern_core::DType;
use tern_core::cpu::codes::CodeFormat;
use tern_core::cpu::{ActTile, CpuKernels, PANEL_ROWS, gemm_codes_scalar};
use tern_core::testing::conformance::Problem;

use super::levels;

/// Every code format takes a SIMD kernel at every level (the conformance suite would also
/// pass on the scalar fallback): a layout core changes under these kernels fails here.
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
            let mut out = vec![[0f32; PANEL_ROWS]; p.panels() * p.n];
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
        let pairs = crate::i8mm::layout::pack_codes(&p.matrix.view(), p.layout);
        prop_assert_eq!(pairs.len(), p.packed.len());
        let tile = ActTile { layout: p.act, bytes: &p.acts, n };
        let panels = p.panels();
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
