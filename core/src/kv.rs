//! The key/value cache: the trait every attention implementation reads through, and a dense
//! implementation in f32 or f16 over storage the caller provides.
//!
//! Reads come in blocks of [`KV_BLOCK`] positions so that a cache may keep its rows in pieces
//! (a DRAM ring of the newest blocks, older blocks staged from flash) and still hand out each
//! requested range as one contiguous slice.

use core::fmt;

use half::f16;

/// Cached rows in their stored type: one row holds all key (or value) heads of one position
/// of one layer; [`KvCache::keys`] hands out several rows back to back.
#[derive(Clone, Copy, Debug)]
pub enum KvRow<'a> {
    /// Rows of an f32 cache.
    F32(&'a [f32]),
    /// Rows of an f16 cache; [`KvRow::get`] widens each element to f32.
    F16(&'a [f16]),
}

impl KvRow<'_> {
    /// Number of elements (the rows' count times the cache's width).
    pub fn len(&self) -> usize {
        match self {
            KvRow::F32(r) => r.len(),
            KvRow::F16(r) => r.len(),
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
        /// Elements each of the key and value storage must hold (`usize::MAX` when the size
        /// overflows).
        expected: usize,
        /// Elements the storage given holds.
        got: usize,
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
                "KV cache storage holds {got} elements, its shape needs {expected}"
            ),
            KvError::Flash { layer } => {
                write!(f, "moving layer {layer}'s KV rows to or from flash failed")
            }
        }
    }
}

/// Element type of a KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvType {
    /// Full precision.
    F32,
    /// Half the memory of f32; llama.cpp's default.
    #[default]
    F16,
}

impl KvType {
    /// Bytes per element.
    pub const fn element_bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
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

/// An element type a dense cache can store.
pub trait KvElement: Copy + Default {
    /// `x` in this type, rounded to nearest even for f16.
    fn from_f32(x: f32) -> Self;
    /// A slice of stored elements as a [`KvRow`] of the matching variant.
    fn row(slice: &[Self]) -> KvRow<'_>;
}

impl KvElement for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn row(slice: &[f32]) -> KvRow<'_> {
        KvRow::F32(slice)
    }
}

impl KvElement for f16 {
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn row(slice: &[f16]) -> KvRow<'_> {
        KvRow::F16(slice)
    }
}

/// A cache laid out `[layer][pos][width]` for keys and the same for values, in storage `S`
/// (a `Vec` with `alloc`, or any slice the caller owns).
pub struct DenseKv<E, S> {
    n_layer: usize,
    n_ctx: usize,
    width: usize,
    keys: S,
    values: S,
    _elem: core::marker::PhantomData<E>,
}

impl<E: KvElement, S: AsRef<[E]> + AsMut<[E]>> DenseKv<E, S> {
    /// Elements each of `keys` and `values` must hold.
    pub fn elements(n_layer: usize, n_ctx: usize, width: usize) -> Option<usize> {
        n_layer.checked_mul(n_ctx)?.checked_mul(width)
    }

    /// A cache over `keys` and `values`, laid out `[layer][pos][width]`; a
    /// [`KvError::Storage`] unless each holds exactly [`DenseKv::elements`] elements.
    pub fn new(
        n_layer: usize,
        n_ctx: usize,
        width: usize,
        keys: S,
        values: S,
    ) -> Result<Self, KvError> {
        let expected = Self::elements(n_layer, n_ctx, width).ok_or(KvError::Storage {
            expected: usize::MAX,
            got: keys.as_ref().len(),
        })?;
        for got in [keys.as_ref().len(), values.as_ref().len()] {
            if got != expected {
                return Err(KvError::Storage { expected, got });
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

    fn row_start(&self, layer: usize, pos: usize) -> usize {
        (layer * self.n_ctx + pos) * self.width
    }
}

#[cfg(feature = "alloc")]
impl<E: KvElement> DenseKv<E, alloc::vec::Vec<E>> {
    /// A zeroed cache on the heap, or `None` when its size overflows.
    pub fn zeroed(n_layer: usize, n_ctx: usize, width: usize) -> Option<Self> {
        let n = Self::elements(n_layer, n_ctx, width)?;
        let zeros = || alloc::vec![E::default(); n];
        Self::new(n_layer, n_ctx, width, zeros(), zeros()).ok()
    }
}

impl<E: KvElement + Sync, S: AsRef<[E]> + AsMut<[E]> + Sync> KvCache for DenseKv<E, S> {
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
        let start = self.row_start(layer, pos);
        let end = start + self.width;
        for (dst, src) in [(self.keys.as_mut(), key), (self.values.as_mut(), value)] {
            for (d, &s) in dst[start..end].iter_mut().zip(src) {
                *d = E::from_f32(s);
            }
        }
        Ok(())
    }

    fn keys(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        let at = self.row_start(layer, start);
        E::row(&self.keys.as_ref()[at..at + n * self.width])
    }

    fn values(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        let at = self.row_start(layer, start);
        E::row(&self.values.as_ref()[at..at + n * self.width])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
