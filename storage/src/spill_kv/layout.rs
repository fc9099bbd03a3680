//! Where each block of spilled rows sits in the spill file.

use tern_core::kv::KV_BLOCK;

/// Keys or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Half {
    Keys = 0,
    Values = 1,
}

/// The file holds, for each layer, its key blocks for the whole context and then its value
/// blocks, so one layer's spilled keys (or values) are a single read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SpillLayout {
    pub width: usize,
    pub element_bytes: usize,
    /// Blocks of [`KV_BLOCK`] positions that cover the context.
    pub ctx_blocks: usize,
}

impl SpillLayout {
    /// Elements of one block of rows.
    pub fn block_elements(&self) -> usize {
        KV_BLOCK * self.width
    }

    pub fn block_bytes(&self) -> u64 {
        (self.block_elements() * self.element_bytes) as u64
    }

    /// Byte offset of `block` of `layer`'s keys or values.
    pub fn offset(&self, layer: usize, half: Half, block: usize) -> u64 {
        let blocks_before = (layer * 2 + half as usize) * self.ctx_blocks + block;
        blocks_before as u64 * self.block_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_and_layers_do_not_overlap() {
        let l = SpillLayout {
            width: 3,
            element_bytes: 2,
            ctx_blocks: 4,
        };
        let b = l.block_bytes();
        assert_eq!(b, 32 * 3 * 2);
        assert_eq!(l.offset(0, Half::Keys, 3), 3 * b);
        assert_eq!(l.offset(0, Half::Values, 0), 4 * b);
        assert_eq!(l.offset(1, Half::Keys, 0), 8 * b);
        assert_eq!(l.offset(1, Half::Values, 3), 15 * b);
    }
}
