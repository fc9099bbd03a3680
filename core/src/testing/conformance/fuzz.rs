//! One long randomized run over everything at once: any format, shape and token count, the
//! activations quantized by the kernel set under test, then multiplied.

use std::vec;

use proptest::prelude::*;

use super::{Problem, Suite};
use crate::cpu::codes::CodeFormat;
use crate::cpu::{CpuKernels, MAX_TILE_TOKENS};

/// Random problems of any format, quantized by each kernel set (which must give the
/// definition's bytes) and multiplied.
pub fn fuzz_quantize_then_gemm<K: CpuKernels>(suite: &Suite<K>) {
    let b = suite.budget;
    let strategy = (
        0usize..CodeFormat::DTYPES.len(),
        1usize..b.fuzz_rows,
        1usize..=9,
        1usize..=MAX_TILE_TOKENS,
        any::<u64>(),
    );
    suite.run(b.fuzz_cases, strategy, |(which, rows, blocks, n, seed)| {
        let dtype = CodeFormat::DTYPES[which];
        // Nine blocks of 32, or one to three super-blocks of 256.
        let blocks = if dtype.block_len() == 32 {
            blocks
        } else {
            1 + blocks % 3
        };
        let p = Problem::new(dtype, rows, blocks, n, seed);
        let (cols, stride) = (p.layout.cols, p.act.stride());
        for k in &suite.levels {
            let mut acts = vec![0u8; n * stride];
            for (x, row) in p.x.chunks_exact(cols).zip(acts.chunks_exact_mut(stride)) {
                k.quantize_row(p.act, x, row);
            }
            prop_assert!(
                acts == p.acts,
                "{} {dtype}: quantized rows differ",
                k.name()
            );
            p.check(k, &acts).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
}
