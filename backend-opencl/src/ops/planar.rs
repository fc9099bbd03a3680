//! The fast matmuls ([`Precision::Fast`](super::Precision::Fast)): Q4_0, Q4_1 and Q8_0
//! weights repacked at upload into [`Layout::Planar`], activations rounded to Q8_0 codes once
//! per matmul, then a decode GEMV (one token: a row's blocks in slices reduced in local
//! memory) or a prefill GEMM (several tokens: each weight block read once per tile of
//! tokens staged in local memory). Kernels: `kernels/{planar,quant_act,gemv,gemm}.cl`.
//!
//! # How far from the reference
//!
//! The activations are rounded as the reference rounds them (the same codes and f16 scale
//! `e`, and Q8_1's block sum `s`), so only the order of the float arithmetic differs. Take a
//! row of `n` columns in `nb` blocks, weights `w_i = d q_i` (Q4_1 adds the block's `m`
//! through `m s`), rounded activations `x_i = e k_i`, and `M = Σ |w_i x_i| + Σ |m s|` over
//! the row. The reference adds `n` rounded products (and `nb` products `m s` for Q4_1) one
//! after the other: within `γ(n + nb) M` of the exact sum, `γ(k) = k u / (1 - k u)`,
//! `u = 2^-24` (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1). The fast
//! kernels sum a block's code products `S = Σ q_i k_i` exactly (an integer below 2^24), and
//! `d e` is exact (two f16s), so a block is one rounding of `(d e) S`; these `nb` terms (and
//! the `nb` of `m s`) are then added in any order, within `γ(2 nb) M` of the exact sum. So
//!
//! `|fast - reference| <= γ(n + 3 nb) M + (n + 3 nb) 2^-150`,
//!
//! the last term for products that fall among the subnormals (each rounded to within half
//! of 2^-149). For a row of 4096 columns that is about 2.7e-4 M; the random cases of
//! tests/fast.rs come within an eighth of it. Where the reference is infinite or NaN the
//! fast result is not finite either.

use tern_core::DType;
use tern_core::model::WeightView;

use super::{Arg, DeviceWeight, Result, View, groups, threads, word};
use crate::batch::Batch;
use crate::error::ClError;
use crate::gpu::Gpu;
use crate::programs::Source;

/// The weight formats with fast kernels; [`Precision::Fast`](super::Precision::Fast) keeps
/// the reference kernels for every other format.
pub const FAST_FORMATS: [DType; 3] = [DType::Q4_0, DType::Q4_1, DType::Q8_0];

/// Rows per work-group of the GEMV (the rest of its 64 work-items slice each row's blocks).
pub(crate) const GEMV_ROWS: usize = 16;
/// Blocks of activations per slice the GEMV stages in local memory at a time.
pub(crate) const GEMV_STAGE: usize = 2;
/// Tokens per work-group of the GEMM.
pub(crate) const GEMM_TOKENS: usize = 8;
/// Blocks of activations the GEMM stages in local memory at a time.
pub(crate) const GEMM_STAGE: usize = 2;
/// Bytes of local memory the GEMV and the GEMM declare, the larger of the two (their staged
/// activation code words, scales and sums, and the GEMV's partial sums): a device with
/// less (OpenCL 1.2's embedded profile promises only 1 KiB) keeps the reference kernels.
pub(crate) const LOCAL_BYTES: u64 = {
    let gemv = (64 / GEMV_ROWS * GEMV_STAGE) * (8 * 4 + 2 * 4) + 64 * 4;
    let gemm = GEMM_STAGE * GEMM_TOKENS * (8 * 4 + 2 * 4);
    (if gemv > gemm { gemv } else { gemm }) as u64
};
/// Rows of a tile of [`Layout::Planar`](super::Layout::Planar): the GEMM's work-group
/// (`TILE` in planar.cl).
const TILE: usize = super::GROUP;
// A GEMV work-group's rows lie in one tile, and its slices pair off in a tree.
const _: () = assert!(TILE % GEMV_ROWS == 0 && (super::GROUP / GEMV_ROWS).is_power_of_two());

/// Elements per block of every fast format.
const BLOCK: usize = 32;

/// Code words and f16 scale halves per block of `dtype` in the planar layout.
fn plane_widths(dtype: DType) -> Option<(usize, usize)> {
    match dtype {
        DType::Q4_0 => Some((4, 1)),
        DType::Q4_1 => Some((4, 2)),
        DType::Q8_0 => Some((8, 1)),
        _ => None,
    }
}

