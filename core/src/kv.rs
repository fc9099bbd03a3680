//! The key/value cache: the trait every attention implementation reads through, and a dense
//! implementation over storage the caller provides, its keys and values each in f32, f16,
//! q8_0 blocks ([`BlockQ8_0`]) or, for values, FP8 E4M3 ([`Fp8E4M3`]).
//!
//! Reads come in blocks of [`KV_BLOCK`] positions so that a cache may keep its rows in pieces
//! (a DRAM ring of the newest blocks, older blocks staged from flash) and still hand out each
//! requested range as one contiguous slice. Quantized rows are handed out as stored, so
//! attention reads them in place instead of a dequantized copy.

mod dispatch;
mod fp8;
mod q8_0;
mod types;

use core::fmt;

use half::f16;

pub use dispatch::{WithKvTypes, with_kv_types};
pub use fp8::{FP8_MAX, Fp8E4M3};
pub use q8_0::{BlockQ8_0, Q8_BLOCK, quantize_row as quantize_q8_0_row};
pub use types::{KvType, KvTypes};

/// Cached rows in their stored type: one row holds all key (or value) heads of one position
/// of one layer; [`KvCache::keys`] hands out several rows back to back.
#[derive(Clone, Copy, Debug)]
pub enum KvRow<'a> {
    /// Rows of an f32 cache.
    F32(&'a [f32]),
    /// Rows of an f16 cache; [`KvRow::get`] widens each element to f32.
    F16(&'a [f16]),
    /// Rows of a q8_0 cache: `width / 32` blocks per row.
    Q8_0(&'a [BlockQ8_0]),
    /// Rows of an FP8 E4M3 cache.
    Fp8(&'a [Fp8E4M3]),
}

impl KvRow<'_> {
    /// Number of elements (the rows' count times the cache's width).
    pub fn len(&self) -> usize {
        match self {
            KvRow::F32(r) => r.len(),
            KvRow::F16(r) => r.len(),
            KvRow::Q8_0(r) => r.len() * Q8_BLOCK,
            KvRow::Fp8(r) => r.len(),
        }
    }

    /// Whether the slice holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f32.
    pub fn get(&self, i: usize) -> f32 {
        match self {
            KvRow::F32(r) => r[i],
            KvRow::F16(r) => r[i].to_f32(),
            KvRow::Q8_0(r) => r[i / Q8_BLOCK].get(i % Q8_BLOCK),
            KvRow::Fp8(r) => r[i].to_f32(),
        }
    }

    /// The type the rows are stored in.
    pub fn kv_type(&self) -> KvType {
        match self {
            KvRow::F32(_) => KvType::F32,
            KvRow::F16(_) => KvType::F16,
            KvRow::Q8_0(_) => KvType::Q8_0,
            KvRow::Fp8(_) => KvType::Fp8,
        }
    }
}

/// Positions per read block: [`KvCache::keys`] and [`KvCache::values`] are asked for ranges
/// that never cross a multiple of this, so a cache only needs each block contiguous.
pub const KV_BLOCK: usize = 32;

/// Why a cache operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvError {
    /// A position at or past the cache's capacity.
    Full {
        /// The position asked for.
        pos: usize,
        /// Positions the cache holds; valid positions are below it.
        n_ctx: usize,
    },
    /// A layer index at or past the cache's layer count.
    NoSuchLayer {
        /// The layer asked for.
        layer: usize,
        /// Layers the cache holds.
        n_layer: usize,
    },
    /// A row of the wrong width.
    Width {
        /// Elements per row the cache stores.
        expected: usize,
        /// Elements in the row given.
        got: usize,
    },
    /// Storage handed to the cache is not the size its shape needs.
    Storage {
        /// Stored units (elements, or q8_0 blocks) the key or value storage must hold
        /// (`usize::MAX` when the size overflows).
        expected: usize,
        /// Units the storage given holds.
        got: usize,
    },
    /// Rows of `width` elements do not split into the blocks of a block type.
    Blocks {
        /// Elements per row.
        width: usize,
        /// Elements per block of the type asked for.
        block: usize,
    },
    /// Moving rows of `layer` between DRAM and the cache's flash tier failed; the cache that
    /// said so keeps the I/O error.
    Flash {
        /// The layer whose rows were moving.
        layer: usize,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Full { pos, n_ctx } => write!(
                f,
                "position {pos} is past the KV cache's context of {n_ctx} tokens"
            ),
            KvError::NoSuchLayer { layer, n_layer } => {
                write!(f, "layer {layer} of a KV cache with {n_layer} layers")
            }
            KvError::Width { expected, got } => {
                write!(f, "KV row of {got} elements, the cache holds {expected}")
            }
            KvError::Storage { expected, got } => write!(
                f,
                "KV cache storage holds {got} units, its shape needs {expected}"
            ),
            KvError::Blocks { width, block } => write!(
                f,
                "KV rows of {width} elements do not split into blocks of {block}"
            ),
            KvError::Flash { layer } => {
                write!(f, "moving layer {layer}'s KV rows to or from flash failed")
            }
        }
    }
}

