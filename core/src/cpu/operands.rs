//! The operands of a backend's `unsafe` microkernels, checked once outside the hot loop: a
//! kernel that takes them reads only memory the check vouched for.

use super::act::ActLayout;
use super::formats::Format;
use super::kernels::{ActTile, MAX_TILE_TOKENS};
use super::panel::PanelLayout;

/// The operands of one `gemm_codes` call for format `F`, checked by [`Codes::check`]: `panels`
/// whole panels of `F` in `panel`, and, in each of the call's token rows of `acts`, the
/// activation codes of every column and the `d`, `isum` and `fsum` arrays of `n_sub` words.
///
/// The fields are private so that a value is the proof of the check; the accessors are
/// inlined into the kernels.
#[derive(Clone, Copy)]
pub struct Codes<'a> {
    panel: &'a [u8],
    panels: usize,
    panel_bytes: usize,
    acts: &'a [u8],
    stride: usize,
    n_sub: usize,
    d_at: usize,
    isum_at: usize,
    fsum_at: usize,
}

impl<'a> Codes<'a> {
    /// The operands for format `F`, `panels` panels and `n` tokens, or `None` where the call
    /// is not one the kernels cover (another format or layout, short slices, too many
    /// tokens): the scalar definition then decides what happens. The sub-block is a
    /// constant here, so the layout arithmetic has no divisions. The panel size must be
    /// core's for `layout`, so a layout and `F` that disagree are refused, not misread.
    #[inline]
    pub fn check<F: Format>(
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
        let fits = layout.format == F::CODES
            && acts.layout.sub_block == F::SUB_BLOCK
            && a.cols == cols
            && cols % (F::SUB_BLOCK * F::SUBS_PER_BLOCK) == 0
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
    pub fn from(&self, first: usize, count: usize) -> Codes<'a> {
        assert!(first + count <= self.panels);
        Codes {
            panel: &self.panel[first * self.panel_bytes..],
            panels: count,
            ..*self
        }
    }

    /// The checked panels, back to back (and possibly more bytes after them).
    #[inline(always)]
    pub fn panel(&self) -> &'a [u8] {
        self.panel
    }

    /// Whole panels in [`Codes::panel`].
    #[inline(always)]
    pub fn panels(&self) -> usize {
        self.panels
    }

    /// Bytes of one panel: the distance between consecutive panels.
    #[inline(always)]
    pub fn panel_bytes(&self) -> usize {
        self.panel_bytes
    }

    /// The activation rows, [`Codes::stride`] bytes apart.
    #[inline(always)]
    pub fn acts(&self) -> &'a [u8] {
        self.acts
    }

    /// Bytes from one activation row to the next.
    #[inline(always)]
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Sub-blocks per row.
    #[inline(always)]
    pub fn n_sub(&self) -> usize {
        self.n_sub
    }

    /// Byte offset, in an activation row, of its per-sub-block scales `d` (f32).
    #[inline(always)]
    pub fn d_at(&self) -> usize {
        self.d_at
    }

    /// Byte offset, in an activation row, of its per-sub-block code sums `isum` (i32).
    #[inline(always)]
    pub fn isum_at(&self) -> usize {
        self.isum_at
    }

    /// Byte offset, in an activation row, of its per-sub-block value sums `fsum` (f32).
    #[inline(always)]
    pub fn fsum_at(&self) -> usize {
        self.fsum_at
    }
}

/// Whether `n_rows` rows of `len` values, `stride` apart, lie within `available` values:
/// the check of the `dot_rows_*` kernels' operands.
#[inline]
pub fn rows_fit(len: usize, available: usize, stride: usize, n_rows: usize) -> bool {
    n_rows == 0
        || (n_rows - 1)
            .checked_mul(stride)
            .and_then(|start| start.checked_add(len))
            .is_some_and(|end| end <= available)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::cpu::codes::CodeFormat;
    use crate::cpu::formats::{Q4_0, Q6K};

    #[test]
    fn rows_fit_counts_the_last_row_only_up_to_its_length() {
        assert!(rows_fit(4, 0, 10, 0));
        assert!(rows_fit(4, 24, 10, 3));
        assert!(!rows_fit(4, 23, 10, 3));
        assert!(!rows_fit(4, usize::MAX, usize::MAX, 3));
    }

    #[test]
    fn codes_are_refused_for_another_format_or_short_operands() {
        let format = CodeFormat::of(DType::Q4_0).unwrap();
        let layout = PanelLayout { format, cols: 64 };
        let a = ActLayout::for_codes(format, 64);
        let panels = alloc::vec![0u8; 2 * layout.panel_bytes()];
        let bytes = alloc::vec![0u8; (MAX_TILE_TOKENS + 1) * a.stride()];
        let acts = |n: usize| ActTile {
            layout: a,
            bytes: &bytes[..n * a.stride()],
            n,
        };
        let c = Codes::check::<Q4_0>(layout, &panels, 2, &acts(3), 3).unwrap();
        assert_eq!((c.panels(), c.n_sub(), c.stride()), (2, 2, a.stride()));
        assert_eq!(c.from(1, 1).panel().len(), layout.panel_bytes());
        assert!(Codes::check::<Q6K>(layout, &panels, 2, &acts(3), 3).is_none());
        assert!(Codes::check::<Q4_0>(layout, &panels, 3, &acts(3), 3).is_none());
        assert!(Codes::check::<Q4_0>(layout, &panels, 2, &acts(3), 4).is_none());
        let most = MAX_TILE_TOKENS;
        assert!(Codes::check::<Q4_0>(layout, &panels, 2, &acts(most), most).is_some());
        assert!(Codes::check::<Q4_0>(layout, &panels, 2, &acts(most + 1), most + 1).is_none());
    }
}
