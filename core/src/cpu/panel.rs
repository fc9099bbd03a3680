//! Weights repacked at load into panels the microkernels stream.
//!
//! A panel holds [`PANEL_ROWS`] consecutive rows of a matrix, interleaved four columns at a
//! time, so one 32-byte vector load gives four codes of each of eight rows: exactly the
//! operand of an unsigned-by-signed 4-way byte dot product (`vpdpbusd`, `pmaddubsw` +
//! `pmaddwd`, NEON `udot`-style) against four activation bytes broadcast to every lane. Each
//! lane then accumulates one row, so a sub-block ends without any horizontal sum.
//!
//! Layout of one panel: blocks along the row, each the file's block (32 columns for legacy
//! formats, a 256-column super-block of 8 or 16 sub-blocks for K-quants). Per sub-block
//! (`S` = sub-block length, `G = S / 4` groups of four columns):
//!
//! - codes: 8-bit formats take `G` vectors of 32 bytes, vector `g` holding in byte `4r + e`
//!   the code of row `r`, column `4g + e`. 4-bit formats take `G / 2` vectors, vector `v`
//!   holding group `v` in the low nibbles and group `v + G / 2` in the high nibbles;
//! - the 8 rows' scales, then, for formats with minimums, the 8 rows' minimums: f16 for
//!   legacy formats, the file's small integers as `i8` for K-quants.
//!
//! A K-quant block ends with the 8 rows' f16 super-block factors `d`, then, with minimums,
//! `dmin` (see [`Scales`]).
//!
//! Rows past the end of the matrix are zero codes with zero scales. Formats without integer
//! codes use [`F32Panel`]s: `cols` steps of the 8 rows' f32 values.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use half::f16;

use super::codes::{BlockCodes, CodeFormat, Scales, ZeroPoint};
use crate::dtype::QK_K;
use crate::model::WeightView;
use crate::quant::dequantize;

/// Rows per panel.
pub const PANEL_ROWS: usize = 8;

/// Byte layout of the panels of one matrix in a code format.
///
/// A panel holds [`PANEL_ROWS`] rows as the file's blocks along the row. A block is its
/// sub-blocks, then, for K-quants, the rows' f16 factors `d` (and, with minimums, `dmin`).
/// A sub-block is its codes in 32-byte vectors, each holding four columns of every row
/// (4-bit codes: two such groups, in the low and high nibbles), then the rows' scales, then,
/// with minimums, the rows' minimums. That is the portable layout [`pack_codes`] writes; a
/// backend's own packer may order a sub-block's codes otherwise, but keeps every size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelLayout {
    /// The matrix's code format, which fixes every size but the panel's.
    pub format: CodeFormat,
    /// Columns of the matrix (a multiple of the file format's block).
    pub cols: usize,
}

impl PanelLayout {
    /// Bytes of the codes of one sub-block.
    pub const fn code_bytes(&self) -> usize {
        let s = self.format.sub_block;
        if self.format.bits == 4 { 4 * s } else { 8 * s }
    }

    /// Bytes of one sub-block scale or minimum: f16, or `i8` under super-block factors.
    pub const fn scale_size(&self) -> usize {
        match self.format.scales {
            Scales::PerSubBlock => 2,
            Scales::SuperBlock(_) => 1,
        }
    }

    /// Whether the format has minimums (else a fixed zero point).
    pub const fn has_mins(&self) -> bool {
        matches!(self.format.zero, ZeroPoint::Min)
    }

    /// Bytes of one sub-block: codes, scales and, with minimums, minimums.
    pub const fn sub_block_bytes(&self) -> usize {
        let arrays = if self.has_mins() { 2 } else { 1 };
        self.code_bytes() + PANEL_ROWS * arrays * self.scale_size()
    }

    /// Sub-blocks per block: one for legacy formats, a super-block's for K-quants.
    pub const fn subs_per_block(&self) -> usize {
        match self.format.scales {
            Scales::PerSubBlock => 1,
            Scales::SuperBlock(_) => QK_K / self.format.sub_block,
        }
    }

