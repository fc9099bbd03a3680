//! The driver against the reference backend, with the scalar kernels: tiling, thread shares
//! and tails must not change a result beyond float summation order.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::DType;
use crate::backend::reference::{self, Reference};
use crate::backend::{Backend, Positions};
use crate::kv::{DenseKv, KvCache};
use crate::model::{WeightRole, WeightView};
use crate::quant::quantize;
use crate::testing::conformance::{Rng, Uneven, model_config};

fn assert_rows_close(got: &[f32], want: &[f32], width: usize, tol: f32) {
    for (r, (g, w)) in got.chunks(width).zip(want.chunks(width)).enumerate() {
        let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
        for (i, (g, w)) in g.iter().zip(w).enumerate() {
            assert!((g - w).abs() <= tol * norm, "row {r} col {i}: {g} vs {w}");
        }
    }
}

const DTYPES: [DType; 11] = DType::ALL;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matmul_matches_the_reference(
        which in 0usize..DTYPES.len(), rows in 1usize..30, blocks in 1usize..3,
        n in 1usize..11, seed in any::<u64>(),
    ) {
        let dtype = DTYPES[which];
        let cols = blocks * dtype.block_len().max(32);
        let mut rng = Rng::new(seed);
        let values = rng.units(rows * cols);
        let mut bytes = alloc::vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, &values, &mut bytes).unwrap();
        let view = WeightView { name: "w", dtype, rows, cols, data: &bytes };
        let x = rng.units(n * cols);
        let mut want = alloc::vec![0f32; n * rows];
        reference::matmul(&view, &x, &mut want);
        let cpu = Cpu::new(ScalarKernels);
        let w = cpu.prepare(view, WeightRole::Matrix).unwrap();
        let mut got = alloc::vec![0f32; n * rows];
        let mut scratch = alloc::vec![0f32; n * (cols + 16)];
        cpu.matmul(&w, &x, &mut got, &mut scratch, &Uneven);
        // Summation order moves a dot by ulps of its terms, not of its result (which may
        // cancel to near zero): the bound scales with Σ |w x|.
        let mut weights = alloc::vec![0f32; cols];
        for r in 0..rows {
            reference::dequantize_row(&view, r, &mut weights);
            for (t, xt) in x.chunks_exact(cols).enumerate() {
                let scale: f32 = weights.iter().zip(xt).map(|(w, x)| (w * x).abs()).sum();
                let (g, e) = (got[t * rows + r], want[t * rows + r]);
                prop_assert!((g - e).abs() <= 2e-5 * scale.max(1e-6), "token {t} row {r}: {g} vs {e}");
            }
        }

        // The same weight read in place from its packed bytes, as from a packed-weight
        // cache, multiplies bit for bit the same; a blob of another size is refused.
        let packed = w.packed.as_ref().unwrap();
        let mut blob = alloc::vec![0f32; packed.bytes().len().div_ceil(4)];
        let blob = &mut as_bytes(&mut blob)[..packed.bytes().len()];
        blob.copy_from_slice(packed.bytes());
        let cached = cpu.prepare_cached(view, WeightRole::Matrix, blob).unwrap();
        prop_assert!(!cached.packed.as_ref().unwrap().is_owned());
        let mut again = alloc::vec![0f32; n * rows];
        cpu.matmul(&cached, &x, &mut again, &mut scratch, &Uneven);
        prop_assert!(again.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
        prop_assert!(cpu.prepare_cached(view, WeightRole::Matrix, &blob[1..]).is_none());
        prop_assert!(cpu.prepare_cached(view, WeightRole::Vector, blob).is_none());
    }
}

/// f32 storage seen as bytes: the aligned buffer a mapped cache blob would be.
fn as_bytes(floats: &mut [f32]) -> &mut [u8] {
    // SAFETY: every byte of an f32 is an initialized u8, u8 needs no alignment, and the
    // length covers the same memory for the same borrow.
    unsafe { core::slice::from_raw_parts_mut(floats.as_mut_ptr().cast::<u8>(), floats.len() * 4) }
}

fn attention_case<K, V>(n_ctx: usize, first: usize, n_tok: usize)
where
    K: crate::kv::KvElement + Sync,
    V: crate::kv::KvElement + Sync,
{
    attention_case_with::<K, V>(16, n_ctx, first, n_tok, 1e-5);
}

