use half::f16;
use proptest::prelude::*;
use tern_core::kv::{BlockQ8_0, DenseKv, Fp8E4M3, storage_len};

use super::*;
use crate::test_util::TempDir;

/// What a test does to a cache: steps of new tokens, and cuts of the history back to an
/// earlier position (as a session reset does).
#[derive(Clone, Debug)]
enum Action {
    Step(usize),
    CutTo(usize),
}

fn rows(seed: u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i as u64 * 1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Runs `actions` on a spilled cache and a dense one the way a step does (each layer written,
/// prepared, then read in block-sized pieces) and requires every read to be identical.
fn same_as_dense<K: SpillElement, V: SpillElement>(
    shape: KvShape,
    dram_tokens: usize,
    actions: &[Action],
) -> SpillKv<K, V> {
    let dir = TempDir::new("spill");
    let mut spill = SpillKv::<K, V>::create(dir.path(), shape, dram_tokens).unwrap();
    let (n_layer, n_ctx, width) = (shape.n_layer, shape.n_ctx, shape.width);
    let units = |n: Option<usize>| n.expect("a small cache");
    let keys = vec![K::default(); units(storage_len::<K>(n_layer, n_ctx, width).unwrap())];
    let values = vec![V::default(); units(storage_len::<V>(n_layer, n_ctx, width).unwrap())];
    let mut dense = DenseKv::new(n_layer, n_ctx, width, keys, values).unwrap();
    let mut pos = 0;
    for (i, action) in actions.iter().enumerate() {
        let n_tokens = match *action {
            Action::CutTo(p) => {
                pos = p.min(pos);
                continue;
            }
            Action::Step(n) => n.min(shape.n_ctx - pos),
        };
        if n_tokens == 0 {
            continue;
        }
        for layer in 0..shape.n_layer {
            for t in pos..pos + n_tokens {
                let k = rows((i * 1000 + layer * 100 + t) as u64, shape.width);
                let v = rows((i * 1000 + layer * 100 + t) as u64 + 7, shape.width);
                spill.write(layer, t, &k, &v).unwrap();
                dense.write(layer, t, &k, &v).unwrap();
            }
            let n_pos = pos + n_tokens;
            spill.prepare_layer(layer, n_pos).unwrap();
            for start in (0..n_pos).step_by(KV_BLOCK) {
                let n = KV_BLOCK.min(n_pos - start);
                let bits =
                    |r: KvRow<'_>| (0..r.len()).map(|j| r.get(j).to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(spill.keys(layer, start, n)),
                    bits(dense.keys(layer, start, n)),
                    "keys of layer {layer} at {start} after action {i}"
                );
                assert_eq!(
                    bits(spill.values(layer, start, n)),
                    bits(dense.values(layer, start, n)),
                    "values of layer {layer} at {start} after action {i}"
                );
            }
            // Single rows inside a block, as the reference attention reads them.
            let last = n_pos - 1;
            assert_eq!(
                spill.key(layer, last).get(0).to_bits(),
                dense.key(layer, last).get(0).to_bits()
            );
        }
        pos += n_tokens;
    }
    spill
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (1usize..70).prop_map(Action::Step),
        1 => (0usize..200).prop_map(Action::CutTo),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn reads_equal_a_dense_cache(
        n_layer in 1usize..4,
        width in 1usize..10,
        n_ctx in 1usize..220,
        dram_tokens in 0usize..100,
        actions in proptest::collection::vec(action(), 1..12),
        types in 0usize..5,
    ) {
        // Quantized halves move as stored: q8_0 blocks of 34 bytes, FP8 bytes.
        let blocks = KvShape { n_layer, n_ctx, width: 32 * (1 + width % 3) };
        let shape = KvShape { n_layer, n_ctx, width };
        match types {
            0 => { same_as_dense::<f16, f16>(shape, dram_tokens, &actions); }
            1 => { same_as_dense::<f32, f32>(shape, dram_tokens, &actions); }
            2 => { same_as_dense::<BlockQ8_0, BlockQ8_0>(blocks, dram_tokens, &actions); }
            3 => { same_as_dense::<f16, Fp8E4M3>(shape, dram_tokens, &actions); }
            _ => { same_as_dense::<BlockQ8_0, Fp8E4M3>(blocks, dram_tokens, &actions); }
        }
    }
}

#[test]
fn decode_reads_each_spilled_block_once_per_token() {
    let shape = KvShape {
        n_layer: 3,
        n_ctx: 256,
        width: 8,
    };
    // 200 tokens of prompt, then 10 decode steps, with 64 tokens in DRAM.
    let mut actions = vec![Action::Step(200)];
    actions.extend(std::iter::repeat_n(Action::Step(1), 10));
    let spill = same_as_dense::<f16, f16>(shape, 64, &actions);
    let stats = spill.stats();
    assert_eq!(spill.dram_tokens(), 64);
    // 210 positions, 3 blocks of 32 in the ring: blocks 0..4 (128 positions) are spilled.
    let block = (KV_BLOCK * 8 * 2) as u64;
    assert_eq!(stats.flash_bytes, 3 * 2 * 4 * block);
    assert_eq!(stats.bytes_written, stats.flash_bytes);
    // Each of the 11 steps reads each layer's spilled keys and values once (the prompt
    // step spills while it writes, so it reads blocks 0..4 too).
    assert_eq!(stats.bytes_read, 11 * 3 * 2 * 4 * block);
    assert_eq!(stats.dram_bytes, 3 * 2 * 3 * block);
}

#[test]
fn a_directory_that_cannot_hold_the_file_is_an_error() {
    let shape = KvShape {
        n_layer: 1,
        n_ctx: 64,
        width: 4,
    };
    let missing = std::env::temp_dir().join("tern-no-such-dir/deeper");
    assert!(SpillKv::<f32>::create(&missing, shape, 0).is_err());
    let zero = KvShape { width: 0, ..shape };
    let dir = TempDir::new("spill-zero");
    assert!(SpillKv::<f32>::create(dir.path(), zero, 0).is_err());
}

#[test]
fn quantized_rows_spill_in_their_stored_size() {
    let shape = KvShape {
        n_layer: 2,
        n_ctx: 256,
        width: 64,
    };
    let mut actions = vec![Action::Step(200)];
    actions.extend(std::iter::repeat_n(Action::Step(1), 3));
    let q8 = same_as_dense::<BlockQ8_0, BlockQ8_0>(shape, 64, &actions).stats();
    let f16 = same_as_dense::<f16, f16>(shape, 64, &actions).stats();
    // A row of 64 elements: two 34-byte blocks against 128 bytes.
    assert_eq!(q8.flash_bytes * 128, f16.flash_bytes * 68);
    assert_eq!(q8.dram_bytes * 128, f16.dram_bytes * 68);
    assert_eq!(q8.bytes_written, q8.flash_bytes);
    let mixed = same_as_dense::<BlockQ8_0, Fp8E4M3>(shape, 64, &actions).stats();
    assert_eq!(mixed.flash_bytes * 2 * 128, f16.flash_bytes * (68 + 64));
}

#[test]
fn rows_that_are_not_whole_blocks_are_refused() {
    let dir = TempDir::new("spill-blocks");
    let shape = KvShape {
        n_layer: 1,
        n_ctx: 64,
        width: 48,
    };
    let err = SpillKv::<f16, BlockQ8_0>::create(dir.path(), shape, 0)
        .err()
        .unwrap();
    assert!(err.to_string().contains("blocks of 32"), "{err}");
}
