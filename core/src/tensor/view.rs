//! Borrowed tensors: bytes, an element type and a layout, checked against each other once.

use super::cast::{bytes_as_f32, bytes_as_f32_mut, f32_as_bytes, f32_as_bytes_mut};
use super::{Layout, Shape, TensorError};
use crate::dtype::DType;
use core::ops::Range;
use half::{bf16, f16};

/// A read-only tensor over borrowed bytes. Every element its layout reaches is inside
/// the buffer.
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    data: &'a [u8],
    dtype: DType,
    layout: Layout,
}

/// A writable tensor over borrowed bytes, with the same guarantee as [`TensorView`].
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    data: &'a mut [u8],
    dtype: DType,
    layout: Layout,
}

/// Bytes a buffer needs for `layout` of `dtype`. Block-quantized types address whole
/// blocks, so their layouts must not split one.
fn bytes_needed(dtype: DType, layout: &Layout) -> Result<usize, TensorError> {
    if dtype.is_quantized() && layout.shape().numel() != 0 {
        let bl = dtype.block_len();
        let dims = layout.dims();
        let strides = layout.strides();
        let inner = dims
            .len()
            .checked_sub(1)
            .ok_or(TensorError::SplitsBlocks { dtype })?;
        let outer_ok = dims[..inner]
            .iter()
            .zip(&strides[..inner])
            .all(|(&d, &s)| d == 1 || s % bl == 0);
        if dims[inner] % bl != 0 || strides[inner] != 1 || !outer_ok || layout.offset() % bl != 0 {
            return Err(TensorError::SplitsBlocks { dtype });
        }
    }
    dtype.bytes_for(layout.end()).ok_or(TensorError::Overflow)
}

fn checked(len: usize, dtype: DType, layout: &Layout) -> Result<(), TensorError> {
    let needed = bytes_needed(dtype, layout)?;
    if needed > len {
        return Err(TensorError::OutOfBounds {
            needed,
            available: len,
        });
    }
    Ok(())
}

/// Byte range of the tensor's elements when they form one dense run.
fn dense_bytes(dtype: DType, layout: &Layout) -> Result<Range<usize>, TensorError> {
    if !layout.is_contiguous() {
        return Err(TensorError::NotContiguous);
    }
    let numel = layout.shape().numel();
    let start = if numel == 0 { 0 } else { layout.offset() };
    // Both fit: the view was checked to hold `bytes_for(end)` bytes.
    let first = dtype.bytes_for(start).ok_or(TensorError::Overflow)?;
    let len = dtype.bytes_for(numel).ok_or(TensorError::Overflow)?;
    Ok(first..first + len)
}

