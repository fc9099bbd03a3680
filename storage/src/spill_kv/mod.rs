//! A KV cache that keeps the newest positions in DRAM and spills older ones to a file on
//! flash, the paper's scheme for contexts whose cache outgrows memory.
//!
//! Rows are kept in blocks of [`KV_BLOCK`] positions. Each layer has a DRAM ring of its
//! newest blocks; when a write needs a slot, the oldest block of the ring is written to the
//! spill file. Attention reads spilled blocks straight from a read-only map of that file, so
//! they cost no copy and their pages belong to the OS (file-backed, evictable), not to the
//! process. [`KvCache::prepare_layer`] hands the next layer's spilled range to a prefetch
//! thread that brings it in while the current layer computes. Rows are stored as they come,
//! so results are bit-identical to a cache wholly in DRAM; only where the bytes wait differs.
//! Keys and values may be of different types; quantized rows (q8_0 blocks, FP8) move in their
//! stored form, so a spilled q8_0 cache also takes 0.53 of an f16 one's flash.

mod element;
mod layout;
mod prefetch;

pub use element::SpillElement;

use element::zeroed;

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tern_core::kv::{KV_BLOCK, KvCache, KvError, KvRow};

use crate::MappedFile;
use layout::{Half, SpillLayout};
use prefetch::Prefetcher;

/// The shape of a cache: layers, positions and elements per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// Layers, each with its own keys and values.
    pub n_layer: usize,
    /// Positions per layer: the context length the cache can hold.
    pub n_ctx: usize,
    /// Elements per row: every key (or value) head of one position.
    pub width: usize,
}

/// Bytes a [`SpillKv`] holds in each tier, and the traffic with its flash tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpillStats {
    /// The DRAM rings.
    pub dram_bytes: u64,
    /// Rows spilled to the file so far (keys and values).
    pub flash_bytes: u64,
    /// Spilled rows handed to attention (from the page cache or the device).
    pub bytes_read: u64,
    /// Bytes written to the file so far: the spilled keys and values, each row once.
    pub bytes_written: u64,
}

/// One layer's newest blocks, slot `block % ring_blocks`.
struct Ring<K, V> {
    keys: Vec<K>,
    values: Vec<V>,
}

/// A KV cache with a DRAM tier of the newest positions and a flash tier for the rest, its
/// keys in units of `K` and its values in units of `V`.
pub struct SpillKv<K: SpillElement, V: SpillElement = K> {
    shape: KvShape,
    layout: SpillLayout,
    ring_blocks: usize,
    rings: Vec<Ring<K, V>>,
    /// Per layer: the first block held in its ring; the blocks before it are in the file.
    dram_first: Vec<usize>,
    file: File,
    /// The whole spill file, read-only; `prefetcher` reads it too.
    map: Arc<MappedFile>,
    prefetcher: Prefetcher,
    read: u64,
    written: u64,
    error: Option<io::Error>,
}

