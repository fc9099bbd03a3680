//! The code formats as types, so every kernel is compiled once per format with its
//! sub-block shape, zero point and scale type as constants, and the operands of one call,
//! checked once before any kernel reads them.

use tern_core::cpu::codes::{CodeFormat, Scales, ZeroPoint};
use tern_core::cpu::{ActLayout, ActTile, MAX_TILE_TOKENS, PANEL_ROWS, PanelLayout};

/// The shape of one code format (see `tern_core::cpu::codes` and the panel layout).
pub(crate) trait Format {
    /// Columns per sub-block: 16 or 32.
    const SUB_BLOCK: usize;
    /// Bits per code: 4 means two codes per byte (group `v` low, `v + GROUPS / 2` high).
    const BITS: u32;
    /// `Some(o)`: `w = s * (q - o)`; `None`: `w = s * q + m`.
    const OFFSET: Option<i32>;
    /// K-quants: `i8` sub-block scales (and minimums) under f16 factors per 256-column
    /// block; else one f16 scale (and minimum) per sub-block.
    const SUPER_BLOCK: bool;

    /// Groups of four columns per sub-block.
    const GROUPS: usize = Self::SUB_BLOCK / 4;
    /// 32-byte code vectors per sub-block (two NEON registers: rows 0-3, rows 4-7).
    const VECTORS: usize = if Self::BITS == 4 {
        Self::GROUPS / 2
    } else {
        Self::GROUPS
    };
    const CODE_BYTES: usize = 32 * Self::VECTORS;
    const SCALE_BYTES: usize = if Self::SUPER_BLOCK { 1 } else { 2 };
    /// Scale arrays per sub-block (and factor arrays per block): 2 with minimums.
    const ARRAYS: usize = if Self::OFFSET.is_some() { 1 } else { 2 };
    /// Byte offset of the minimums within a sub-block.
    const MINS_AT: usize = Self::CODE_BYTES + PANEL_ROWS * Self::SCALE_BYTES;
    const SUB_BLOCK_BYTES: usize = Self::CODE_BYTES + Self::ARRAYS * PANEL_ROWS * Self::SCALE_BYTES;
    /// Sub-blocks per block of the panel: a K-quant super-block's, else one.
    const SUBS_PER_BLOCK: usize = if Self::SUPER_BLOCK {
        256 / Self::SUB_BLOCK
    } else {
        1
    };
    /// Bytes of a block's closing f16 factors `d` (and `dmin`), K-quants only.
    const FACTOR_BYTES: usize = if Self::SUPER_BLOCK {
        Self::ARRAYS * PANEL_ROWS * 2
    } else {
        0
    };
    const BLOCK_BYTES: usize = Self::SUBS_PER_BLOCK * Self::SUB_BLOCK_BYTES + Self::FACTOR_BYTES;
    /// 8-bit codes (0..=255) do not fit a signed byte: the kernels multiply them as
    /// `q - 128` (one `eor` with 0x80), which folds in the zero point.
    const CENTERED: bool = Self::BITS == 8;

    /// Byte offset of sub-block `b` within a panel.
    #[inline(always)]
    fn sub_block_at(b: usize) -> usize {
        b / Self::SUBS_PER_BLOCK * Self::BLOCK_BYTES
            + b % Self::SUBS_PER_BLOCK * Self::SUB_BLOCK_BYTES
    }
}

macro_rules! legacy_format {
    ($name:ident, $bits:expr, $offset:expr) => {
        pub(crate) struct $name;
        impl Format for $name {
            const SUB_BLOCK: usize = 32;
            const BITS: u32 = $bits;
            const OFFSET: Option<i32> = $offset;
            const SUPER_BLOCK: bool = false;
        }
    };
}

legacy_format!(Q4_0, 4, Some(8));
legacy_format!(Q4_1, 4, None);
legacy_format!(Q5_0, 5, Some(16));
legacy_format!(Q5_1, 5, None);
legacy_format!(Q8_0, 8, Some(128));
/// Which legacy [`Format`] type a core [`CodeFormat`] is (K-quants: `crate::kquant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl Which {
    /// The kernels' name for `format`, or `None` for a shape they do not cover.
    pub(crate) fn of(format: CodeFormat) -> Option<Which> {
        use ZeroPoint::{Min, Offset};
        let f = format;
        if f.scales != Scales::PerSubBlock {
            return None;
        }
        Some(match (f.sub_block, f.bits, f.zero) {
            (32, 4, Offset(8)) => Which::Q4_0,
            (32, 4, Min) => Which::Q4_1,
            (32, 5, Offset(16)) => Which::Q5_0,
            (32, 5, Min) => Which::Q5_1,
            (32, 8, Offset(128)) => Which::Q8_0,
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
    /// Bytes from one activation row to the next.
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
    /// the layout arithmetic has no divisions. The panel size must be core's for `layout`,
    /// so a layout core changes and `F` does not follow is refused, not misread.
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
            && panel_bytes == layout.panel_bytes()
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
pub(crate) mod tests {
    use super::*;
    use tern_core::DType;

    /// `F`'s constants are those of `dtype` in the core layout.
    pub(crate) fn layout_of<F: Format>(dtype: DType) {
        let format = CodeFormat::of(dtype).unwrap();
        let layout = PanelLayout { format, cols: 256 };
        assert_eq!(F::SUB_BLOCK, format.sub_block, "{dtype}");
        assert_eq!(F::CODE_BYTES, layout.code_bytes(), "{dtype}");
        assert_eq!(F::SCALE_BYTES, layout.scale_size(), "{dtype}");
        assert_eq!(F::SUB_BLOCK_BYTES, layout.sub_block_bytes(), "{dtype}");
        assert_eq!(F::SUBS_PER_BLOCK, layout.subs_per_block(), "{dtype}");
        assert_eq!(F::FACTOR_BYTES, layout.factor_bytes(), "{dtype}");
        assert_eq!(F::BLOCK_BYTES, layout.block_bytes(), "{dtype}");
        for b in 0..3 * F::SUBS_PER_BLOCK {
            assert_eq!(F::sub_block_at(b), layout.sub_block_at(b), "{dtype} {b}");
        }
        let zero = match format.zero {
            ZeroPoint::Offset(o) => Some(i32::from(o)),
            ZeroPoint::Min => None,
        };
        assert_eq!(F::OFFSET, zero, "{dtype}");
        assert_eq!(u32::from(format.bits), F::BITS, "{dtype}");
    }

    #[test]
    fn format_constants_match_the_core_layout() {
        let legacy = [
            (DType::Q4_0, Which::Q4_0),
            (DType::Q4_1, Which::Q4_1),
            (DType::Q5_0, Which::Q5_0),
            (DType::Q5_1, Which::Q5_1),
            (DType::Q8_0, Which::Q8_0),
        ];
        for (dtype, which) in legacy {
            assert_eq!(Which::of(CodeFormat::of(dtype).unwrap()), Some(which));
        }
        layout_of::<Q4_0>(DType::Q4_0);
        layout_of::<Q4_1>(DType::Q4_1);
        layout_of::<Q5_0>(DType::Q5_0);
        layout_of::<Q5_1>(DType::Q5_1);
        layout_of::<Q8_0>(DType::Q8_0);
    }

    /// A format core adds gets the scalar kernels until it gets its own: this says so.
    #[test]
    fn every_core_code_format_has_kernels() {
        for dtype in DType::ALL {
            if let Some(format) = CodeFormat::of(dtype) {
                let covered =
                    Which::of(format).is_some() || crate::kquant::KQuant::of(format).is_some();
                assert!(covered, "{dtype} has no NEON kernels");
            }
        }
    }
}