/// `w`'s blocks in the planar layout, or `None` for a format without fast kernels: first
/// the codes plane (u32 words), then the scales plane (f16; Q4_1's minimum beside each
/// scale). Rows go in tiles of [`TILE`] (the last possibly shorter); in a tile, word `j` of
/// block `b` of every row lies side by side, at word `first * nb * W + (b * W + j) * rows +
/// lane` (`W` words per block, `rows` in the tile), and the scales likewise, at
/// `(first * nb + b * rows + lane) * S` halves after the codes.
pub(crate) fn repack(w: &WeightView<'_>) -> Option<Vec<u8>> {
    let (words, halves) = plane_widths(w.dtype)?;
    let nb = w.cols / BLOCK;
    let bb = w.dtype.block_bytes();
    let mut codes = vec![0u32; w.rows * nb * words];
    let mut scales = vec![0u16; w.rows * nb * halves];
    let mut block_words = [0u32; 8];
    for first in (0..w.rows).step_by(TILE) {
        let rows = (w.rows - first).min(TILE);
        for lane in 0..rows {
            let r = first + lane;
            for b in 0..nb {
                let block = &w.data[(r * nb + b) * bb..][..bb];
                let f16_at = |i: usize| u16::from_le_bytes([block[i], block[i + 1]]);
                let at = first * nb * words + b * words * rows + lane;
                let code_words = &mut block_words[..words];
                pack_codes(w.dtype, block, code_words);
                for (j, &c) in code_words.iter().enumerate() {
                    codes[at + j * rows] = c;
                }
                let at = (first * nb + b * rows + lane) * halves;
                for (h, s) in scales[at..at + halves].iter_mut().enumerate() {
                    *s = f16_at(2 * h);
                }
            }
        }
    }
    let mut bytes = Vec::with_capacity(w.data.len());
    bytes.extend(codes.iter().flat_map(|c| c.to_le_bytes()));
    bytes.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
    Some(bytes)
}