fn read_elem(data: &[u8], dtype: DType, at: usize) -> Result<f32, TensorError> {
    let w = dtype.block_bytes();
    // In bounds: the view holds every element its layout reaches.
    let b = &data[at * w..at * w + w];
    match dtype {
        DType::F32 => Ok(f32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        DType::F16 => Ok(f16::from_le_bytes([b[0], b[1]]).to_f32()),
        DType::BF16 => Ok(bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        _ => Err(TensorError::NotElementwise { dtype }),
    }
}

fn write_elem(data: &mut [u8], dtype: DType, at: usize, value: f32) -> Result<(), TensorError> {
    let w = dtype.block_bytes();
    let b = &mut data[at * w..at * w + w];
    match dtype {
        DType::F32 => b.copy_from_slice(&value.to_ne_bytes()),
        DType::F16 => b.copy_from_slice(&f16::from_f32(value).to_le_bytes()),
        DType::BF16 => b.copy_from_slice(&bf16::from_f32(value).to_le_bytes()),
        _ => return Err(TensorError::NotElementwise { dtype }),
    }
    Ok(())
}

fn elementwise(dtype: DType) -> Result<(), TensorError> {
    if dtype.is_quantized() {
        return Err(TensorError::NotElementwise { dtype });
    }
    Ok(())
}

fn require_f32(dtype: DType) -> Result<(), TensorError> {
    if dtype != DType::F32 {
        return Err(TensorError::NotF32 { dtype });
    }
    Ok(())
}

impl<'a> TensorView<'a> {
    /// A dense row-major tensor of `shape` at the start of `data`.
    pub fn new(data: &'a [u8], dtype: DType, shape: Shape) -> Result<Self, TensorError> {
        Self::with_layout(data, dtype, Layout::contiguous(shape))
    }

    /// A tensor with an explicit layout over `data`.
    pub fn with_layout(data: &'a [u8], dtype: DType, layout: Layout) -> Result<Self, TensorError> {
        checked(data.len(), dtype, &layout)?;
        Ok(TensorView {
            data,
            dtype,
            layout,
        })
    }

    /// A dense f32 tensor over `data`.
    pub fn from_f32(data: &'a [f32], shape: Shape) -> Result<Self, TensorError> {
        Self::new(f32_as_bytes(data), DType::F32, shape)
    }

    /// An f32 tensor with an explicit layout over `data`.
    pub fn from_f32_layout(data: &'a [f32], layout: Layout) -> Result<Self, TensorError> {
        Self::with_layout(f32_as_bytes(data), DType::F32, layout)
    }

    /// How the elements are encoded.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape, strides (in elements) and offset of the view over its buffer.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Sizes of the dimensions, outermost first.
    pub fn shape(&self) -> Shape {
        self.layout.shape()
    }

    /// The whole underlying buffer; elements sit where the layout says.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Whether the elements form one dense row-major run (see [`Layout::is_contiguous`]).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Exactly the tensor's bytes, when its elements are one dense run (what a decoder or
    /// kernel that takes a plain row wants).
    pub fn contiguous_bytes(&self) -> Result<&'a [u8], TensorError> {
        Ok(&self.data[dense_bytes(self.dtype, &self.layout)?])
    }

    /// The whole buffer as f32, to index with [`Layout::index`].
    pub fn as_f32(&self) -> Result<&'a [f32], TensorError> {
        require_f32(self.dtype)?;
        let whole = self.data.len() / 4 * 4;
        bytes_as_f32(&self.data[..whole]).ok_or(TensorError::Misaligned)
    }

    /// Exactly the tensor's f32 elements, when they are one dense run.
    pub fn contiguous_f32(&self) -> Result<&'a [f32], TensorError> {
        require_f32(self.dtype)?;
        bytes_as_f32(self.contiguous_bytes()?).ok_or(TensorError::Misaligned)
    }

    /// The element at `index` (one entry per dimension) as f32; F32, F16 and BF16 only.
    pub fn get_f32(&self, index: &[usize]) -> Result<f32, TensorError> {
        elementwise(self.dtype)?;
        read_elem(self.data, self.dtype, self.layout.index(index)?)
    }

    /// The same data with dimensions reordered (see [`Layout::permute`]); no copy.
    pub fn permute(&self, axes: &[usize]) -> Result<Self, TensorError> {
        Self::with_layout(self.data, self.dtype, self.layout.permute(axes)?)
    }

    /// The same data with dimensions `a` and `b` swapped; no copy.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Self, TensorError> {
        Self::with_layout(self.data, self.dtype, self.layout.transpose(a, b)?)
    }

    /// The part of the tensor where dimension `dim` lies in `range`; no copy.
    pub fn slice(&self, dim: usize, range: Range<usize>) -> Result<Self, TensorError> {
        Self::with_layout(self.data, self.dtype, self.layout.slice(dim, range)?)
    }
}

impl<'a> TensorViewMut<'a> {
    /// A dense row-major tensor of `shape` at the start of `data`.
    pub fn new(data: &'a mut [u8], dtype: DType, shape: Shape) -> Result<Self, TensorError> {
        Self::with_layout(data, dtype, Layout::contiguous(shape))
    }

    /// A tensor with an explicit layout over `data`.
    pub fn with_layout(
        data: &'a mut [u8],
        dtype: DType,
        layout: Layout,
    ) -> Result<Self, TensorError> {
        checked(data.len(), dtype, &layout)?;
        Ok(TensorViewMut {
            data,
            dtype,
            layout,
        })
    }

    /// A dense f32 tensor over `data`.
    pub fn from_f32(data: &'a mut [f32], shape: Shape) -> Result<Self, TensorError> {
        Self::new(f32_as_bytes_mut(data), DType::F32, shape)
    }