    /// Bytes of the super-block factors closing a block (none for legacy formats).
    pub const fn factor_bytes(&self) -> usize {
        match self.format.scales {
            Scales::PerSubBlock => 0,
            Scales::SuperBlock(_) => {
                let arrays = if self.has_mins() { 2 } else { 1 };
                PANEL_ROWS * arrays * 2
            }
        }
    }

    /// Bytes of one block: its sub-blocks, then its factors.
    pub const fn block_bytes(&self) -> usize {
        self.subs_per_block() * self.sub_block_bytes() + self.factor_bytes()
    }

    /// Sub-blocks along a row: `cols / format.sub_block`.
    pub const fn n_sub_blocks(&self) -> usize {
        self.cols / self.format.sub_block
    }

    /// Blocks along a row: the file's blocks (32 columns, or 256 for K-quants).
    pub const fn n_blocks(&self) -> usize {
        self.n_sub_blocks() / self.subs_per_block()
    }

    /// Bytes of one panel: [`PANEL_ROWS`] rows of `cols` columns, and the stride between
    /// panels.
    pub const fn panel_bytes(&self) -> usize {
        self.n_blocks() * self.block_bytes()
    }

    /// Byte offset of sub-block `b` within a panel.
    pub const fn sub_block_at(&self, b: usize) -> usize {
        let per = self.subs_per_block();
        b / per * self.block_bytes() + b % per * self.sub_block_bytes()
    }
}

/// Number of panels for `rows` rows.
pub const fn panel_count(rows: usize) -> usize {
    rows.div_ceil(PANEL_ROWS)
}

/// Packs the whole of `w` (a matrix in a format with codes) into panels.
pub fn pack_codes(w: &WeightView<'_>, layout: PanelLayout) -> Vec<u8> {
    let panel_bytes = layout.panel_bytes();
    let mut out = alloc::vec![0u8; panel_count(w.rows) * panel_bytes];
    let mut codes: [BlockCodes; PANEL_ROWS] = core::array::from_fn(|_| BlockCodes::new());
    let file_block = w.dtype.block_bytes();
    for (p, panel) in out.chunks_exact_mut(panel_bytes).enumerate() {
        let row0 = p * PANEL_ROWS;
        let n_rows = PANEL_ROWS.min(w.rows - row0);
        // Panel blocks and file blocks are the same columns.
        for (blk, dst) in panel.chunks_exact_mut(layout.block_bytes()).enumerate() {
            for (r, c) in codes.iter_mut().enumerate() {
                if r < n_rows {
                    let row = w.row(row0 + r).unwrap_or(&[]);
                    let src = row.get(blk * file_block..(blk + 1) * file_block);
                    // A validated tensor has whole blocks; a short one packs as zeros.
                    if !src.is_some_and(|src| c.unpack(w.dtype, src)) {
                        *c = BlockCodes::new();
                    }
                } else {
                    *c = BlockCodes::new();
                }
            }
            let (subs, factors) =
                dst.split_at_mut(layout.subs_per_block() * layout.sub_block_bytes());
            for (s, dst) in subs.chunks_exact_mut(layout.sub_block_bytes()).enumerate() {
                write_sub_block(layout, &codes, s, dst);
            }
            write_factors(&codes, factors);
        }
    }
    out
}

/// Writes a K-quant block's f16 factors, `d` for every row then `dmin` where `factors` has
/// room for them (none for legacy formats).
fn write_factors(codes: &[BlockCodes; PANEL_ROWS], factors: &mut [u8]) {
    let values = codes
        .iter()
        .map(|c| c.k.d)
        .chain(codes.iter().map(|c| c.k.dmin));
    for (dst, v) in factors.chunks_exact_mut(2).zip(values) {
        dst.copy_from_slice(&f16::from_f32(v).to_le_bytes());
    }
}