/// Keys and values of past positions, per layer. A row holds every key/value head of one
/// position: `n_head_kv * head_dim` elements. Attention may read a cache from several threads.
pub trait KvCache: Sync {
    /// Layers the cache holds.
    fn n_layer(&self) -> usize;
    /// Positions the cache holds.
    fn n_ctx(&self) -> usize;
    /// Elements per row.
    fn width(&self) -> usize;
    /// Stores the key and value rows of `pos` in `layer`.
    fn write(
        &mut self,
        layer: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), KvError>;
    /// Makes positions `0..n_pos` of `layer` readable; called after the step's rows of the
    /// layer are written and before attention reads it. A cache with a flash tier brings the
    /// layer's older rows in here (waiting for its prefetch) and starts fetching the next
    /// layer's. A cache wholly in memory has nothing to do.
    fn prepare_layer(&mut self, layer: usize, n_pos: usize) -> Result<(), KvError> {
        let _ = (layer, n_pos);
        Ok(())
    }
    /// The key rows of positions `start..start + n` in `layer`, back to back (`n * width`
    /// elements), so attention streams a block of positions without a call per row. Callers
    /// stay below `n_layer` and the positions prepared by [`KvCache::prepare_layer`], and
    /// never cross a multiple of [`KV_BLOCK`] in one call.
    fn keys(&self, layer: usize, start: usize, n: usize) -> KvRow<'_>;
    /// The value rows of positions `start..start + n` in `layer`, as [`KvCache::keys`].
    fn values(&self, layer: usize, start: usize, n: usize) -> KvRow<'_>;

    /// The key row of `pos` in `layer`.
    fn key(&self, layer: usize, pos: usize) -> KvRow<'_> {
        self.keys(layer, pos, 1)
    }
    /// The value row of `pos` in `layer`.
    fn value(&self, layer: usize, pos: usize) -> KvRow<'_> {
        self.values(layer, pos, 1)
    }
}

/// A unit a dense cache stores: one element, or one block of [`KvElement::BLOCK`] elements.
///
/// Sealed: every implementor is plain bits (no padding, every bit pattern a value), so a
/// slice of units may be moved to and from a file as its bytes.
pub trait KvElement: Copy + Default + sealed::Sealed {
    /// The cache type this unit stores.
    const TYPE: KvType;
    /// Elements of a row one unit holds.
    const BLOCK: usize = 1;
    /// Stores `src` (`dst.len() * BLOCK` elements) into `dst`, rounding as the type does.
    fn encode(src: &[f32], dst: &mut [Self]);
    /// A slice of stored units as a [`KvRow`] of the matching variant.
    fn row(slice: &[Self]) -> KvRow<'_>;
}

impl KvElement for f32 {
    const TYPE: KvType = KvType::F32;
    fn encode(src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn row(slice: &[f32]) -> KvRow<'_> {
        KvRow::F32(slice)
    }
}

impl KvElement for f16 {
    const TYPE: KvType = KvType::F16;
    fn encode(src: &[f32], dst: &mut [f16]) {
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, &s)| *d = f16::from_f32(s));
    }
    fn row(slice: &[f16]) -> KvRow<'_> {
        KvRow::F16(slice)
    }
}

impl KvElement for BlockQ8_0 {
    const TYPE: KvType = KvType::Q8_0;
    const BLOCK: usize = Q8_BLOCK;
    fn encode(src: &[f32], dst: &mut [BlockQ8_0]) {
        quantize_q8_0_row(src, dst);
    }
    fn row(slice: &[BlockQ8_0]) -> KvRow<'_> {
        KvRow::Q8_0(slice)
    }
}

impl KvElement for Fp8E4M3 {
    const TYPE: KvType = KvType::Fp8;
    fn encode(src: &[f32], dst: &mut [Fp8E4M3]) {
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, &s)| *d = Fp8E4M3::from_f32(s));
    }
    fn row(slice: &[Fp8E4M3]) -> KvRow<'_> {
        KvRow::Fp8(slice)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for super::BlockQ8_0 {}
    impl Sealed for super::Fp8E4M3 {}
}

