//! The i8mm level's panel layout: the portable panel (`tern_core::cpu` panels) with each
//! sub-block's codes regrouped for `smmla`, whose operand is two rows of eight consecutive
//! columns. Scales and minimums stay where the portable layout has them, and a panel keeps
//! its size, so the driver's panel arithmetic holds.
//!
//! Codes of a sub-block of `S` columns, in registers of 16 bytes: register `4j + p` holds
//! rows `2p` (bytes 0-7) and `2p + 1` (bytes 8-15), columns `8j..8j + 8`, for the `S / 8`
//! column steps `j` and row pairs `p < 4`. 4-bit codes fill `S / 16` steps' registers, step
//! `j` in the low nibbles and step `j + S / 16` in the high ones. 8-bit codes are stored
//! centered (`q - 128`, as signed bytes), so no kernel spends an instruction on it.
//!
//! The same registers serve decode: `sdot` against a register holding the token's eight
//! columns twice gives each row's two halves in adjacent lanes, and one `addp` per sub-block
//! joins them.

use alloc::vec::Vec;

use half::f16;
use tern_core::cpu::codes::{CodeFormat, ZeroPoint};
use tern_core::cpu::formats::FormatType;
use tern_core::cpu::{ActTile, PANEL_ROWS, PanelLayout};
use tern_core::model::WeightView;

/// Whether the i8mm kernels take `format` in this layout: the legacy formats. K-quants keep
/// the portable layout (their packing in core is its own concern) and the `sdot` kernels.
pub(crate) fn covers(format: CodeFormat) -> bool {
    matches!(
        FormatType::of(format),
        Some(
            FormatType::Q4_0
                | FormatType::Q4_1
                | FormatType::Q5_0
                | FormatType::Q5_1
                | FormatType::Q8_0
        )
    ) && format.sub_block.is_multiple_of(16)
}

/// Byte offset, within a sub-block's codes, of row `r`, column `col`, and for 4-bit codes
/// whether it is the high nibble.
fn place(layout: PanelLayout, r: usize, col: usize) -> (usize, bool) {
    let s = layout.format.sub_block;
    let (mut j, e) = (col / 8, col % 8);
    let mut high = false;
    if layout.format.bits == 4 && j >= s / 16 {
        j -= s / 16;
        high = true;
    }
    (16 * (4 * j + r / 2) + 8 * (r % 2) + e, high)
}

/// The code of row `r`, column `col` of a sub-block in the portable layout.
fn portable_code(layout: PanelLayout, sub_block: &[u8], r: usize, col: usize) -> u8 {
    let (g, e) = (col / 4, col % 4);
    if layout.format.bits == 4 {
        let half = layout.format.sub_block / 8;
        let b = sub_block[32 * (g % half) + 4 * r + e];
        if g < half { b & 0x0f } else { b >> 4 }
    } else {
        sub_block[32 * g + 4 * r + e]
    }
}

/// The (unsigned) code of row `r`, column `col` of a sub-block in this layout.
pub(crate) fn code(layout: PanelLayout, sub_block: &[u8], r: usize, col: usize) -> u8 {
    let (at, high) = place(layout, r, col);
    let b = sub_block[at];
    match layout.format.bits {
        4 if high => b >> 4,
        4 => b & 0x0f,
        8 => b ^ 0x80,
        _ => b,
    }
}

/// Packs `w` in the portable layout, then regroups every sub-block's codes.
pub(crate) fn pack_codes(w: &WeightView<'_>, layout: PanelLayout) -> Vec<u8> {
    let mut packed = tern_core::cpu::pack_codes(w, layout);
    let (s, code_bytes) = (layout.format.sub_block, layout.code_bytes());
    let mut codes = alloc::vec![0u8; code_bytes];
    for sub in packed.chunks_exact_mut(layout.sub_block_bytes()) {
        codes.fill(0);
        for r in 0..PANEL_ROWS {
            for col in 0..s {
                let q = portable_code(layout, sub, r, col);
                let (at, high) = place(layout, r, col);
                codes[at] |= match layout.format.bits {
                    4 if high => q << 4,
                    8 => q ^ 0x80,
                    _ => q,
                };
            }
        }
        sub[..code_bytes].copy_from_slice(&codes);
    }
    packed
}

/// Scale (or minimum, from `array` 1) of row `r` in a sub-block's trailer.
fn trailer_value(layout: PanelLayout, sub_block: &[u8], array: usize, r: usize) -> f32 {
    let size = layout.scale_size();
    let at = layout.code_bytes() + (array * PANEL_ROWS + r) * size;
    let b = &sub_block[at..at + size];
    if size == 2 {
        f16::from_le_bytes([b[0], b[1]]).to_f32()
    } else {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// `tern_core::cpu::gemm_codes_scalar` on panels of this layout: the definition, for calls
/// the SIMD kernels do not cover.
pub(crate) fn gemm_codes_scalar(
    layout: PanelLayout,
    panels: &[u8],
    acts: ActTile<'_>,
    out: &mut [[f32; PANEL_ROWS]],
) {
    let sb = layout.format.sub_block;
    let n = acts.n;
    for (panel, out) in panels
        .chunks_exact(layout.panel_bytes())
        .zip(out.chunks_exact_mut(n))
    {
        for (t, out) in out.iter_mut().enumerate() {
            let a = acts.row(t);
            let mut acc = [0f32; PANEL_ROWS];
            for (b, sub) in panel.chunks_exact(layout.sub_block_bytes()).enumerate() {
                let d_a = a.d(b);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let idot: i32 = (0..sb)
                        .map(|k| i32::from(code(layout, sub, r, k)) * i32::from(a.code(b * sb + k)))
                        .sum();
                    let scale = trailer_value(layout, sub, 0, r) * d_a;
                    *acc += match layout.format.zero {
                        ZeroPoint::Offset(o) => scale * (idot - i32::from(o) * a.isum(b)) as f32,
                        ZeroPoint::Min => {
                            scale * idot as f32 + trailer_value(layout, sub, 1, r) * a.fsum(b)
                        }
                    };
                }
            }
            *out = acc;
        }
    }
}