impl<K: SpillElement, V: SpillElement> SpillKv<K, V> {
    /// A cache of `shape` that keeps at least the newest `dram_tokens` positions of each layer
    /// in DRAM and spills older ones to a new file in `dir`. The file is unlinked at once, so
    /// it disappears with the cache, even after a crash. Rows must be whole blocks of both
    /// types.
    pub fn create(dir: &Path, shape: KvShape, dram_tokens: usize) -> io::Result<SpillKv<K, V>> {
        let KvShape {
            n_layer,
            n_ctx,
            width,
        } = shape;
        if n_layer == 0 || n_ctx == 0 || width == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a KV cache needs layers, positions and a row width",
            ));
        }
        if width % K::BLOCK != 0 || width % V::BLOCK != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "KV rows of {width} elements do not split into blocks of {}",
                    K::BLOCK.max(V::BLOCK)
                ),
            ));
        }
        let layout = SpillLayout {
            row_bytes: [
                width / K::BLOCK * size_of::<K>(),
                width / V::BLOCK * size_of::<V>(),
            ],
            ctx_blocks: n_ctx.div_ceil(KV_BLOCK),
        };
        // With one block more than `dram_tokens` need, the ring still holds the newest
        // `dram_tokens` positions right after its oldest block was spilled.
        let ring_blocks = (dram_tokens.div_ceil(KV_BLOCK) + 1).min(layout.ctx_blocks);
        let rings = (0..n_layer)
            .map(|_| {
                Ok(Ring {
                    keys: zeroed(ring_blocks * KV_BLOCK * (width / K::BLOCK))?,
                    values: zeroed(ring_blocks * KV_BLOCK * (width / V::BLOCK))?,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let file = create_unlinked(dir)?;
        // A sparse file of the whole context: blocks take space on flash only once spilled.
        file.set_len(layout.offset(n_layer, Half::Keys, 0))?;
        let map = Arc::new(MappedFile::from_file(&file)?);
        let prefetcher = Prefetcher::start(map.clone())?;
        Ok(SpillKv {
            shape,
            layout,
            ring_blocks,
            rings,
            dram_first: vec![0; n_layer],
            file,
            map,
            prefetcher,
            read: 0,
            written: 0,
            error: None,
        })
    }

    /// Positions of each layer kept in DRAM at least.
    pub fn dram_tokens(&self) -> usize {
        (self.ring_blocks - 1) * KV_BLOCK
    }

    /// Bytes in each tier now, and the file traffic since the cache was made.
    pub fn stats(&self) -> SpillStats {
        let pair = self.layout.pair_bytes();
        let spilled: usize = self.dram_first.iter().sum();
        SpillStats {
            dram_bytes: (self.ring_blocks * self.shape.n_layer) as u64 * pair,
            flash_bytes: spilled as u64 * pair,
            bytes_read: self.read,
            bytes_written: self.written,
        }
    }

    /// The I/O error behind the last [`KvError::Flash`], if any.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    fn fail(&mut self, layer: usize, e: io::Error) -> KvError {
        self.error = Some(e);
        KvError::Flash { layer }
    }

    /// The units of ring slot `block % ring_blocks` in a ring of units of `block_len`
    /// elements.
    fn slot(&self, block: usize, block_len: usize) -> core::ops::Range<usize> {
        let units = KV_BLOCK * (self.shape.width / block_len);
        let start = block % self.ring_blocks * units;
        start..start + units
    }

    /// The spilled rows of `block` of `layer`'s keys or values, `start` rows in, `n` long.
    fn mapped_rows<E: SpillElement>(
        &self,
        layer: usize,
        half: Half,
        block: usize,
        start: usize,
        n: usize,
    ) -> &[E] {
        let row_bytes = self.layout.row_bytes[half as usize];
        let at = self.layout.offset(layer, half, block) as usize + start * row_bytes;
        E::from_bytes(&self.map.as_bytes()[at..at + n * row_bytes])
    }

    /// Writes the oldest block of `layer`'s ring to the file.
    fn spill_oldest(&mut self, layer: usize) -> io::Result<()> {
        let block = self.dram_first[layer];
        let ring = &self.rings[layer];
        let halves = [
            (
                Half::Keys,
                K::as_bytes(&ring.keys[self.slot(block, K::BLOCK)]),
            ),
            (
                Half::Values,
                V::as_bytes(&ring.values[self.slot(block, V::BLOCK)]),
            ),
        ];
        for (half, bytes) in halves {
            let at = self.layout.offset(layer, half, block);
            std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, at)?;
            self.written += bytes.len() as u64;
        }
        self.dram_first[layer] += 1;
        Ok(())
    }

    /// Brings spilled `block` of `layer` back into its ring slot, for a history cut back to
    /// inside it: its earlier positions are still wanted and their new neighbours go to DRAM.
    fn unspill(&mut self, layer: usize, block: usize) {
        let (key_slot, value_slot) = (self.slot(block, K::BLOCK), self.slot(block, V::BLOCK));
        let keys = self.mapped_rows::<K>(layer, Half::Keys, block, 0, KV_BLOCK);
        let values = self.mapped_rows::<V>(layer, Half::Values, block, 0, KV_BLOCK);
        let (keys, values) = (keys.as_ptr(), values.as_ptr());
        let ring = &mut self.rings[layer];
        // SAFETY: each points at `KV_BLOCK` rows (one slot's units of its type) inside the
        // map, which lives as long as `self` and is not the ring's memory, so the copies do
        // not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                keys,
                ring.keys[key_slot.clone()].as_mut_ptr(),
                key_slot.len(),
            );
            core::ptr::copy_nonoverlapping(
                values,
                ring.values[value_slot.clone()].as_mut_ptr(),
                value_slot.len(),
            );
        }
        self.read += self.layout.pair_bytes();
        self.dram_first[layer] = block;
    }

    fn read_rows(&self, layer: usize, start: usize, n: usize, half: Half) -> KvRow<'_> {
        let block = start / KV_BLOCK;
        debug_assert_eq!(
            block,
            (start + n.max(1) - 1) / KV_BLOCK,
            "read crosses a block"
        );
        let spilled = block < self.dram_first[layer];
        let (offset, width) = (start % KV_BLOCK, self.shape.width);
        let ring = &self.rings[layer];
        match half {
            Half::Keys if spilled => K::row(self.mapped_rows(layer, half, block, offset, n)),
            Half::Values if spilled => V::row(self.mapped_rows(layer, half, block, offset, n)),
            Half::Keys => {
                let at = self.slot(block, K::BLOCK).start + offset * (width / K::BLOCK);
                K::row(&ring.keys[at..at + n * (width / K::BLOCK)])
            }
            Half::Values => {
                let at = self.slot(block, V::BLOCK).start + offset * (width / V::BLOCK);
                V::row(&ring.values[at..at + n * (width / V::BLOCK)])
            }
        }
    }
}