/// Units of `E` that `n_layer * n_ctx` rows of `width` elements take: `None` when the size
/// overflows, a [`KvError::Blocks`] when a row is not a whole number of `E`'s blocks.
pub fn storage_len<E: KvElement>(
    n_layer: usize,
    n_ctx: usize,
    width: usize,
) -> Result<Option<usize>, KvError> {
    if width % E::BLOCK != 0 {
        return Err(KvError::Blocks {
            width,
            block: E::BLOCK,
        });
    }
    Ok(n_layer
        .checked_mul(n_ctx)
        .and_then(|n| n.checked_mul(width / E::BLOCK)))
}

/// A cache laid out `[layer][pos][width]` for keys (units of `K` in storage `S`) and the same
/// for values (units of `V` in storage `T`); storage is a `Vec` with `alloc`, or any slice
/// the caller owns. Keys and values are of one type unless `V` and `T` say otherwise.
pub struct DenseKv<K, S, V = K, T = S> {
    n_layer: usize,
    n_ctx: usize,
    width: usize,
    keys: S,
    values: T,
    _elem: core::marker::PhantomData<(K, V)>,
}

impl<K, S, V, T> DenseKv<K, S, V, T>
where
    K: KvElement,
    S: AsRef<[K]> + AsMut<[K]>,
    V: KvElement,
    T: AsRef<[V]> + AsMut<[V]>,
{
    /// A cache over `keys` and `values`, laid out `[layer][pos][width]`: a
    /// [`KvError::Blocks`] unless a row is a whole number of each type's blocks, a
    /// [`KvError::Storage`] unless each holds exactly [`storage_len`] units of its type.
    pub fn new(
        n_layer: usize,
        n_ctx: usize,
        width: usize,
        keys: S,
        values: T,
    ) -> Result<Self, KvError> {
        let wants = [
            (
                storage_len::<K>(n_layer, n_ctx, width)?,
                keys.as_ref().len(),
            ),
            (
                storage_len::<V>(n_layer, n_ctx, width)?,
                values.as_ref().len(),
            ),
        ];
        for (expected, got) in wants {
            match expected {
                Some(expected) if expected == got => {}
                expected => {
                    return Err(KvError::Storage {
                        expected: expected.unwrap_or(usize::MAX),
                        got,
                    });
                }
            }
        }
        Ok(DenseKv {
            n_layer,
            n_ctx,
            width,
            keys,
            values,
            _elem: core::marker::PhantomData,
        })
    }

    /// The first unit of row `pos` of `layer` in storage of units of `block` elements.
    fn row_start(&self, layer: usize, pos: usize, block: usize) -> usize {
        (layer * self.n_ctx + pos) * (self.width / block)
    }
}

#[cfg(feature = "alloc")]
impl<K: KvElement, V: KvElement> DenseKv<K, alloc::vec::Vec<K>, V, alloc::vec::Vec<V>> {
    /// A zeroed cache on the heap, or `None` when its size overflows or a row is not a whole
    /// number of blocks.
    pub fn zeroed(n_layer: usize, n_ctx: usize, width: usize) -> Option<Self> {
        let n_keys = storage_len::<K>(n_layer, n_ctx, width).ok()??;
        let n_values = storage_len::<V>(n_layer, n_ctx, width).ok()??;
        let keys = alloc::vec![K::default(); n_keys];
        let values = alloc::vec![V::default(); n_values];
        Self::new(n_layer, n_ctx, width, keys, values).ok()
    }
}