/// Writes sub-block `s` of every row's block codes into `dst`.
fn write_sub_block(
    layout: PanelLayout,
    codes: &[BlockCodes; PANEL_ROWS],
    s: usize,
    dst: &mut [u8],
) {
    let sb = layout.format.sub_block;
    let groups = sb / 4;
    let (code_dst, rest) = dst.split_at_mut(layout.code_bytes());
    let code = |r: usize, col: usize| codes[r].q[s * sb + col];
    if layout.format.bits == 4 {
        let half = groups / 2;
        for (v, vec) in code_dst.chunks_exact_mut(32).enumerate() {
            for (i, b) in vec.iter_mut().enumerate() {
                let (r, e) = (i / 4, i % 4);
                *b = code(r, 4 * v + e) | code(r, 4 * (v + half) + e) << 4;
            }
        }
    } else {
        for (g, vec) in code_dst.chunks_exact_mut(32).enumerate() {
            for (i, b) in vec.iter_mut().enumerate() {
                *b = code(i / 4, 4 * g + i % 4);
            }
        }
    }
    let (scales, mins) = rest.split_at_mut(PANEL_ROWS * layout.scale_size());
    match layout.format.scales {
        Scales::PerSubBlock => {
            let put = |dst: &mut [u8], v: f32| dst.copy_from_slice(&f16::from_f32(v).to_le_bytes());
            for (r, dst) in scales.chunks_exact_mut(2).enumerate() {
                put(dst, codes[r].scales[s]);
            }
            for (r, dst) in mins.chunks_exact_mut(2).enumerate() {
                put(dst, codes[r].mins[s]);
            }
        }
        Scales::SuperBlock(_) => {
            // K-quant scales are 6-bit unsigned or 8-bit signed, minimums 6-bit: all fit i8.
            for (r, dst) in scales.iter_mut().enumerate() {
                *dst = codes[r].k.sc[s] as i8 as u8;
            }
            for (r, dst) in mins.iter_mut().enumerate() {
                *dst = codes[r].k.m[s] as i8 as u8;
            }
        }
    }
}

/// Reads scale (or minimum, from `array` 1) of row `r` in a sub-block's trailer: the f16
/// value of a legacy format, the integer of a K-quant.
pub fn trailer_value(layout: PanelLayout, sub_block: &[u8], array: usize, r: usize) -> f32 {
    let size = layout.scale_size();
    let at = layout.code_bytes() + (array * PANEL_ROWS + r) * size;
    match layout.format.scales {
        Scales::PerSubBlock => f16::from_le_bytes([sub_block[at], sub_block[at + 1]]).to_f32(),
        Scales::SuperBlock(_) => f32::from(sub_block[at] as i8),
    }
}

/// A K-quant block's factor of row `r`: `d` (`array` 0) or `dmin` (1). `block` is the
/// whole block, factors at its end.
pub fn block_factor(layout: PanelLayout, block: &[u8], array: usize, r: usize) -> f32 {
    let at = layout.block_bytes() - layout.factor_bytes() + 2 * (array * PANEL_ROWS + r);
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// Code of row `r`, column `col` (within the sub-block) of a packed sub-block.
pub fn packed_code(layout: PanelLayout, sub_block: &[u8], r: usize, col: usize) -> u8 {
    let (g, e) = (col / 4, col % 4);
    if layout.format.bits == 4 {
        let half = layout.format.sub_block / 8;
        let (v, high) = if g < half {
            (g, false)
        } else {
            (g - half, true)
        };
        let b = sub_block[32 * v + 4 * r + e];
        if high { b >> 4 } else { b & 0x0f }
    } else {
        sub_block[32 * g + 4 * r + e]
    }
}

/// A matrix of a format without integer codes, as f32 panels: for each column, the values
/// of the panel's 8 rows. The data is owned when packed at load, borrowed when mapped from
/// a packed-weight cache.
pub struct F32Panels<'w> {
    /// Rows of the matrix; the last panel pads them to [`PANEL_ROWS`] with zeros.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// [`panel_count`]`(rows)` panels of `cols * PANEL_ROWS` floats, one after another;
    /// within a panel, column `k` of row `r` at `k * PANEL_ROWS + r`.
    pub data: Cow<'w, [f32]>,
}