    /// An f32 tensor with an explicit layout over `data`.
    pub fn from_f32_layout(data: &'a mut [f32], layout: Layout) -> Result<Self, TensorError> {
        Self::with_layout(f32_as_bytes_mut(data), DType::F32, layout)
    }

    /// How the elements are encoded.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Shape, strides (in elements) and offset of the view over its buffer.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Sizes of the dimensions, outermost first.
    pub fn shape(&self) -> Shape {
        self.layout.shape()
    }

    /// Whether the elements form one dense row-major run (see [`Layout::is_contiguous`]).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// A read-only view of the same tensor.
    pub fn as_view(&self) -> TensorView<'_> {
        TensorView {
            data: self.data,
            dtype: self.dtype,
            layout: self.layout,
        }
    }

    /// A shorter-lived writable view of the same tensor, leaving `self` usable afterwards.
    pub fn reborrow(&mut self) -> TensorViewMut<'_> {
        TensorViewMut {
            data: self.data,
            dtype: self.dtype,
            layout: self.layout,
        }
    }

    /// The whole underlying buffer; elements sit where the layout says.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.data
    }

    /// Exactly the tensor's bytes, when its elements are one dense run.
    pub fn contiguous_bytes_mut(&mut self) -> Result<&mut [u8], TensorError> {
        let range = dense_bytes(self.dtype, &self.layout)?;
        Ok(&mut self.data[range])
    }

    /// The whole buffer as f32, to index with [`Layout::index`].
    pub fn as_f32_mut(&mut self) -> Result<&mut [f32], TensorError> {
        require_f32(self.dtype)?;
        let whole = self.data.len() / 4 * 4;
        bytes_as_f32_mut(&mut self.data[..whole]).ok_or(TensorError::Misaligned)
    }

    /// Exactly the tensor's f32 elements, when they are one dense run.
    pub fn contiguous_f32_mut(&mut self) -> Result<&mut [f32], TensorError> {
        require_f32(self.dtype)?;
        bytes_as_f32_mut(self.contiguous_bytes_mut()?).ok_or(TensorError::Misaligned)
    }

    /// The element at `index` as f32; F32, F16 and BF16 only.
    pub fn get_f32(&self, index: &[usize]) -> Result<f32, TensorError> {
        self.as_view().get_f32(index)
    }

    /// Stores `value` at `index`, rounding to the tensor's type; F32, F16 and BF16 only.
    pub fn set_f32(&mut self, index: &[usize], value: f32) -> Result<(), TensorError> {
        elementwise(self.dtype)?;
        let at = self.layout.index(index)?;
        write_elem(self.data, self.dtype, at, value)
    }

    /// The same data with dimensions reordered; no copy.
    pub fn permute(self, axes: &[usize]) -> Result<Self, TensorError> {
        let layout = self.layout.permute(axes)?;
        Self::with_layout(self.data, self.dtype, layout)
    }

    /// The same data with dimensions `a` and `b` swapped; no copy.
    pub fn transpose(self, a: usize, b: usize) -> Result<Self, TensorError> {
        let layout = self.layout.transpose(a, b)?;
        Self::with_layout(self.data, self.dtype, layout)
    }

    /// The part of the tensor where dimension `dim` lies in `range`; no copy.
    pub fn slice(self, dim: usize, range: Range<usize>) -> Result<Self, TensorError> {
        let layout = self.layout.slice(dim, range)?;
        Self::with_layout(self.data, self.dtype, layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn views_check_bounds_at_construction() {
        let data = [0.0f32; 6];
        assert!(TensorView::from_f32(&data, shape(&[2, 3])).is_ok());
        assert_eq!(
            TensorView::from_f32(&data, shape(&[2, 4])).unwrap_err(),
            TensorError::OutOfBounds {
                needed: 32,
                available: 24
            }
        );
        let strided = Layout::new(shape(&[2, 2]), &[4, 1], 0).unwrap();
        assert!(TensorView::from_f32_layout(&data, strided).is_ok());
        let past = Layout::new(shape(&[2, 2]), &[4, 2], 0).unwrap();
        assert!(TensorView::from_f32_layout(&data, past).is_err());
    }

    #[test]
    fn transpose_and_slice_read_the_right_elements() {
        let data: [f32; 6] = core::array::from_fn(|i| i as f32);
        let v = TensorView::from_f32(&data, shape(&[2, 3])).unwrap();
        let t = v.transpose(0, 1).unwrap();
        assert_eq!(t.shape().dims(), &[3, 2]);
        assert_eq!(t.get_f32(&[2, 1]), Ok(5.0));
        assert_eq!(t.get_f32(&[1, 0]), Ok(1.0));
        assert_eq!(t.contiguous_f32(), Err(TensorError::NotContiguous));
        let row = v.slice(0, 1..2).unwrap();
        assert_eq!(row.contiguous_f32(), Ok(&[3.0, 4.0, 5.0][..]));
        let col = v.slice(1, 2..3).unwrap();
        assert_eq!(col.get_f32(&[1, 0]), Ok(5.0));
        assert!(v.slice(1, 2..4).is_err());
        assert_eq!(v.permute(&[1, 0]).unwrap().layout(), t.layout());
    }

    #[test]
    fn mutable_view_writes_through_layout() {
        let mut data = [0.0f32; 6];
        let mut m = TensorViewMut::from_f32(&mut data, shape(&[2, 3])).unwrap();
        m.reborrow()
            .transpose(0, 1)
            .unwrap()
            .set_f32(&[2, 0], 7.0)
            .unwrap();
        m.contiguous_f32_mut().unwrap()[0] = 1.0;
        assert_eq!(m.get_f32(&[0, 2]), Ok(7.0));
        assert_eq!(data, [1.0, 0.0, 7.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn half_types_round_trip() {
        let mut bytes = [0u8; 8];
        let mut m = TensorViewMut::new(&mut bytes, DType::F16, shape(&[4])).unwrap();
        m.set_f32(&[3], 1.5).unwrap();
        assert_eq!(m.get_f32(&[3]), Ok(1.5));
        let mut m = TensorViewMut::new(&mut bytes, DType::BF16, shape(&[2, 2])).unwrap();
        m.set_f32(&[1, 0], -2.0).unwrap();
        assert_eq!(m.get_f32(&[1, 0]), Ok(-2.0));
        assert_eq!(
            m.as_f32_mut().unwrap_err(),
            TensorError::NotF32 { dtype: DType::BF16 }
        );
    }

    #[test]
    fn quantized_views_keep_blocks_whole() {
        let bytes = [0u8; 4 * 34];
        let v = TensorView::new(&bytes, DType::Q8_0, shape(&[2, 64])).unwrap();
        assert_eq!(v.contiguous_bytes().unwrap().len(), 4 * 34);
        let row = v.slice(0, 1..2).unwrap();
        assert_eq!(
            row.contiguous_bytes().unwrap().as_ptr(),
            bytes[68..].as_ptr()
        );
        assert_eq!(
            v.slice(1, 0..16).unwrap_err(),
            TensorError::SplitsBlocks { dtype: DType::Q8_0 }
        );
        assert_eq!(v.slice(1, 32..64).unwrap().bytes().len(), bytes.len());
        assert!(v.transpose(0, 1).is_err());
        assert_eq!(
            v.get_f32(&[0, 0]),
            Err(TensorError::NotElementwise { dtype: DType::Q8_0 })
        );
        assert!(TensorView::new(&bytes[1..], DType::Q8_0, shape(&[2, 64])).is_err());
        assert!(TensorView::new(&bytes, DType::Q8_0, shape(&[2, 48])).is_err());
    }

    #[test]
    fn misaligned_bytes_are_reported_not_panicked() {
        let data = [0.0f32; 3];
        let bytes = &f32_as_bytes(&data)[1..9];
        let v = TensorView::new(bytes, DType::F32, shape(&[2])).unwrap();
        assert_eq!(v.as_f32(), Err(TensorError::Misaligned));
        assert_eq!(
            v.get_f32(&[1]),
            Ok(f32::from_ne_bytes(bytes[4..8].try_into().unwrap()))
        );
    }
}
