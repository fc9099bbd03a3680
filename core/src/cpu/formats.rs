//! The code formats as types, so that a backend crate compiles every integer kernel once per
//! format, with the panel layout as constants: no division and no branch on the format in
//! a hot loop.
//!
//! Every constant derives from the format's [`CodeFormat`] through [`PanelLayout`], so the
//! kernels read exactly what [`super::pack_codes`] writes; and the trait is sealed, so
//! [`super::Codes::check`] and the `unsafe` kernels that trust it see the same constants.

use super::codes::{CodeFormat, FloatSteps, Scales, ZeroPoint};
use super::panel::{PANEL_ROWS, PanelLayout};
use crate::DType;

/// The panel layout ([`PanelLayout`]) of one code format, as constants.
pub trait Format: sealed::Sealed {
    /// The format's integer shape, as [`CodeFormat::of`] gives it.
    const CODES: CodeFormat;

    /// Columns per sub-block: 16 or 32, so a sub-block's activation codes are whole 16-byte
    /// vectors and its groups come in pairs (a format of another shape does not compile).
    const SUB_BLOCK: usize = {
        let s = Self::CODES.sub_block;
        assert!(
            s == 16 || s == 32,
            "kernels take sub-blocks of 16 or 32 columns"
        );
        s
    };
    /// Bits per code: 4 means two codes per byte (group `v` low, `v + GROUPS / 2` high);
    /// 5, 6 and 8 one code per byte.
    const BITS: u32 = {
        let b = Self::CODES.bits;
        assert!(
            matches!(b, 4 | 5 | 6 | 8),
            "kernels take codes of 4, 5, 6 or 8 bits"
        );
        b as u32
    };
    /// `Some(o)`: `w = s * (q - o)`; `None`: `w = s * q + m`.
    const OFFSET: Option<i32> = match Self::CODES.zero {
        ZeroPoint::Offset(o) => Some(o as i32),
        ZeroPoint::Min => None,
    };
    /// K-quants: `i8` sub-block scales (and minimums) under f16 factors per 256-column
    /// super-block, summed in integers; else an f16 scale (and minimum) per sub-block.
    const SUPER_BLOCK: bool = matches!(Self::CODES.scales, Scales::SuperBlock(_));
    /// K-quants whose integer sums become floats every two sub-blocks, minimums in their own
    /// float sum ([`FloatSteps::PerPair`]), else once per super-block.
    const PAIRS: bool = matches!(Self::CODES.scales, Scales::SuperBlock(FloatSteps::PerPair));

    /// Groups of four columns per sub-block.
    const GROUPS: usize = Self::SUB_BLOCK / 4;
    /// 32-byte code vectors per sub-block (each four columns of the eight rows).
    const VECTORS: usize = if Self::BITS == 4 {
        Self::GROUPS / 2
    } else {
        Self::GROUPS
    };
    /// Bytes of a sub-block's codes: its `VECTORS` vectors.
    const CODE_BYTES: usize = {
        let bytes = shape(Self::CODES).code_bytes();
        assert!(bytes == 32 * Self::VECTORS);
        bytes
    };
    /// Bytes of one sub-block scale or minimum: 2 (f16), or 1 (`i8`) for K-quants.
    const SCALE_BYTES: usize = shape(Self::CODES).scale_size();
    /// Byte offset of the minimums within a sub-block (after the codes and the scales).
    const MINS_AT: usize = Self::CODE_BYTES + PANEL_ROWS * Self::SCALE_BYTES;
    /// Bytes of one sub-block: codes, scales and, with minimums, minimums.
    const SUB_BLOCK_BYTES: usize = shape(Self::CODES).sub_block_bytes();
    /// Sub-blocks per block of the panel: a K-quant super-block's, else one.
    const SUBS_PER_BLOCK: usize = shape(Self::CODES).subs_per_block();
    /// Sub-blocks whose K-quant integer sums become floats together: a pair, or a block.
    const SUBS_PER_STEP: usize = match Self::CODES.scales {
        Scales::SuperBlock(steps) => steps.sub_blocks_per_step(Self::SUBS_PER_BLOCK),
        Scales::PerSubBlock => 1,
    };
    /// Bytes of a block's closing f16 factors `d` (and `dmin`), K-quants only.
    const FACTOR_BYTES: usize = shape(Self::CODES).factor_bytes();
    /// Bytes of one block: its sub-blocks, then its factors.
    const BLOCK_BYTES: usize = shape(Self::CODES).block_bytes();