/// One panel of [`F32Panels`]: `cols * PANEL_ROWS` floats.
pub type F32Panel<'a> = &'a [f32];

impl F32Panels<'_> {
    /// Dequantizes `w` into panels.
    pub fn pack(w: &WeightView<'_>) -> F32Panels<'static> {
        let panel_len = w.cols * PANEL_ROWS;
        let mut data = alloc::vec![0f32; panel_count(w.rows) * panel_len];
        let mut row_values = alloc::vec![0f32; w.cols];
        for (p, panel) in data.chunks_exact_mut(panel_len).enumerate() {
            for r in 0..PANEL_ROWS.min(w.rows - p * PANEL_ROWS) {
                let ok = w
                    .row(p * PANEL_ROWS + r)
                    .is_some_and(|bytes| dequantize(w.dtype, bytes, &mut row_values).is_ok());
                if !ok {
                    row_values.fill(0.0);
                }
                for (k, &v) in row_values.iter().enumerate() {
                    panel[k * PANEL_ROWS + r] = v;
                }
            }
        }
        F32Panels {
            rows: w.rows,
            cols: w.cols,
            data: Cow::Owned(data),
        }
    }

    /// Panel `p` (rows `p * PANEL_ROWS` on): its `cols * PANEL_ROWS` floats.
    pub fn panel(&self, p: usize) -> F32Panel<'_> {
        let len = self.cols * PANEL_ROWS;
        &self.data[p * len..(p + 1) * len]
    }

    /// The panels' bytes in native order, as a packed-weight cache stores them.
    pub fn as_bytes(&self) -> &[u8] {
        let data: &[f32] = &self.data;
        // SAFETY: the bytes of initialized f32s are initialized u8s, u8 has no alignment
        // requirement, and the length covers exactly the same memory for the same borrow.
        unsafe { core::slice::from_raw_parts(data.as_ptr().cast::<u8>(), data.len() * 4) }
    }
}