impl<K: SpillElement, V: SpillElement> KvCache for SpillKv<K, V> {
    fn n_layer(&self) -> usize {
        self.shape.n_layer
    }

    fn n_ctx(&self) -> usize {
        self.shape.n_ctx
    }

    fn width(&self) -> usize {
        self.shape.width
    }

    fn write(
        &mut self,
        layer: usize,
        pos: usize,
        key: &[f32],
        value: &[f32],
    ) -> Result<(), KvError> {
        let KvShape {
            n_layer,
            n_ctx,
            width,
        } = self.shape;
        if layer >= n_layer {
            return Err(KvError::NoSuchLayer { layer, n_layer });
        }
        if pos >= n_ctx {
            return Err(KvError::Full { pos, n_ctx });
        }
        for row in [key, value] {
            if row.len() != width {
                return Err(KvError::Width {
                    expected: width,
                    got: row.len(),
                });
            }
        }
        let block = pos / KV_BLOCK;
        if block < self.dram_first[layer] {
            // A cache only grows at its end: writing here means the history was cut back.
            self.unspill(layer, block);
        }
        while block >= self.dram_first[layer] + self.ring_blocks {
            self.spill_oldest(layer).map_err(|e| self.fail(layer, e))?;
        }
        let (key_units, value_units) = (width / K::BLOCK, width / V::BLOCK);
        let key_at = self.slot(block, K::BLOCK).start + pos % KV_BLOCK * key_units;
        let value_at = self.slot(block, V::BLOCK).start + pos % KV_BLOCK * value_units;
        let ring = &mut self.rings[layer];
        K::encode(key, &mut ring.keys[key_at..key_at + key_units]);
        V::encode(value, &mut ring.values[value_at..value_at + value_units]);
        Ok(())
    }

    fn prepare_layer(&mut self, layer: usize, n_pos: usize) -> Result<(), KvError> {
        let n_layer = self.shape.n_layer;
        if layer >= n_layer {
            return Err(KvError::NoSuchLayer { layer, n_layer });
        }
        let spilled = self.dram_first[layer].min(n_pos.div_ceil(KV_BLOCK));
        self.read += spilled as u64 * self.layout.pair_bytes();
        // While this layer computes, bring in the next one's spilled blocks (after the last
        // layer, the first layer's for the next step).
        let next = (layer + 1) % n_layer;
        let blocks = self.dram_first[next] as u64;
        let span = |half| {
            let at = self.layout.offset(next, half, 0) as usize;
            (at, (blocks * self.layout.block_bytes(half)) as usize)
        };
        self.prefetcher
            .request([span(Half::Keys), span(Half::Values)]);
        Ok(())
    }

    fn keys(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        self.read_rows(layer, start, n, Half::Keys)
    }

    fn values(&self, layer: usize, start: usize, n: usize) -> KvRow<'_> {
        self.read_rows(layer, start, n, Half::Values)
    }
}

/// A new file in `dir` for reading and writing, already unlinked.
fn create_unlinked(dir: &Path) -> io::Result<File> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".tern-kv-{}-{n}.spill", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests;
