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
struct Ring<E> {
    keys: Vec<E>,
    values: Vec<E>,
}

/// A KV cache with a DRAM tier of the newest positions and a flash tier for the rest.
pub struct SpillKv<E: SpillElement> {
    shape: KvShape,
    layout: SpillLayout,
    ring_blocks: usize,
    rings: Vec<Ring<E>>,
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

impl<E: SpillElement> SpillKv<E> {
    /// A cache of `shape` that keeps at least the newest `dram_tokens` positions of each layer
    /// in DRAM and spills older ones to a new file in `dir`. The file is unlinked at once, so
    /// it disappears with the cache, even after a crash.
    pub fn create(dir: &Path, shape: KvShape, dram_tokens: usize) -> io::Result<SpillKv<E>> {
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
        let layout = SpillLayout {
            width,
            element_bytes: size_of::<E>(),
            ctx_blocks: n_ctx.div_ceil(KV_BLOCK),
        };
        // With one block more than `dram_tokens` need, the ring still holds the newest
        // `dram_tokens` positions right after its oldest block was spilled.
        let ring_blocks = (dram_tokens.div_ceil(KV_BLOCK) + 1).min(layout.ctx_blocks);
        let ring_elements = ring_blocks * layout.block_elements();
        let rings = (0..n_layer)
            .map(|_| {
                Ok(Ring {
                    keys: zeroed(ring_elements)?,
                    values: zeroed(ring_elements)?,
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
        let block = self.layout.block_bytes();
        let spilled: usize = self.dram_first.iter().sum();
        SpillStats {
            dram_bytes: 2 * (self.ring_blocks * self.shape.n_layer) as u64 * block,
            flash_bytes: 2 * spilled as u64 * block,
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

    fn slot(&self, block: usize) -> core::ops::Range<usize> {
        let start = block % self.ring_blocks * self.layout.block_elements();
        start..start + self.layout.block_elements()
    }

    /// The spilled rows of `block` of `layer`'s keys or values, `start` rows in, `n` long.
    fn mapped_rows(&self, layer: usize, half: Half, block: usize, start: usize, n: usize) -> &[E] {
        let row_bytes = self.shape.width * size_of::<E>();
        let at = self.layout.offset(layer, half, block) as usize + start * row_bytes;
        E::from_bytes(&self.map.as_bytes()[at..at + n * row_bytes])
    }

    /// Writes the oldest block of `layer`'s ring to the file.
    fn spill_oldest(&mut self, layer: usize) -> io::Result<()> {
        let block = self.dram_first[layer];
        let slot = self.slot(block);
        let ring = &self.rings[layer];
        for (half, rows) in [(Half::Keys, &ring.keys), (Half::Values, &ring.values)] {
            let bytes = E::as_bytes(&rows[slot.clone()]);
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
        let slot = self.slot(block);
        let keys = self.mapped_rows(layer, Half::Keys, block, 0, KV_BLOCK);
        let values = self.mapped_rows(layer, Half::Values, block, 0, KV_BLOCK);
        let (keys, values) = (keys.as_ptr(), values.as_ptr());
        let ring = &mut self.rings[layer];
        // SAFETY: both point at `KV_BLOCK` rows (one slot's elements) inside the map, which
        // lives as long as `self` and is not the ring's memory, so the copies do not overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(keys, ring.keys[slot.clone()].as_mut_ptr(), slot.len());
            core::ptr::copy_nonoverlapping(
                values,
                ring.values[slot.clone()].as_mut_ptr(),
                slot.len(),
            );
        }
        self.read += 2 * self.layout.block_bytes();
        self.dram_first[layer] = block;
    }

    fn read_rows(&self, layer: usize, start: usize, n: usize, half: Half) -> KvRow<'_> {
        let block = start / KV_BLOCK;
        debug_assert_eq!(
            block,
            (start + n.max(1) - 1) / KV_BLOCK,
            "read crosses a block"
        );
        if block < self.dram_first[layer] {
            return E::row(self.mapped_rows(layer, half, block, start % KV_BLOCK, n));
        }
        let ring = &self.rings[layer];
        let rows = match half {
            Half::Keys => &ring.keys,
            Half::Values => &ring.values,
        };
        let at = self.slot(block).start + start % KV_BLOCK * self.shape.width;
        E::row(&rows[at..at + n * self.shape.width])
    }
}

impl<E: SpillElement> KvCache for SpillKv<E> {
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
        let at = self.slot(block).start + pos % KV_BLOCK * width;
        let ring = &mut self.rings[layer];
        for (dst, src) in [(&mut ring.keys, key), (&mut ring.values, value)] {
            for (d, &s) in dst[at..at + width].iter_mut().zip(src) {
                *d = E::from_f32(s);
            }
        }
        Ok(())
    }

    fn prepare_layer(&mut self, layer: usize, n_pos: usize) -> Result<(), KvError> {
        let n_layer = self.shape.n_layer;
        if layer >= n_layer {
            return Err(KvError::NoSuchLayer { layer, n_layer });
        }
        let spilled = self.dram_first[layer].min(n_pos.div_ceil(KV_BLOCK));
        self.read += 2 * spilled as u64 * self.layout.block_bytes();
        // While this layer computes, bring in the next one's spilled blocks (after the last
        // layer, the first layer's for the next step).
        let next = (layer + 1) % n_layer;
        let len = (self.dram_first[next] as u64 * self.layout.block_bytes()) as usize;
        let at = |half| self.layout.offset(next, half, 0) as usize;
        self.prefetcher
            .request([(at(Half::Keys), len), (at(Half::Values), len)]);
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
