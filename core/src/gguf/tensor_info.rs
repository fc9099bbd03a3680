//! Tensor info entries: name, shape, type and where the data lies.

use super::cursor::Cursor;
use super::error::{Fault, GgufError, Location};
use super::name::ShortName;
use super::read::read_str;
use crate::dtype::DType;

/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// The fewest bytes a tensor info can take: name length, empty name, n_dims = 0, type, offset.
pub(crate) const MIN_ENTRY_BYTES: usize = 8 + 4 + 4 + 8;

/// One tensor of a parsed file.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`; unique in the file.
    pub name: &'a str,
    /// How the elements are encoded (the file's `ggml_type`).
    pub dtype: DType,
    /// Dimensions the file states (0..=4).
    pub n_dims: usize,
    /// ggml order: `dims[0]` is the row length (innermost); unused dimensions are 1.
    pub dims: [u64; MAX_DIMS],
    /// Offset of the data, relative to the data section.
    pub offset: u64,
    /// Exactly the tensor's bytes: `dtype.bytes_for(n_elements)`.
    pub data: &'a [u8],
}

impl TensorInfo<'_> {
    /// Product of the dimensions (saturating, which never happens for a parsed file).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }

    /// The stated dimensions, `dims[..n_dims]`.
    pub fn shape(&self) -> &[u64] {
        self.dims.get(..self.n_dims).unwrap_or(&self.dims)
    }

    /// Elements per row (`dims[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Rows: the product of every dimension after the first.
    pub fn n_rows(&self) -> u64 {
        self.dims[1..]
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d))
    }
}

/// A validated tensor info before its data is located.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawTensor<'a> {
    /// Byte position of the entry.
    pub pos: usize,
    pub name: &'a str,
    pub dtype: DType,
    pub n_dims: usize,
    pub dims: [u64; MAX_DIMS],
    pub offset: u64,
    /// Position of the offset field, for errors about where the data lies.
    pub offset_pos: usize,
    /// Bytes of data.
    pub size: usize,
}

impl<'a> RawTensor<'a> {
    pub(crate) fn short_name(&self) -> ShortName {
        ShortName::new(self.name)
    }

    /// End of the data relative to the data section; `None` if it overflows.
    pub(crate) fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size as u64)
    }
}

/// Reads and checks tensor info `index`: everything that does not depend on where the data
/// section starts (bounds, overlap and duplicate names are checked by `Gguf::parse`).
pub(crate) fn read_entry<'a>(
    cur: &mut Cursor<'a>,
    index: usize,
    alignment: usize,
) -> Result<RawTensor<'a>, GgufError> {
    let pos = cur.pos();
    let name = read_str(cur).map_err(|f| f.at(Location::tensor_info(index, "")))?;
    let at = |f: Fault| f.at(Location::tensor_info(index, name));
    let tensor = || ShortName::new(name);

    let n_dims_pos = cur.pos();
    let n_dims = cur.u32().map_err(at)?;
    let n_dims = usize::try_from(n_dims)
        .ok()
        .filter(|&n| n <= MAX_DIMS)
        .ok_or_else(|| GgufError::TooManyDims {
            tensor: tensor(),
            n_dims,
            pos: n_dims_pos,
        })?;

    let dims_pos = cur.pos();
    let mut dims = [1u64; MAX_DIMS];
    // ggml counts elements in i64, so products must stay below i64::MAX.
    let mut n_elements: u64 = 1;
    for (axis, dim) in dims.iter_mut().take(n_dims).enumerate() {
        let dim_pos = cur.pos();
        *dim = cur.u64().map_err(at)?;
        if *dim == 0 {
            return Err(GgufError::ZeroDim {
                tensor: tensor(),
                axis,
                pos: dim_pos,
            });
        }
        n_elements = n_elements
            .checked_mul(*dim)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| GgufError::DimsOverflow {
                tensor: tensor(),
                pos: dims_pos,
            })?;
    }

    let type_pos = cur.pos();
    let type_id = cur.u32().map_err(at)?;
    let offset_pos = cur.pos();
    let offset = cur.u64().map_err(at)?;

    let dtype = DType::from_ggml(type_id).ok_or_else(|| GgufError::UnsupportedDType {
        tensor: tensor(),
        type_id,
        pos: type_pos,
    })?;
    if dims[0] % dtype.block_len() as u64 != 0 {
        return Err(GgufError::RowNotWholeBlocks {
            tensor: tensor(),
            row_len: dims[0],
            dtype,
            pos: dims_pos,
        });
    }
    let size = usize::try_from(n_elements)
        .ok()
        .and_then(|n| dtype.bytes_for(n))
        .ok_or_else(|| GgufError::DimsOverflow {
            tensor: tensor(),
            pos: dims_pos,
        })?;
    if offset.checked_rem(alignment as u64) != Some(0) {
        return Err(GgufError::MisalignedTensor {
            tensor: tensor(),
            offset,
            alignment,
            pos: offset_pos,
        });
    }
    Ok(RawTensor {
        pos,
        name,
        dtype,
        n_dims,
        dims,
        offset,
        offset_pos,
        size,
    })
}

/// Validated tensor infos, re-read in file order.
#[derive(Clone, Debug)]
pub(crate) struct RawTensorIter<'a> {
    cur: Cursor<'a>,
    index: usize,
    count: usize,
    alignment: usize,
}

impl<'a> RawTensorIter<'a> {
    pub(crate) fn new(
        bytes: &'a [u8],
        start: usize,
        count: usize,
        alignment: usize,
    ) -> RawTensorIter<'a> {
        RawTensorIter {
            cur: Cursor::new(bytes, start),
            index: 0,
            count,
            alignment,
        }
    }
}

