//! Reading rows of a weight as f32, a few blocks at a time, so no op needs a row-sized buffer.

use crate::DType;
use crate::dtype::QK_K;
use crate::model::WeightView;
use crate::quant::dequantize;

/// Calls `f(start, values)` for consecutive pieces of row `row` of `w`, each at most
/// [`QK_K`] elements and a whole number of blocks, with `start` the piece's first column.
pub fn for_each_chunk(w: &WeightView<'_>, row: usize, mut f: impl FnMut(usize, &[f32])) {
    let Some(bytes) = w.row(row) else {
        return;
    };
    let mut buf = [0f32; QK_K];
    let chunk = chunk_len(w.dtype, w.cols);
    let chunk_bytes = w.dtype.bytes_for(chunk).unwrap_or(0);
    let mut start = 0;
    for piece in bytes.chunks(chunk_bytes.max(1)) {
        let n = piece.len() / w.dtype.block_bytes() * w.dtype.block_len();
        // Every piece is whole blocks of a validated tensor, so decoding cannot fail.
        if dequantize(w.dtype, piece, &mut buf[..n]).is_ok() {
            f(start, &buf[..n]);
        }
        start += n;
    }
}

/// `out[t]` = row `tokens[t]` of the embedding table (token ids below its row count).
pub fn embed(table: &WeightView<'_>, tokens: &[u32], out: &mut [f32]) {
    for (&token, row) in tokens.iter().zip(out.chunks_exact_mut(table.cols)) {
        dequantize_row(table, token as usize, row);
    }
}

/// Decodes row `row` of `w` into `out` (`w.cols` elements).
pub fn dequantize_row(w: &WeightView<'_>, row: usize, out: &mut [f32]) {
    for_each_chunk(w, row, |start, values| {
        out[start..start + values.len()].copy_from_slice(values);
    });
}

/// The largest whole number of blocks that fits [`QK_K`] elements (and the row).
fn chunk_len(dtype: DType, cols: usize) -> usize {
    let block = dtype.block_len();
    (QK_K / block * block).min(cols)
}