impl<K, S, V, T> KvCache for DenseKv<K, S, V, T>
where
    K: KvElement + Sync,
    S: AsRef<[K]> + AsMut<[K]> + Sync,
    V: KvElement + Sync,
    T: AsRef<[V]> + AsMut<[V]> + Sync,
{
    fn n_layer(&self) -> usize {
        self.n_layer
    }

    fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    fn width(&self) -> usize {
        self.width
    }

    fn write(
        &mut self,
        layer: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), KvError> {
        if layer >= self.n_layer {
            return Err(KvError::NoSuchLayer {
                layer,
                n_layer: self.n_layer,
            });
        }
        if pos >= self.n_ctx {
            return Err(KvError::Full {
                pos,
                n_ctx: self.n_ctx,
            });
        }
        for row in [key, value] {
            if row.len() != self.width {
                return Err(KvError::Width {
                    expected: self.width,
                    got: row.len(),
                });
            }
        }
        let at = self.row_start(layer, pos, K::BLOCK);
        K::encode(key, &mut self.keys.as_mut()[at..at + self.width / K::BLOCK]);
        let at = self.row_start(layer, pos, V::BLOCK);
        V::encode(
            value,
            &mut self.values.as_mut()[at..at + self.width / V::BLOCK],
        );
        Ok(())
    }

    fn keys(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        let at = self.row_start(layer, start, K::BLOCK);
        K::row(&self.keys.as_ref()[at..at + n * self.width / K::BLOCK])
    }

    fn values(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        let at = self.row_start(layer, start, V::BLOCK);
        V::row(&self.values.as_ref()[at..at + n * self.width / V::BLOCK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn f16_cache_round_trips_representable_values() {
        let mut keys = [f16::ZERO; 2 * 3 * 4];
        let mut values = [f16::ZERO; 2 * 3 * 4];
        let mut kv = DenseKv::new(2, 3, 4, &mut keys[..], &mut values[..]).unwrap();
        kv.write(1, 2, &[1.0, -2.0, 0.5, 4.0], &[0.25, 0.0, -1.0, 8.0])
            .unwrap();
        let k = kv.key(1, 2);
        assert_eq!(
            [k.get(0), k.get(1), k.get(2), k.get(3)],
            [1.0, -2.0, 0.5, 4.0]
        );
        assert_eq!(kv.value(1, 2).get(3), 8.0);
        assert_eq!(kv.key(0, 2).get(0), 0.0);
    }

    #[test]
    fn bad_positions_layers_widths_and_storage_are_errors() {
        let mut keys = [0f32; 8];
        let mut values = [0f32; 8];
        let mut kv = DenseKv::new(2, 2, 2, &mut keys[..], &mut values[..]).unwrap();
        assert_eq!(
            kv.write(0, 2, &[0.0; 2], &[0.0; 2]),
            Err(KvError::Full { pos: 2, n_ctx: 2 })
        );
        assert!(matches!(
            kv.write(2, 0, &[0.0; 2], &[0.0; 2]),
            Err(KvError::NoSuchLayer { .. })
        ));
        assert!(matches!(
            kv.write(0, 0, &[0.0; 3], &[0.0; 2]),
            Err(KvError::Width { .. })
        ));
        let mut short = [0f32; 7];
        let mut ok = [0f32; 8];
        assert!(DenseKv::new(2, 2, 2, &mut short[..], &mut ok[..]).is_err());
    }

    #[test]
    fn quantized_halves_store_blocks_and_bytes() {
        let width = 64;
        let mut kv = DenseKv::<BlockQ8_0, Vec<_>, Fp8E4M3, Vec<_>>::zeroed(2, 3, width).unwrap();
        let key: Vec<f32> = (0..width).map(|i| i as f32 - 20.0).collect();
        let value: Vec<f32> = (0..width).map(|i| 0.25 * i as f32).collect();
        kv.write(1, 2, &key, &value).unwrap();
        let (k, v) = (kv.key(1, 2), kv.value(1, 2));
        assert!(matches!(k, KvRow::Q8_0(b) if b.len() == 2));
        assert!(matches!(v, KvRow::Fp8(b) if b.len() == width));
        for i in 0..width {
            // Each block's largest magnitude is a code of 127 exactly (up to its f16 scale).
            let step = if i < 32 { 20.0 / 127.0 } else { 43.0 / 127.0 };
            assert!((k.get(i) - key[i]).abs() <= step * 0.51, "key {i}");
            assert!((v.get(i) - value[i]).abs() <= value[i] / 16.0, "value {i}");
        }
        assert_eq!(kv.keys(1, 1, 2).len(), 2 * width);
        assert_eq!(kv.key(0, 2).get(5), 0.0);
    }

    #[test]
    fn rows_that_are_not_whole_blocks_are_refused() {
        assert_eq!(
            storage_len::<BlockQ8_0>(1, 4, 48),
            Err(KvError::Blocks {
                width: 48,
                block: 32
            })
        );
        assert!(DenseKv::<f16, Vec<_>, BlockQ8_0, Vec<_>>::zeroed(1, 4, 48).is_none());
        let mut keys = [f16::ZERO; 4 * 48];
        let mut values = [BlockQ8_0::default(); 6];
        let err = DenseKv::new(1, 4, 48, &mut keys[..], &mut values[..]).err();
        assert!(matches!(err, Some(KvError::Blocks { .. })));
        assert_eq!(storage_len::<f32>(usize::MAX, 2, 1), Ok(None));
    }
}