    /// Byte offset of sub-block `b` within a panel.
    #[inline(always)]
    fn sub_block_at(b: usize) -> usize {
        b / Self::SUBS_PER_BLOCK * Self::BLOCK_BYTES
            + b % Self::SUBS_PER_BLOCK * Self::SUB_BLOCK_BYTES
    }

    /// Whether sub-block `b` ends a K-quant float step (a pair or a block).
    #[inline(always)]
    fn ends_step(b: usize) -> bool {
        Self::SUPER_BLOCK && (b + 1) % Self::SUBS_PER_STEP == 0
    }

    /// Byte offset of the factors of the K-quant block holding sub-block `b`.
    #[inline(always)]
    fn factors_at(b: usize) -> usize {
        (b / Self::SUBS_PER_BLOCK + 1) * Self::BLOCK_BYTES - Self::FACTOR_BYTES
    }
}

/// The layout of `format`'s sub-blocks and blocks, which does not depend on the width.
const fn shape(format: CodeFormat) -> PanelLayout {
    PanelLayout { format, cols: 0 }
}

/// The code format of `dtype`, in a constant.
const fn codes_of(dtype: DType) -> CodeFormat {
    match CodeFormat::of(dtype) {
        Some(format) => format,
        None => panic!("not a format with integer codes"),
    }
}

mod sealed {
    /// Only this module's format types are [`super::Format`]s.
    pub trait Sealed {}
}