impl<'a> Iterator for RawTensorIter<'a> {
    type Item = RawTensor<'a>;

    fn next(&mut self) -> Option<RawTensor<'a>> {
        if self.index >= self.count {
            return None;
        }
        match read_entry(&mut self.cur, self.index, self.alignment) {
            Ok(t) => {
                self.index += 1;
                Some(t)
            }
            Err(_) => {
                self.index = self.count;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count.saturating_sub(self.index);
        (n, Some(n))
    }
}

/// The tensors of a parsed file, in file order.
#[derive(Clone, Debug)]
pub struct TensorIter<'a> {
    raw: RawTensorIter<'a>,
    /// The data section: from the aligned data offset to the end of the file.
    data: &'a [u8],
}

impl<'a> TensorIter<'a> {
    pub(crate) fn new(raw: RawTensorIter<'a>, data: &'a [u8]) -> TensorIter<'a> {
        TensorIter { raw, data }
    }
}

impl<'a> Iterator for TensorIter<'a> {
    type Item = TensorInfo<'a>;

    fn next(&mut self) -> Option<TensorInfo<'a>> {
        let t = self.raw.next()?;
        let data = usize::try_from(t.offset)
            .ok()
            .and_then(|start| self.data.get(start..start.checked_add(t.size)?));
        let Some(data) = data else {
            self.raw.index = self.raw.count;
            return None;
        };
        Some(TensorInfo {
            name: t.name,
            dtype: t.dtype,
            n_dims: t.n_dims,
            dims: t.dims,
            offset: t.offset,
            data,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.raw.size_hint()
    }
}

impl ExactSizeIterator for TensorIter<'_> {}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::testing::gguf_writer::Tensor;
    use std::vec::Vec;

    /// The tensor info entry of `name`, with no data behind it.
    fn info(name: &str, dims: &[u64], type_id: u32, offset: u64) -> Vec<u8> {
        let t = Tensor {
            type_id,
            ..Tensor::new(name, dims, DType::F32, Vec::new())
        };
        t.info_bytes(offset)
    }

    fn read(bytes: &[u8]) -> Result<RawTensor<'_>, GgufError> {
        read_entry(&mut Cursor::new(bytes, 0), 0, 32)
    }

    #[test]
    fn reads_a_valid_entry() {
        let bytes = info("blk.0.attn_q.weight", &[64, 32], DType::Q8_0 as u32, 64);
        let t = read(&bytes).unwrap();
        assert_eq!(t.name, "blk.0.attn_q.weight");
        assert_eq!(t.dtype, DType::Q8_0);
        assert_eq!((t.n_dims, t.dims), (2, [64, 32, 1, 1]));
        assert_eq!(t.offset, 64);
        assert_eq!(t.size, 64 * 32 / 32 * 34);
        assert_eq!(t.end(), Some(64 + 2176));
    }

    #[test]
    fn a_scalar_has_no_dims_and_one_element() {
        let bytes = info("s", &[], 0, 0);
        let t = read(&bytes).unwrap();
        assert_eq!((t.n_dims, t.size), (0, 4));
    }

    #[test]
    fn rejects_bad_shapes_and_types() {
        let e = read(&info("t", &[1; 5], 0, 0)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::TooManyDims {
                n_dims: 5,
                pos: 9,
                ..
            }
        ));
        let e = read(&info("t", &[4, 0], 0, 0)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::ZeroDim {
                axis: 1,
                pos: 21,
                ..
            }
        ));
        let e = read(&info("t", &[1 << 32, 1 << 32], 0, 0)).unwrap_err();
        assert!(matches!(e, GgufError::DimsOverflow { pos: 13, .. }));
        let e = read(&info("t", &[1 << 31, 1 << 32], 0, 0)).unwrap_err();
        assert!(matches!(e, GgufError::DimsOverflow { .. }), "i64 limit");
        let e = read(&info("t", &[32], 10, 0)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::UnsupportedDType {
                type_id: 10,
                pos: 21,
                ..
            }
        ));
        let e = read(&info("t", &[48, 2], DType::Q4_0 as u32, 0)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::RowNotWholeBlocks {
                row_len: 48,
                dtype: DType::Q4_0,
                ..
            }
        ));
        let e = read(&info("t", &[8], 0, 16)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::MisalignedTensor { offset: 16, alignment: 32, pos: 25, ref tensor } if tensor == "t"
        ));
    }

    #[test]
    fn the_row_not_the_total_must_be_whole_blocks() {
        // 16 x 2 = 32 elements is one Q8_0 block in total, but rows of 16 are not blocks.
        let e = read(&info("t", &[16, 2], DType::Q8_0 as u32, 0)).unwrap_err();
        assert!(matches!(
            e,
            GgufError::RowNotWholeBlocks { row_len: 16, .. }
        ));
    }

    #[test]
    fn truncation_names_the_tensor() {
        let bytes = info("tok", &[8], 0, 0);
        let e = read(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(
            e,
            GgufError::Truncated { at: Location::TensorInfo { index: 0, name }, .. } if name == "tok"
        ));
    }

    #[test]
    fn element_accessors() {
        let t = TensorInfo {
            name: "x",
            dtype: DType::F32,
            n_dims: 3,
            dims: [4, 3, 2, 1],
            offset: 0,
            data: &[],
        };
        assert_eq!(t.n_elements(), 24);
        assert_eq!(t.shape(), &[4, 3, 2]);
        assert_eq!((t.row_len(), t.n_rows()), (4, 6));
        let huge = TensorInfo {
            dims: [u64::MAX; 4],
            ..t
        };
        assert_eq!(huge.n_elements(), u64::MAX);
    }
}
