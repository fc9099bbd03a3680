//! One long randomized run over everything at once: any format, shape and token count, the
//! activations quantized by the level under test, then multiplied (200 cases: emulated runs
//! are slow).

use std::vec;

use proptest::prelude::*;
use tern_core::cpu::CpuKernels;

use super::gemm_codes::Problem;
use super::levels;
use tern_core::cpu::codes::CodeFormat;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fuzz_quantize_then_gemm(
        which in 0usize..CodeFormat::DTYPES.len(),
        rows in 1usize..24,
        blocks in 1usize..=9,
        n in 1usize..=8,
        seed in any::<u64>(),
    ) {
        let dtype = CodeFormat::DTYPES[which];
        let blocks = if dtype.block_len() == 32 { blocks } else { 1 + blocks % 3 };
        let p = Problem::new(dtype, rows, blocks, n, seed);
        let (cols, stride) = (p.layout.cols, p.act.stride());
        for k in levels() {
            let mut acts = vec![0u8; n * stride];
            for (x, row) in p.x.chunks_exact(cols).zip(acts.chunks_exact_mut(stride)) {
                k.quantize_row(p.act, x, row);
            }
            prop_assert!(acts == p.acts, "{} {dtype}: quantized rows differ", k.name());
            p.check(&k, &acts).map_err(TestCaseError::fail)?;
        }
    }
}
