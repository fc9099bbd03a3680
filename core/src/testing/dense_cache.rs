//! Reference KV caches for device tests: a device's cache kernels and its whole-model
//! sessions are checked against core's [`DenseKv`] of the same element type, so each
//! backend's tests make that cache here instead of naming `f32` or `f16` themselves.

use alloc::boxed::Box;

use alloc::vec::Vec;

use crate::kv::{DenseKv, KvCache, KvElement, KvType, KvTypes, WithKvTypes, with_kv_types};

/// A zeroed dense cache of `kv_type` (keys and values) on the heap.
///
/// Panics where the size overflows: a test asks only for small caches.
pub fn dense_cache(
    kv_type: KvType,
    n_layer: usize,
    n_ctx: usize,
    width: usize,
) -> Box<dyn KvCache> {
    dense_cache_of(KvTypes::same(kv_type), n_layer, n_ctx, width)
}

/// A zeroed dense cache with keys and values of `types` on the heap.
///
/// Panics where the size overflows or a row is not whole blocks: a test asks only for small
/// caches of whole blocks.
pub fn dense_cache_of(
    types: KvTypes,
    n_layer: usize,
    n_ctx: usize,
    width: usize,
) -> Box<dyn KvCache> {
    struct Zeroed(usize, usize, usize);
    impl WithKvTypes for Zeroed {
        type Out = Box<dyn KvCache>;
        fn call<K: KvElement + Send + Sync + 'static, V: KvElement + Send + Sync + 'static>(
            self,
        ) -> Box<dyn KvCache> {
            let Zeroed(n_layer, n_ctx, width) = self;
            Box::new(
                DenseKv::<K, Vec<K>, V, Vec<V>>::zeroed(n_layer, n_ctx, width)
                    .expect("a small cache of whole blocks"),
            )
        }
    }
    with_kv_types(types, Zeroed(n_layer, n_ctx, width))
}

/// A dense cache of `kv_type` whose every position of every layer holds the rows of `keys`
/// and `values`, both laid out `[layer][pos][width]`: the reference's side of a device
/// cache filled with the same rows, so that a test also sees rows it did not write survive.
pub fn filled_cache(
    kv_type: KvType,
    n_layer: usize,
    n_ctx: usize,
    width: usize,
    keys: &[f32],
    values: &[f32],
) -> Box<dyn KvCache> {
    let mut cache = dense_cache(kv_type, n_layer, n_ctx, width);
    for layer in 0..n_layer {
        for pos in 0..n_ctx {
            let row = (layer * n_ctx + pos) * width..(layer * n_ctx + pos + 1) * width;
            cache
                .write(layer, pos, &keys[row.clone()], &values[row])
                .expect("a row of the cache's width at a position it holds");
        }
    }
    cache
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::kv::KvRow;

    #[test]
    fn a_dense_cache_stores_its_type_and_starts_at_zero() {
        let c = dense_cache(KvType::F32, 2, 3, 4);
        assert_eq!((c.n_layer(), c.n_ctx(), c.width()), (2, 3, 4));
        assert!(matches!(c.keys(1, 0, 3), KvRow::F32(r) if r.iter().all(|&v| v == 0.0)));
        let c = dense_cache(KvType::F16, 1, 2, 3);
        assert!(matches!(c.values(0, 0, 2), KvRow::F16(r) if r.len() == 6));
    }

    #[test]
    fn a_filled_cache_holds_every_row_where_the_layout_puts_it() {
        let (n_layer, n_ctx, width) = (2, 3, 4);
        let n = n_layer * n_ctx * width;
        let keys: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let values: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
        for kv_type in [KvType::F32, KvType::F16] {
            let c = filled_cache(kv_type, n_layer, n_ctx, width, &keys, &values);
            for layer in 0..n_layer {
                let (k, v) = (c.keys(layer, 0, n_ctx), c.values(layer, 0, n_ctx));
                for i in 0..n_ctx * width {
                    let at = layer * n_ctx * width + i;
                    assert_eq!((k.get(i), v.get(i)), (keys[at], values[at]), "{kv_type:?}");
                }
            }
        }
    }
}
