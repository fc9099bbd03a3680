//! The eight code formats as types, so every kernel is compiled once per format with its
//! sub-block shape, zero point and scale type as constants, and the operands of one call,
//! checked once before any kernel reads them.

use tern_core::cpu::codes::{CodeFormat, FloatSteps, Scales, ZeroPoint};
use tern_core::cpu::{ActLayout, ActTile, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout};

/// The shape of one code format (see `tern_core::cpu::codes` and the panel layout).
pub(crate) trait Format {
    /// Columns per sub-block: 16 or 32.
    const SUB_BLOCK: usize;
    /// Bits per code: 4 means two codes per byte (group `v` low, `v + GROUPS / 2` high).
    const BITS: u32;
    /// `Some(o)`: `w = s * (q - o)`; `None`: `w = s * q + m`.
    const OFFSET: Option<i32>;
    /// K-quants: `i8` sub-block scales (and minimums) under f16 super-block factors, summed
    /// in integers per super-block; else f16 scales applied per sub-block.
    const SUPER: bool;
    /// K-quants whose integer sums become floats every two sub-blocks, minimums in their own
    /// sum (`FloatSteps::PerPair`), else once per super-block.
    const PAIRS: bool = false;

    /// Groups of four columns per sub-block.
    const GROUPS: usize = Self::SUB_BLOCK / 4;
    /// 32-byte code vectors per sub-block.
    const VECTORS: usize = if Self::BITS == 4 {
        Self::GROUPS / 2
    } else {
        Self::GROUPS
    };
    const CODE_BYTES: usize = 32 * Self::VECTORS;
    const SCALE_BYTES: usize = if Self::SUPER { 1 } else { 2 };
    /// Byte offset of the minimums within a sub-block.
    const MINS_AT: usize = Self::CODE_BYTES + PANEL_ROWS * Self::SCALE_BYTES;
    const SUB_BLOCK_BYTES: usize = match Self::OFFSET {
        Some(_) => Self::MINS_AT,
        None => Self::MINS_AT + PANEL_ROWS * Self::SCALE_BYTES,
    };
    /// Sub-blocks per panel block: a super-block's, or one.
    const SUBS_PER_BLOCK: usize = if Self::SUPER {
        256 / Self::SUB_BLOCK
    } else {
        1
    };
    /// The f16 factors `d` (and `dmin`) of the eight rows closing a K-quant block.
    const FACTOR_BYTES: usize = match (Self::SUPER, Self::OFFSET) {
        (false, _) => 0,
        (true, Some(_)) => 2 * PANEL_ROWS,
        (true, None) => 4 * PANEL_ROWS,
    };
    const BLOCK_BYTES: usize = Self::SUBS_PER_BLOCK * Self::SUB_BLOCK_BYTES + Self::FACTOR_BYTES;

    /// Byte offset of sub-block `b` within a panel.
    #[inline(always)]
    fn sub_block_at(b: usize) -> usize {
        b / Self::SUBS_PER_BLOCK * Self::BLOCK_BYTES
            + b % Self::SUBS_PER_BLOCK * Self::SUB_BLOCK_BYTES
    }

    /// Whether sub-block `b` ends a K-quant float step (a pair or a block).
    #[inline(always)]
    fn ends_step(b: usize) -> bool {
        let step = if Self::PAIRS { 2 } else { Self::SUBS_PER_BLOCK };
        Self::SUPER && (b + 1).is_multiple_of(step)
    }

    /// Byte offset of the factors of the K-quant block holding sub-block `b`.
    #[inline(always)]
    fn factors_at(b: usize) -> usize {
        (b / Self::SUBS_PER_BLOCK + 1) * Self::BLOCK_BYTES - Self::FACTOR_BYTES
    }
}

macro_rules! format {
    ($name:ident, $sub:expr, $bits:expr, $offset:expr, $super:expr $(, $pairs:expr)?) => {
        pub(crate) struct $name;
        impl Format for $name {
            const SUB_BLOCK: usize = $sub;
            const BITS: u32 = $bits;
            const OFFSET: Option<i32> = $offset;
            const SUPER: bool = $super;
            $(const PAIRS: bool = $pairs;)?
        }
    };
}

format!(Q4_0, 32, 4, Some(8), false);
format!(Q4_1, 32, 4, None, false);
format!(Q5_0, 32, 5, Some(16), false);
format!(Q5_1, 32, 5, None, false);
format!(Q8_0, 32, 8, Some(128), false);
format!(Q4K, 32, 4, None, true, true);
format!(Q5K, 32, 5, None, true);
format!(Q6K, 16, 6, Some(32), true);

/// Which [`Format`] type a core [`CodeFormat`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

impl Which {
    /// The kernels' name for `format`, or `None` for a shape they do not cover.
    pub(crate) fn of(format: CodeFormat) -> Option<Which> {
        use FloatSteps::{PerPair, PerSuperBlock};
        use Scales::{PerSubBlock, SuperBlock};
        use ZeroPoint::{Min, Offset};
        let f = format;
        Some(match (f.sub_block, f.bits, f.zero, f.scales) {
            (32, 4, Offset(8), PerSubBlock) => Which::Q4_0,
            (32, 4, Min, PerSubBlock) => Which::Q4_1,
            (32, 5, Offset(16), PerSubBlock) => Which::Q5_0,
            (32, 5, Min, PerSubBlock) => Which::Q5_1,
            (32, 8, Offset(128), PerSubBlock) => Which::Q8_0,
            (32, 4, Min, SuperBlock(PerPair)) => Which::Q4K,
            (32, 5, Min, SuperBlock(PerSuperBlock)) => Which::Q5K,
            (16, 6, Offset(32), SuperBlock(PerSuperBlock)) => Which::Q6K,
            _ => return None,
        })
    }
}