impl<'w> F32Panels<'w> {
    /// Panels of a `rows` x `cols` matrix read in place from `bytes` (as [`Self::as_bytes`]
    /// wrote them), or `None` when the length or the alignment does not fit.
    pub fn from_bytes(rows: usize, cols: usize, bytes: &'w [u8]) -> Option<F32Panels<'w>> {
        let len = panel_count(rows)
            .checked_mul(cols)?
            .checked_mul(PANEL_ROWS)?;
        if bytes.len() != len.checked_mul(4)? {
            return None;
        }
        // SAFETY: every bit pattern is a valid f32; `align_to` hands out only the aligned
        // middle, and the check below refuses anything else.
        let (head, data, tail) = unsafe { bytes.align_to::<f32>() };
        (head.is_empty() && tail.is_empty()).then_some(F32Panels {
            rows,
            cols,
            data: Cow::Borrowed(data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;
    use crate::quant::quantize;
    use proptest::prelude::*;

    fn random_matrix(dtype: DType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let mut rng = crate::sample::Xoshiro256::seed_from_u64(seed);
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| rng.next_f64() as f32 * 2.0 - 1.0)
            .collect();
        let mut bytes = alloc::vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, &x, &mut bytes).unwrap();
        bytes
    }

    proptest! {
        /// Every packed code, scale and minimum reads back as the dequantizer's weight.
        #[test]
        fn packed_panels_hold_the_weights(
            which in 0usize..CodeFormat::DTYPES.len(), rows in 1usize..20, blocks in 1usize..3, seed in any::<u64>(),
        ) {
            let dtype = CodeFormat::DTYPES[which];
            let cols = blocks * dtype.block_len();
            let bytes = random_matrix(dtype, rows, cols, seed);
            let w = WeightView { name: "w", dtype, rows, cols, data: &bytes };
            let format = CodeFormat::of(dtype).unwrap();
            let layout = PanelLayout { format, cols };
            let packed = pack_codes(&w, layout);
            prop_assert_eq!(packed.len(), panel_count(rows) * layout.panel_bytes());
            let mut want = alloc::vec![0f32; cols];
            for row in 0..panel_count(rows) * PANEL_ROWS {
                let (p, r) = (row / PANEL_ROWS, row % PANEL_ROWS);
                if row < rows {
                    dequantize(dtype, w.row(row).unwrap(), &mut want).unwrap();
                } else {
                    want.fill(0.0);
                }
                let panel = &packed[p * layout.panel_bytes()..][..layout.panel_bytes()];
                for (blk, block) in panel.chunks_exact(layout.block_bytes()).enumerate() {
                    let subs = block.chunks_exact(layout.sub_block_bytes()).take(layout.subs_per_block());
                    for (s, sub) in subs.enumerate() {
                        let scale = trailer_value(layout, sub, 0, r);
                        let min = if layout.has_mins() { trailer_value(layout, sub, 1, r) } else { 0.0 };
                        // K-quants: the file's products `d * sc` and `dmin * m`.
                        let (scale, min) = match format.scales {
                            Scales::PerSubBlock => (scale, min),
                            Scales::SuperBlock(_) => {
                                let d = block_factor(layout, block, 0, r);
                                let dmin = if layout.has_mins() { block_factor(layout, block, 1, r) } else { 0.0 };
                                (d * scale, -(dmin * min))
                            }
                        };
                        for col in 0..format.sub_block {
                            let q = f32::from(packed_code(layout, sub, r, col));
                            let got = match format.zero {
                                ZeroPoint::Offset(o) => scale * (q - f32::from(o)),
                                ZeroPoint::Min => scale * q + min,
                            };
                            let w = want[(blk * layout.subs_per_block() + s) * format.sub_block + col];
                            prop_assert!((got - w).abs() <= w.abs() * 1e-6 + 1e-30,
                                "{} row {} col {}: {} vs {}", dtype, row, col, got, w);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn k_quant_panels_stay_near_the_file_size() {
        for (dtype, file, panel) in [
            (DType::Q4_K, 144, 148),
            (DType::Q5_K, 176, 276),
            (DType::Q6_K, 210, 274),
        ] {
            let l = PanelLayout {
                format: CodeFormat::of(dtype).unwrap(),
                cols: 512,
            };
            assert_eq!(dtype.bytes_for(256).unwrap(), file);
            assert_eq!(l.panel_bytes(), 2 * PANEL_ROWS * panel, "{dtype}");
        }
    }

    #[test]
    fn legacy_panels_are_as_compact_as_the_file() {
        let l = PanelLayout {
            format: CodeFormat::of(DType::Q4_0).unwrap(),
            cols: 896,
        };
        assert_eq!(
            l.panel_bytes(),
            PANEL_ROWS * DType::Q4_0.bytes_for(896).unwrap()
        );
        let l = PanelLayout {
            format: CodeFormat::of(DType::Q8_0).unwrap(),
            cols: 896,
        };
        assert_eq!(
            l.panel_bytes(),
            PANEL_ROWS * DType::Q8_0.bytes_for(896).unwrap()
        );
    }

    #[test]
    fn f32_panels_interleave_rows_and_zero_the_tail() {
        let rows = 10;
        let cols = 3;
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let w = WeightView {
            name: "w",
            dtype: DType::F32,
            rows,
            cols,
            data: &bytes,
        };
        let p = F32Panels::pack(&w);
        assert_eq!(p.panel(0)[PANEL_ROWS + 1], values[cols + 1]);
        assert_eq!(p.panel(1)[2 * PANEL_ROWS + 1], values[9 * cols + 2]);
        assert_eq!(p.panel(1)[2 * PANEL_ROWS + 2], 0.0);
        // Through bytes and back, as a packed-weight cache keeps them.
        let bytes = p.as_bytes().to_vec();
        let back = F32Panels::from_bytes(rows, cols, &bytes).unwrap();
        assert_eq!(back.data, p.data);
        assert!(F32Panels::from_bytes(rows, cols, &bytes[4..]).is_none());
        assert!(F32Panels::from_bytes(rows + 8, cols, &bytes).is_none());
    }
}
