//! Test-only slow decoders and generators shared by the format modules' tests.
//!
//! The production decoders walk nibbles and shifts the way ggml does; the oracles here read
//! each field by its absolute bit index in the block, straight from the layout tables in the
//! module docs, and decode f16 fields arithmetically. Agreement between the two is evidence
//! that both follow the layout, not that one copies the other.

extern crate std;

use crate::DType;
use crate::quant::{dequantize, quantize};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::{format, vec, vec::Vec};

/// Reads `n` bits from absolute bit index `start`: bit `k` of a block is bit `k % 8` of
/// byte `k / 8` (the order C bit fields and little-endian words give).
pub fn bits(block: &[u8], start: usize, n: usize) -> u32 {
    (0..n).fold(0, |v, k| {
        let b = start + k;
        v | u32::from((block[b / 8] >> (b % 8)) & 1) << k
    })
}

/// An IEEE binary16 value from its raw bits, computed from sign, exponent and mantissa.
pub fn f16_value(raw: u32) -> f32 {
    let sign = if raw & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((raw >> 10) & 31) as i32;
    let man = (raw & 1023) as f32;
    match exp {
        31 if man == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        0 => sign * libm::ldexpf(man, -24),
        _ => sign * libm::ldexpf(1024.0 + man, exp - 25),
    }
}

/// The f16 field at bit `start` of `block`.
pub fn f16_at(block: &[u8], start: usize) -> f32 {
    f16_value(bits(block, start, 16))
}

pub fn same_or_both_nan(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Rows of 1 to 6 blocks of random bytes, with the f16 fields at `f16_bytes` (byte offsets
/// within a block) forced finite so that every decoded value is comparable bit for bit.
pub fn finite_blocks(
    block_bytes: usize,
    f16_bytes: &'static [usize],
) -> impl Strategy<Value = Vec<u8>> {
    (1usize..=6)
        .prop_flat_map(move |n| prop::collection::vec(any::<u8>(), n * block_bytes))
        .prop_map(move |mut row| {
            for block in row.chunks_exact_mut(block_bytes) {
                for &at in f16_bytes {
                    if block[at + 1] & 0x7c == 0x7c {
                        block[at + 1] &= !0x40; // exponent 31 (inf/NaN) becomes 15
                    }
                }
            }
            row
        })
}

/// Rows of 1 to 6 blocks of arbitrary bytes, infinities and NaNs in the scales included.
pub fn any_blocks(block_bytes: usize) -> impl Strategy<Value = Vec<u8>> {
    (1usize..=6).prop_flat_map(move |n| prop::collection::vec(any::<u8>(), n * block_bytes))
}

/// Decodes `row` with [`dequantize`] and compares each element with `oracle(block, index)`.
/// Finite rows must agree bit for bit; with `nan_ok`, both may instead be NaN.
pub fn check_row(
    dtype: DType,
    row: &[u8],
    oracle: fn(&[u8], usize) -> f32,
    nan_ok: bool,
) -> Result<(), TestCaseError> {
    let (bb, bl) = (dtype.block_bytes(), dtype.block_len());
    let n = row.len() / bb * bl;
    let mut out = vec![f32::NAN; n];
    dequantize(dtype, row, &mut out).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    for (i, y) in out.iter().enumerate() {
        let block = &row[i / bl * bb..][..bb];
        let want = oracle(block, i % bl);
        let ok = y.to_bits() == want.to_bits() || (nan_ok && y.is_nan() && want.is_nan());
        prop_assert!(
            ok,
            "element {}: got {} ({:#x}), oracle {} ({:#x})",
            i,
            y,
            y.to_bits(),
            want,
            want.to_bits()
        );
    }
    Ok(())
}

/// Rows of 1 to 4 blocks of values in `[-scale, scale]`, with `scale` spanning four decades
/// (above the range where f16 block scales turn subnormal). Shapes: uniform, cubed (most
/// weights near zero) and mostly small with a few tenfold outliers, as real weights have.
pub fn values(block_len: usize) -> impl Strategy<Value = Vec<f32>> {
    (1usize..=4, 0u8..3, -1.0f32..3.0).prop_flat_map(move |(n, shape, log_scale)| {
        let scale = libm::powf(10.0, log_scale);
        prop::collection::vec((-1.0f32..=1.0, 0u8..20), n * block_len).prop_map(move |v| {
            let shaped = v.into_iter().map(|(u, k)| match shape {
                0 => u,
                1 => u * u * u,
                _ if k == 0 => u,
                _ => u * 0.1,
            });
            shaped.map(|x| x * scale).collect()
        })
    })
}

/// Quantizes `x`, decodes it again, and checks each block against its quantization step
/// `step(block)`: every error within `max_steps` steps. `SLACK` absorbs the f16 rounding of
/// scales near the subnormal range.
pub fn check_round_trip(
    dtype: DType,
    x: &[f32],
    step: fn(&[f32]) -> f32,
    max_steps: f32,
) -> Result<(), TestCaseError> {
    let mut bytes = vec![0u8; dtype.bytes_for(x.len()).unwrap_or(0)];
    quantize(dtype, x, &mut bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let mut y = vec![0.0f32; x.len()];
    dequantize(dtype, &bytes, &mut y).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    for (xb, yb) in x.chunks(dtype.block_len()).zip(y.chunks(dtype.block_len())) {
        const SLACK: f32 = 1.0 / 65536.0;
        let step = step(xb);
        for (i, (a, b)) in xb.iter().zip(yb).enumerate() {
            let err = (a - b).abs();
            prop_assert!(
                err <= max_steps * step + SLACK,
                "element {}: {} -> {}, step {}",
                i,
                a,
                b,
                step
            );
        }
    }
    Ok(())
}

pub fn amax(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// `max - min` of a block, with the minimum taken no higher than zero (as the K-quants do).
pub fn span(x: &[f32]) -> f32 {
    let hi = x.iter().fold(f32::MIN, |m, v| m.max(*v));
    let lo = x.iter().fold(0.0f32, |m, v| m.min(*v));
    hi - lo
}

/// `max - min` of a block.
pub fn range(x: &[f32]) -> f32 {
    let hi = x.iter().fold(f32::MIN, |m, v| m.max(*v));
    let lo = x.iter().fold(f32::MAX, |m, v| m.min(*v));
    hi - lo
}
