//! Where each block of spilled rows sits in the spill file.

use tern_core::kv::KV_BLOCK;

/// Keys or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Half {
    Keys = 0,
    Values = 1,
}

/// The file holds, for each layer, its key blocks for the whole context and then its value
/// blocks, so one layer's spilled keys (or values) are a single read. Keys and values may be
/// of different types, so each half has its own row size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SpillLayout {
    /// Bytes of one key row, then of one value row.
    pub row_bytes: [usize; 2],
    /// Blocks of [`KV_BLOCK`] positions that cover the context.
    pub ctx_blocks: usize,
}

impl SpillLayout {
    /// Bytes of one block of rows of `half`.
    pub fn block_bytes(&self, half: Half) -> u64 {
        (KV_BLOCK * self.row_bytes[half as usize]) as u64
    }

    /// Bytes of one block of key rows and one of value rows.
    pub fn pair_bytes(&self) -> u64 {
        self.block_bytes(Half::Keys) + self.block_bytes(Half::Values)
    }

    /// Byte offset of `block` of `layer`'s keys or values.
    pub fn offset(&self, layer: usize, half: Half, block: usize) -> u64 {
        let layer_start = (layer * self.ctx_blocks) as u64 * self.pair_bytes();
        let half_start = match half {
            Half::Keys => 0,
            Half::Values => self.ctx_blocks as u64 * self.block_bytes(Half::Keys),
        };
        layer_start + half_start + block as u64 * self.block_bytes(half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_layers_do_not_overlap() {
        let l = SpillLayout {
            row_bytes: [6, 6],
            ctx_blocks: 4,
        };
        let b = l.block_bytes(Half::Keys);
        assert_eq!(b, 32 * 3 * 2);
        assert_eq!(l.offset(0, Half::Keys, 3), 3 * b);
        assert_eq!(l.offset(0, Half::Values, 0), 4 * b);
        assert_eq!(l.offset(1, Half::Keys, 0), 8 * b);
        assert_eq!(l.offset(1, Half::Values, 3), 15 * b);
    }

    #[test]
    fn halves_of_different_types_do_not_overlap() {
        // q8_0 keys (2 blocks of 34 bytes per row), FP8 values (64 bytes per row).
        let l = SpillLayout {
            row_bytes: [68, 64],
            ctx_blocks: 3,
        };
        let (k, v) = (l.block_bytes(Half::Keys), l.block_bytes(Half::Values));
        assert_eq!(l.offset(0, Half::Keys, 2) + k, l.offset(0, Half::Values, 0));
        assert_eq!(l.offset(0, Half::Values, 2) + v, l.offset(1, Half::Keys, 0));
        assert_eq!(l.offset(2, Half::Keys, 0), 2 * 3 * (k + v));
    }
}