macro_rules! format_type {
    ($(#[$doc:meta])* $name:ident, $dtype:ident) => {
        $(#[$doc])*
        pub struct $name;
        impl sealed::Sealed for $name {}
        impl Format for $name {
            const CODES: CodeFormat = codes_of(DType::$dtype);
        }
    };
}

format_type!(
    /// [`DType::Q4_0`]: 4-bit codes, zero point 8, an f16 scale per 32 columns.
    Q4_0, Q4_0
);
format_type!(
    /// [`DType::Q4_1`]: 4-bit codes, an f16 scale and minimum per 32 columns.
    Q4_1, Q4_1
);
format_type!(
    /// [`DType::Q5_0`]: 5-bit codes, zero point 16, an f16 scale per 32 columns.
    Q5_0, Q5_0
);
format_type!(
    /// [`DType::Q5_1`]: 5-bit codes, an f16 scale and minimum per 32 columns.
    Q5_1, Q5_1
);
format_type!(
    /// [`DType::Q8_0`]: 8-bit codes, zero point 128, an f16 scale per 32 columns.
    Q8_0, Q8_0
);
format_type!(
    /// [`DType::Q4_K`]: 4-bit codes, a 6-bit scale and minimum per 32 columns.
    Q4K, Q4_K
);
format_type!(
    /// [`DType::Q5_K`]: 5-bit codes, a 6-bit scale and minimum per 32 columns.
    Q5K, Q5_K
);
format_type!(
    /// [`DType::Q6_K`]: 6-bit codes, zero point 32, an 8-bit signed scale per 16 columns.
    Q6K, Q6_K
);

/// Which [`Format`] type a [`CodeFormat`] is: what a backend matches on to call the kernels
/// compiled for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatType {
    /// [`Q4_0`](struct@Q4_0), the shape of [`DType::Q4_0`].
    Q4_0,
    /// [`Q4_1`](struct@Q4_1), the shape of [`DType::Q4_1`].
    Q4_1,
    /// [`Q5_0`](struct@Q5_0), the shape of [`DType::Q5_0`].
    Q5_0,
    /// [`Q5_1`](struct@Q5_1), the shape of [`DType::Q5_1`].
    Q5_1,
    /// [`Q8_0`](struct@Q8_0), the shape of [`DType::Q8_0`].
    Q8_0,
    /// [`Q4K`](struct@Q4K), the shape of [`DType::Q4_K`].
    Q4K,
    /// [`Q5K`](struct@Q5K), the shape of [`DType::Q5_K`].
    Q5K,
    /// [`Q6K`](struct@Q6K), the shape of [`DType::Q6_K`].
    Q6K,
}

impl FormatType {
    /// The type of `format`, or `None` for a shape no type has.
    #[inline]
    pub fn of(format: CodeFormat) -> Option<FormatType> {
        let types = [
            (Q4_0::CODES, FormatType::Q4_0),
            (Q4_1::CODES, FormatType::Q4_1),
            (Q5_0::CODES, FormatType::Q5_0),
            (Q5_1::CODES, FormatType::Q5_1),
            (Q8_0::CODES, FormatType::Q8_0),
            (Q4K::CODES, FormatType::Q4K),
            (Q5K::CODES, FormatType::Q5K),
            (Q6K::CODES, FormatType::Q6K),
        ];
        types
            .into_iter()
            .find(|(codes, _)| *codes == format)
            .map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `F`'s constants and offsets are those of `dtype` in the core layout.
    fn layout_of<F: Format>(dtype: DType, which: FormatType) {
        let format = CodeFormat::of(dtype).unwrap();
        assert_eq!(FormatType::of(format), Some(which), "{dtype}");
        let layout = PanelLayout { format, cols: 512 };
        assert_eq!(F::SUB_BLOCK, format.sub_block, "{dtype}");
        assert_eq!(F::CODE_BYTES, layout.code_bytes(), "{dtype}");
        assert_eq!(F::SCALE_BYTES, layout.scale_size(), "{dtype}");
        assert_eq!(F::SUB_BLOCK_BYTES, layout.sub_block_bytes(), "{dtype}");
        assert_eq!(F::SUBS_PER_BLOCK, layout.subs_per_block(), "{dtype}");
        assert_eq!(F::FACTOR_BYTES, layout.factor_bytes(), "{dtype}");
        assert_eq!(F::BLOCK_BYTES, layout.block_bytes(), "{dtype}");
        assert_eq!(
            F::MINS_AT,
            F::CODE_BYTES + PANEL_ROWS * F::SCALE_BYTES,
            "{dtype}"
        );
        for b in 0..3 * F::SUBS_PER_BLOCK {
            assert_eq!(F::sub_block_at(b), layout.sub_block_at(b), "{dtype} {b}");
            let block = b / F::SUBS_PER_BLOCK * layout.block_bytes();
            let factors = block + layout.block_bytes() - layout.factor_bytes();
            assert_eq!(F::factors_at(b), factors, "{dtype} {b}");
            let ends = match format.scales {
                Scales::SuperBlock(steps) => {
                    (b + 1) % steps.sub_blocks_per_step(layout.subs_per_block()) == 0
                }
                Scales::PerSubBlock => false,
            };
            assert_eq!(F::ends_step(b), ends, "{dtype} {b}");
        }
        let zero = match format.zero {
            ZeroPoint::Offset(o) => Some(i32::from(o)),
            ZeroPoint::Min => None,
        };
        assert_eq!(F::OFFSET, zero, "{dtype}");
        assert_eq!(u32::from(format.bits), F::BITS, "{dtype}");
        let pairs = format.scales == Scales::SuperBlock(FloatSteps::PerPair);
        assert_eq!(F::PAIRS, pairs, "{dtype}");
    }

    #[test]
    fn format_constants_match_the_core_layout() {
        layout_of::<Q4_0>(DType::Q4_0, FormatType::Q4_0);
        layout_of::<Q4_1>(DType::Q4_1, FormatType::Q4_1);
        layout_of::<Q5_0>(DType::Q5_0, FormatType::Q5_0);
        layout_of::<Q5_1>(DType::Q5_1, FormatType::Q5_1);
        layout_of::<Q8_0>(DType::Q8_0, FormatType::Q8_0);
        layout_of::<Q4K>(DType::Q4_K, FormatType::Q4K);
        layout_of::<Q5K>(DType::Q5_K, FormatType::Q5K);
        layout_of::<Q6K>(DType::Q6_K, FormatType::Q6K);
    }

    /// A format core adds gets the scalar kernels until it gets a type (and kernels).
    #[test]
    fn every_code_format_has_a_type() {
        for dtype in CodeFormat::DTYPES {
            let format = CodeFormat::of(dtype).unwrap();
            assert!(
                FormatType::of(format).is_some(),
                "{dtype} has no format type"
            );
        }
    }
}