/// The CPU backend's attention (scalar kernels) against the reference's on a cache with keys
/// of `K` and values of `V`, heads `head_dim` wide, within `tol` of each row's norm.
fn attention_case_with<K, V>(head_dim: usize, n_ctx: usize, first: usize, n_tok: usize, tol: f32)
where
    K: crate::kv::KvElement + Sync,
    V: crate::kv::KvElement + Sync,
{
    let c = model_config(4, 2, head_dim);
    let mut rng = Rng::new((n_ctx * 31 + first * 7 + n_tok) as u64);
    let mut kv = DenseKv::<K, Vec<K>, V, Vec<V>>::zeroed(1, n_ctx, c.kv_width()).unwrap();
    for pos in 0..first + n_tok {
        let k = rng.units(c.kv_width());
        let v = rng.units(c.kv_width());
        kv.write(0, pos, &k, &v).unwrap();
    }
    let q: Vec<f32> = rng
        .units(n_tok * c.q_width())
        .iter()
        .map(|v| v * 4.0)
        .collect();
    let mut want = alloc::vec![0f32; q.len()];
    let mut scores = alloc::vec![0f32; n_ctx];
    let at = Positions { first };
    Reference.attention(&q, &kv, 0, &c, at, &mut scores, &mut want, &Uneven);
    let mut got = alloc::vec![0f32; q.len()];
    let cpu = Cpu::new(ScalarKernels);
    Backend::attention(&cpu, &q, &kv, 0, &c, at, &mut scores, &mut got, &Uneven);
    assert_rows_close(&got, &want, c.head_dim, tol);
}

#[test]
fn online_softmax_attention_matches_the_reference() {
    for (n_ctx, first, n_tok) in [(8, 0, 1), (100, 0, 7), (100, 64, 1), (300, 250, 9)] {
        attention_case::<f32, f32>(n_ctx, first, n_tok);
        attention_case::<half::f16, half::f16>(n_ctx, first, n_tok);
        attention_case::<f32, half::f16>(n_ctx, first, n_tok);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The one-pass attention over quantized caches: every pairing of key and value types,
    /// heads of whole q8_0 blocks (the integer path) and of half a block (read element by
    /// element), contexts of partial position blocks.
    #[test]
    fn quantized_cache_attention_matches_the_reference(
        pairing in 0usize..6, wide in any::<bool>(), n_ctx in 1usize..200,
        first_frac in 0f64..1.0, n_tok in 1usize..10,
    ) {
        use crate::kv::{BlockQ8_0 as Q8, Fp8E4M3 as Fp8};
        use half::f16;
        let first = ((n_ctx - 1) as f64 * first_frac) as usize;
        let n_tok = n_tok.min(n_ctx - first);
        let hd = if wide { 64 } else { 16 };
        // Only the rounding of the score sums differs: f32 summation over 64 products.
        let case = |f: fn(usize, usize, usize, usize, f32)| f(hd, n_ctx, first, n_tok, 2e-5);
        match pairing {
            0 => case(attention_case_with::<Q8, Q8>),
            1 => case(attention_case_with::<f16, Fp8>),
            2 => case(attention_case_with::<Q8, Fp8>),
            3 => case(attention_case_with::<Q8, f16>),
            4 => case(attention_case_with::<f32, Q8>),
            _ => case(attention_case_with::<Fp8, f32>),
        }
    }
}

#[test]
fn rope_matches_the_reference_to_rounding() {
    for style in [
        crate::model::RopeStyle::AdjacentPairs,
        crate::model::RopeStyle::HalfSplit,
    ] {
        let mut c = model_config(4, 2, 16);
        c.rope_style = style;
        c.rope_theta = 1e6;
        let x = Rng::new(7).units(9 * c.q_width());
        let (mut want, mut got) = (x.clone(), x);
        reference::rope(&mut want, c.n_head, &c, 1000);
        let cpu = Cpu::new(ScalarKernels);
        cpu.rope(&mut got, c.n_head, &c, Positions { first: 1000 }, &Uneven);
        // ggml's angles come from repeated products, run.c's from powers: a few ulps apart,
        // which at angle ~1000 radians is ~1e-4 of a turn.
        assert_rows_close(&got, &want, c.head_dim, 1e-3);
    }
}