/// The operands of one `gemm_codes` call, checked: every byte a kernel reads lies within
/// `panel` and `acts`.
#[derive(Clone, Copy)]
pub(crate) struct Codes<'a> {
    /// `panels` whole panels, back to back.
    pub panel: &'a [u8],
    pub panels: usize,
    /// Bytes of one panel: the distance between consecutive panels.
    pub panel_bytes: usize,
    pub acts: &'a [u8],
    pub stride: usize,
    pub n_sub: usize,
    pub d_at: usize,
    pub isum_at: usize,
    pub fsum_at: usize,
}

impl<'a> Codes<'a> {
    /// The operands for format `F`, `panels` panels and `n` tokens, or `None` where the call
    /// is not one the kernels cover (mismatched layouts, short slices, too many tokens): the
    /// scalar definition then decides what happens. The sub-block is a constant here, so
    /// the layout arithmetic has no divisions.
    #[inline]
    pub(crate) fn check<F: Format>(
        layout: PanelLayout,
        panel: &'a [u8],
        panels: usize,
        acts: &ActTile<'a>,
        n: usize,
    ) -> Option<Codes<'a>> {
        let cols = layout.cols;
        let a = ActLayout {
            sub_block: F::SUB_BLOCK,
            ..acts.layout
        };
        let n_sub = cols / F::SUB_BLOCK;
        let stride = a.stride();
        let panel_bytes = n_sub / F::SUBS_PER_BLOCK * F::BLOCK_BYTES;
        let fits = acts.layout.sub_block == F::SUB_BLOCK
            && a.cols == cols
            && cols.is_multiple_of(F::SUB_BLOCK * F::SUBS_PER_BLOCK)
            && n <= MAX_TILE_TOKENS
            && panel.len() >= panels * panel_bytes
            && acts.bytes.len() >= n * stride
            && a.fsum_offset() + 4 * n_sub <= stride;
        fits.then_some(Codes {
            panel,
            panels,
            panel_bytes,
            acts: acts.bytes,
            stride,
            n_sub,
            d_at: a.d_offset(),
            isum_at: a.isum_offset(),
            fsum_at: a.fsum_offset(),
        })
    }

    /// The `count` panels from panel `first` on (within the checked ones).
    #[inline]
    pub(crate) fn from(&self, first: usize, count: usize) -> Codes<'a> {
        assert!(first + count <= self.panels);
        Codes {
            panel: &self.panel[first * self.panel_bytes..],
            panels: count,
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::DType;

    fn layout_of<F: Format>(dtype: DType, which: Which) {
        let format = CodeFormat::of(dtype).unwrap();
        let layout = PanelLayout { format, cols: 512 };
        assert_eq!(Which::of(format), Some(which), "{dtype}");
        assert_eq!(F::SUB_BLOCK, format.sub_block, "{dtype}");
        assert_eq!(F::CODE_BYTES, layout.code_bytes(), "{dtype}");
        assert_eq!(F::SCALE_BYTES, layout.scale_size(), "{dtype}");
        assert_eq!(F::SUB_BLOCK_BYTES, layout.sub_block_bytes(), "{dtype}");
        assert_eq!(F::SUBS_PER_BLOCK, layout.subs_per_block(), "{dtype}");
        assert_eq!(F::FACTOR_BYTES, layout.factor_bytes(), "{dtype}");
        assert_eq!(F::BLOCK_BYTES, layout.block_bytes(), "{dtype}");
        let zero = match format.zero {
            ZeroPoint::Offset(o) => Some(i32::from(o)),
            ZeroPoint::Min => None,
        };
        assert_eq!(F::OFFSET, zero, "{dtype}");
        assert_eq!(u32::from(format.bits), F::BITS, "{dtype}");
    }

    #[test]
    fn format_constants_match_the_core_layout() {
        layout_of::<Q4_0>(DType::Q4_0, Which::Q4_0);
        layout_of::<Q4_1>(DType::Q4_1, Which::Q4_1);
        layout_of::<Q5_0>(DType::Q5_0, Which::Q5_0);
        layout_of::<Q5_1>(DType::Q5_1, Which::Q5_1);
        layout_of::<Q8_0>(DType::Q8_0, Which::Q8_0);
        layout_of::<Q4K>(DType::Q4_K, Which::Q4K);
        layout_of::<Q5K>(DType::Q5_K, Which::Q5K);
        layout_of::<Q6K>(DType::Q6_K, Which::Q6K);
    }

    /// A format core adds gets the scalar kernels until it gets its own: this says so.
    #[test]
    fn every_core_code_format_has_kernels() {
        for dtype in DType::ALL {
            if let Some(format) = CodeFormat::of(dtype) {
                assert!(Which::of(format).is_some(), "{dtype} has no x86 kernels");
            }
        }
    }
}
