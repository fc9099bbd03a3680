//! The kernels attention runs over a quantized KV cache: q8_0 key scores and the q8_0 and
//! FP8 value accumulations, on any number of blocks, rows and row gaps, with codes at their
//! extremes (-128 in a cached row included) and scales of any finite f16.

use std::format;
use std::string::String;
use std::vec::Vec;

use half::f16;
use proptest::prelude::*;

use super::{Rng, Suite, same_bits};
use crate::cpu::{CpuKernels, ScalarKernels};
use crate::kv::{BlockQ8_0, Fp8E4M3, Q8_BLOCK};

/// A finite f16 scale: mostly ordinary magnitudes, sometimes any finite f16 (huge ones and
/// subnormals included).
fn scale(rng: &mut Rng) -> f16 {
    if rng.below(8) == 0 {
        loop {
            let d = f16::from_bits(rng.below(1 << 16) as u16);
            if d.is_finite() {
                return d;
            }
        }
    }
    f16::from_f32(rng.unit() * 0.1)
}

/// `n` blocks of random codes; `lowest` is the smallest code (-127 for a query, which the
/// kernels' contract asks for, -128 for cached rows, which may hold any byte).
pub fn random_blocks(rng: &mut Rng, n: usize, lowest: i8) -> Vec<BlockQ8_0> {
    let span = 127 - i64::from(lowest) + 1;
    (0..n)
        .map(|_| {
            let extreme = rng.below(4) == 0;
            BlockQ8_0 {
                d: scale(rng),
                qs: core::array::from_fn(|_| {
                    if extreme {
                        if rng.below(2) == 0 { lowest } else { 127 }
                    } else {
                        (i64::from(lowest) + rng.below(span as u64) as i64) as i8
                    }
                }),
            }
        })
        .collect()
}

/// `dot_rows_q8_0` of every kernel set: the definition's bits for every row, and each row the
/// same alone as in the block.
pub fn check_dot_rows_q8_0<K: CpuKernels>(
    levels: &[K],
    q: &[BlockQ8_0],
    rows: &[BlockQ8_0],
    stride: usize,
    n_rows: usize,
) -> Result<(), String> {
    let mut want = std::vec![0f32; n_rows];
    ScalarKernels.dot_rows_q8_0(q, rows, stride, &mut want);
    for k in levels {
        let mut got = std::vec![f32::NAN; n_rows];
        k.dot_rows_q8_0(q, rows, stride, &mut got);
        for j in 0..n_rows {
            let mut alone = [f32::NAN];
            k.dot_rows_q8_0(q, &rows[j * stride..], stride, &mut alone);
            if !same_bits(got[j], want[j]) || !same_bits(alone[0], got[j]) {
                return Err(format!(
                    "{} {} blocks row {j}: {} (alone {}) vs {}",
                    k.name(),
                    q.len(),
                    got[j],
                    alone[0],
                    want[j]
                ));
            }
        }
    }
    Ok(())
}

/// `axpy_q8_0` and `axpy_fp8` of every kernel set: the definition's bits, element by element.
pub fn check_axpy_quantized<K: CpuKernels>(
    levels: &[K],
    y: &[f32],
    a: f32,
    blocks: &[BlockQ8_0],
    fp8: &[Fp8E4M3],
) -> Result<(), String> {
    let (mut want_q8, mut want_fp8) = (y.to_vec(), y.to_vec());
    let q8_len = blocks.len().min(y.len() / Q8_BLOCK) * Q8_BLOCK;
    ScalarKernels.axpy_q8_0(&mut want_q8[..q8_len], a, blocks);
    ScalarKernels.axpy_fp8(&mut want_fp8, a, fp8);
    for k in levels {
        let (mut got_q8, mut got_fp8) = (y.to_vec(), y.to_vec());
        k.axpy_q8_0(&mut got_q8[..q8_len], a, blocks);
        k.axpy_fp8(&mut got_fp8, a, fp8);
        for (what, got, want) in [("q8_0", &got_q8, &want_q8), ("fp8", &got_fp8, &want_fp8)] {
            if let Some(i) = (0..got.len()).find(|&i| !same_bits(got[i], want[i])) {
                return Err(format!(
                    "{} {what} [{i}]: {} vs {}",
                    k.name(),
                    got[i],
                    want[i]
                ));
            }
        }
    }
    Ok(())
}

/// A q8_0 query of one to `vector_len / 32` blocks against a block of rows with a gap.
pub fn dot_rows_q8_0<K: CpuKernels>(suite: &Suite<K>) {
    let b = suite.budget;
    let strategy = (
        1usize..=(b.vector_len / Q8_BLOCK).max(1),
        0usize..=b.dot_rows,
        0usize..3,
        any::<u64>(),
    );
    suite.run(b.float_cases, strategy, |(blocks, n_rows, gap, seed)| {
        let mut rng = Rng::new(seed);
        let stride = blocks + gap;
        let q = random_blocks(&mut rng, blocks, -127);
        // The last row has exactly `blocks` blocks: nothing past it may be read.
        let len = if n_rows == 0 {
            0
        } else {
            (n_rows - 1) * stride + blocks
        };
        let rows = random_blocks(&mut rng, len, -128);
        check_dot_rows_q8_0(&suite.levels, &q, &rows, stride, n_rows).map_err(TestCaseError::fail)
    });
}

/// Quantized value rows of any length (q8_0: whole blocks) added into a row.
pub fn axpy_quantized<K: CpuKernels>(suite: &Suite<K>) {
    let strategy = (0usize..suite.budget.vector_len, -4f32..4.0, any::<u64>());
    suite.run(suite.budget.float_cases, strategy, |(len, a, seed)| {
        let mut rng = Rng::new(seed);
        let y: Vec<f32> = (0..len).map(|_| rng.unit() * 4.0).collect();
        let blocks = random_blocks(&mut rng, len / Q8_BLOCK, -128);
        let fp8: Vec<Fp8E4M3> = (0..len).map(|_| Fp8E4M3(rng.below(256) as u8)).collect();
        check_axpy_quantized(&suite.levels, &y, a, &blocks, &fp8).map_err(TestCaseError::fail)
    });
}

/// Every FP8 code, NaNs and both zeros included, through `axpy_fp8` at lengths with tails.
pub fn fp8_every_code<K: CpuKernels>(suite: &Suite<K>) {
    let codes: Vec<Fp8E4M3> = (0..=255u8).map(Fp8E4M3).collect();
    for len in [256, 255, 7] {
        let y = std::vec![0.5f32; len];
        check_axpy_quantized(&suite.levels, &y, -1.5, &[], &codes[..len]).unwrap();
    }
}