/// One block's codes as the kernels read them: Q4 codes eight to a word (nibble `i` of word
/// `j`: element `8j + i`), Q8_0 codes four to a word (byte `i` of word `j`: element `4j + i`).
fn pack_codes(dtype: DType, block: &[u8], out: &mut [u32]) {
    match dtype {
        DType::Q8_0 => {
            for (o, c) in out.iter_mut().zip(block[2..34].chunks_exact(4)) {
                *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        _ => {
            // Q4_0 (codes from byte 2) and Q4_1 (from byte 4): byte `i` holds element `i` in
            // its low nibble and element `i + 16` in its high one.
            let qs = &block[block.len() - 16..];
            let code = |e: usize| {
                let byte = qs[e % 16];
                u32::from(if e < 16 { byte & 15 } else { byte >> 4 })
            };
            for (j, o) in out.iter_mut().enumerate() {
                *o = (0..8).fold(0, |word, i| word | code(8 * j + i) << (4 * i));
            }
        }
    }
}

/// Where the rounded activations of a fast matmul lie in its scratch (words from the
/// scratch's start): the codes, four to a word, then one f32 scale and one f32 Q8_1 sum per
/// block; `x.len / 4 + x.len / 16` words in all, which the scratch (as long as `x`) holds.
struct ActCodes {
    codes: usize,
    scales: usize,
    sums: usize,
}

impl ActCodes {
    fn in_scratch(scratch: &View<'_>, len: usize) -> ActCodes {
        let codes = scratch.offset;
        let scales = codes + len / 4;
        ActCodes {
            codes,
            scales,
            sums: scales + len / BLOCK,
        }
    }
}

impl Gpu {
    /// The fast matmul of `w` ([`Layout::Planar`](super::Layout::Planar)) on `tokens` rows of
    /// `x` into `out`, `scratch` receiving the activation codes. The caller has checked the
    /// shapes and that there is something to compute.
    pub(crate) fn planar_matmul(
        &self,
        batch: &mut Batch,
        w: &DeviceWeight,
        x: View<'_>,
        scratch: View<'_>,
        out: View<'_>,
        tokens: usize,
    ) -> Result<()> {
        const OP: &str = "matmul";
        let (words, _) = plane_widths(w.dtype).ok_or_else(|| ClError::Unsupported {
            op: OP,
            what: format!("{:?} weights in the planar layout", w.dtype),
        })?;
        let matmul = if tokens == 1 {
            Source::Gemv(w.dtype)
        } else {
            Source::Gemm(w.dtype)
        };
        // Built before anything is recorded, so a failed build leaves the batch as it was.
        self.built(Source::QuantizeActivations)?;
        self.built(matmul)?;
        let act = ActCodes::in_scratch(&scratch, x.len);
        let blocks = x.len / BLOCK;
        let quantize = [
            Arg::Buf(x.buf),
            Arg::Buf(scratch.buf),
            Arg::U32(word(OP, blocks)?),
            Arg::U32(word(OP, x.offset)?),
            Arg::U32(word(OP, act.codes)?),
            Arg::U32(word(OP, act.scales)?),
            Arg::U32(word(OP, act.sums)?),
        ];
        let scales_at = word(OP, w.rows * (w.cols / BLOCK) * words * 2)?;
        let (rows, cols) = (word(OP, w.rows)?, word(OP, w.cols)?);
        let mut args = vec![
            Arg::Buf(&w.buf),
            Arg::Buf(&w.buf),
            Arg::Buf(scratch.buf),
            Arg::Buf(out.buf),
            Arg::U32(rows),
            Arg::U32(cols),
        ];
        if tokens > 1 {
            args.push(Arg::U32(word(OP, tokens)?));
        }
        args.extend([
            Arg::U32(scales_at),
            Arg::U32(word(OP, act.codes)?),
            Arg::U32(word(OP, act.scales)?),
            Arg::U32(word(OP, act.sums)?),
            Arg::U32(word(OP, out.offset)?),
        ]);
        let range = if tokens == 1 {
            groups(w.rows.div_ceil(GEMV_ROWS), 1, 1)
        } else {
            groups(w.rows.div_ceil(TILE), tokens.div_ceil(GEMM_TOKENS), 1)
        };
        self.record(
            batch,
            Source::QuantizeActivations,
            &quantize,
            threads(blocks),
        )?;
        self.record(batch, matmul, &args, range)
    }
}

#[cfg(test)]
mod tests {
    use tern_core::testing::conformance::Rng;

    use super::*;

    /// Code `i` of a file block of `dtype`, and its f16 scale and minimum.
    fn file_code(dtype: DType, block: &[u8], i: usize) -> (u32, [u16; 2]) {
        let f16_at = |at: usize| u16::from_le_bytes([block[at], block[at + 1]]);
        let code = match dtype {
            DType::Q8_0 => u32::from(block[2 + i]),
            _ => {
                let byte = block[block.len() - 16 + i % 16];
                u32::from(if i < 16 { byte & 15 } else { byte >> 4 })
            }
        };
        let min = if dtype == DType::Q4_1 { f16_at(2) } else { 0 };
        (code, [f16_at(0), min])
    }

    /// Code `i` of block `b` of row `r` read back from `planar` by the layout's formulas.
    fn planar_code(
        dtype: DType,
        planar: &[u8],
        rows: usize,
        nb: usize,
        r: usize,
        b: usize,
        i: usize,
    ) -> (u32, [u16; 2]) {
        let (words, halves) = plane_widths(dtype).unwrap();
        let (first, lane) = (r / TILE * TILE, r % TILE);
        let tile_rows = (rows - first).min(TILE);
        let bits = 32 / (BLOCK / words);
        let (j, slot) = (i / (32 / bits), i % (32 / bits));
        let at = 4 * (first * nb * words + (b * words + j) * tile_rows + lane);
        let word = u32::from_le_bytes(planar[at..at + 4].try_into().unwrap());
        let code = (word >> (bits * slot)) & ((1 << bits) - 1);
        let scales_at = 4 * rows * nb * words;
        let half = |h: usize| {
            let at = scales_at + 2 * ((first * nb + b * tile_rows + lane) * halves + h);
            u16::from_le_bytes([planar[at], planar[at + 1]])
        };
        let min = if halves == 2 { half(1) } else { 0 };
        (code, [half(0), min])
    }

    #[test]
    fn repack_puts_every_code_and_scale_where_the_layout_says() {
        let mut rng = Rng::new(17);
        for dtype in FAST_FORMATS {
            for rows in [1, 15, 64, 65, 130] {
                let nb = 3;
                let bb = dtype.block_bytes();
                let data: Vec<u8> = (0..rows * nb * bb).map(|_| rng.below(256) as u8).collect();
                let w = WeightView {
                    name: "w",
                    dtype,
                    rows,
                    cols: nb * BLOCK,
                    data: &data,
                };
                let planar = repack(&w).unwrap();
                assert_eq!(
                    planar.len(),
                    data.len(),
                    "{dtype:?}: the same bytes, rearranged"
                );
                for r in 0..rows {
                    for b in 0..nb {
                        let block = &data[(r * nb + b) * bb..][..bb];
                        for i in 0..BLOCK {
                            assert_eq!(
                                planar_code(dtype, &planar, rows, nb, r, b, i),
                                file_code(dtype, block, i),
                                "{dtype:?} {rows} rows: row {r} block {b} element {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn formats_without_fast_kernels_are_not_repacked() {
        let data = vec![0u8; 4 * 32];
        for dtype in [DType::F32, DType::Q5_1, DType::Q4_K] {
            let w = WeightView {
                name: "w",
                dtype,
                rows: 1,
                cols: 32,
                data: &data,
            };
            assert!(repack(&w).is_none(), "{dtype:?}");
        }
    }
}
