//! Weights as device backends upload them: the matmul layout that lets a work-group's
//! threads, one row each, read neighbouring bytes, the size checks every upload makes, and
//! f32 copies of formats that have no kernel.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::DType;
use crate::model::WeightView;

/// Rows per group of the interleaved matmul layout: the matmul kernels' work-group size.
pub const ROW_GROUP: usize = 64;

/// Checks that `w`'s bytes are its shape's and that offsets into them fit 32-bit indexing;
/// the error says what does not fit.
pub fn check_weight_bytes(w: &WeightView<'_>) -> Result<(), String> {
    let block = w.dtype.block_len();
    let expected = w
        .rows
        .checked_mul(w.cols / block)
        .and_then(|b| b.checked_mul(w.dtype.block_bytes()));
    if w.cols % block != 0 || expected != Some(w.data.len()) {
        return Err(format!(
            "`{}`: {} bytes for {} x {} {:?}",
            w.name,
            w.data.len(),
            w.rows,
            w.cols,
            w.dtype
        ));
    }
    if u32::try_from(w.data.len()).is_err() {
        return Err(format!(
            "`{}`: {} bytes do not fit 32-bit indexing",
            w.name,
            w.data.len()
        ));
    }
    Ok(())
}

/// `w`'s blocks interleaved for the matmul kernels: group `g` of [`ROW_GROUP`] rows (the
/// last one possibly shorter), then block `b`, then row `lane` of the group, so block `b` of
/// a group's rows lie side by side. `w` must have passed [`check_weight_bytes`].
pub fn interleave_rows(w: &WeightView<'_>) -> Vec<u8> {
    let bb = w.dtype.block_bytes();
    let nb = w.cols / w.dtype.block_len();
    let mut out = Vec::with_capacity(w.data.len());
    for first in (0..w.rows).step_by(ROW_GROUP) {
        let group = (w.rows - first).min(ROW_GROUP);
        for b in 0..nb {
            for r in first..first + group {
                let at = (r * nb + b) * bb;
                out.extend_from_slice(&w.data[at..at + bb]);
            }
        }
    }
    out
}

/// Why a weight could not be copied to f32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum F32CopyError {
    /// The copy's size overflows, or memory for it could not be had.
    OutOfMemory {
        /// Bytes the copy needs (saturated).
        bytes: usize,
    },
    /// The bytes do not decode as the weight's format.
    Format(String),
}

/// `w`'s values as little-endian f32 bytes, for a backend with no kernel for its format.
pub fn dequantized_f32(w: &WeightView<'_>) -> Result<Vec<u8>, F32CopyError> {
    let n = w
        .rows
        .checked_mul(w.cols)
        .ok_or(F32CopyError::OutOfMemory { bytes: usize::MAX })?;
    let bytes = n.saturating_mul(4);
    let mut values = Vec::new();
    values
        .try_reserve_exact(n)
        .map_err(|_| F32CopyError::OutOfMemory { bytes })?;
    values.resize(n, 0f32);
    crate::quant::dequantize(w.dtype, w.data, &mut values)
        .map_err(|e| F32CopyError::Format(format!("`{}`: {e:?}", w.name)))?;
    let mut out = Vec::new();
    out.try_reserve_exact(bytes)
        .map_err(|_| F32CopyError::OutOfMemory { bytes })?;
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    Ok(out)
}

/// `w` with its bytes replaced by `f32_bytes` (from [`dequantized_f32`]).
pub fn as_f32_view<'a>(w: &WeightView<'a>, f32_bytes: &'a [u8]) -> WeightView<'a> {
    WeightView {
        dtype: DType::F32,
        data: f32_bytes,
        ..*w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(data: &[u8], dtype: DType, rows: usize, cols: usize) -> WeightView<'_> {
        WeightView {
            name: "w",
            dtype,
            rows,
            cols,
            data,
        }
    }

    #[test]
    fn interleaving_puts_a_groups_blocks_side_by_side() {
        // 70 rows of two F32 "blocks" (one element each): a full group of 64, then 6.
        let (rows, cols) = (70, 2);
        let data: Vec<u8> = (0..rows * cols)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let w = view(&data, DType::F32, rows, cols);
        check_weight_bytes(&w).unwrap();
        let out = interleave_rows(&w);
        let at = |i: usize| f32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
        // Group 0: block 0 of rows 0..64, then block 1 of rows 0..64.
        assert_eq!(at(0), 0.0);
        assert_eq!(at(1), 2.0);
        assert_eq!(at(64), 1.0);
        // Group 1 (6 rows) starts after 128 values: block 0 of rows 64..70.
        assert_eq!(at(128), 128.0);
        assert_eq!(at(134), 129.0);
        assert_eq!(out.len(), data.len());
    }

    #[test]
    fn sizes_that_do_not_match_the_shape_are_named() {
        let data = [0u8; 34];
        assert!(check_weight_bytes(&view(&data, DType::Q8_0, 1, 32)).is_ok());
        let e = check_weight_bytes(&view(&data, DType::Q8_0, 2, 32)).unwrap_err();
        assert!(e.contains("34 bytes for 2 x 32"), "{e}");
        assert!(check_weight_bytes(&view(&data, DType::Q8_0, 1, 33)).is_err());
    }

    #[test]
    fn f32_copies_decode_the_format() {
        let half = half::f16::from_f32(0.5).to_le_bytes();
        let mut block = half.to_vec();
        block.extend((0..32).map(|i| i as u8));
        let w = view(&block, DType::Q8_0, 1, 32);
        let bytes = dequantized_f32(&w).unwrap();
        let v = as_f32_view(&w, &bytes);
        assert_eq!(v.dtype, DType::F32);
        assert_eq!(&bytes[4 * 3..4 * 4], &1.5f32.to_le_bytes());
        let short = view(&block[..10], DType::Q8_0, 1, 32);
        assert!(matches!(
            dequantized_f32(&short),
            Err(F32CopyError::Format(_))
        ));
    }
}
