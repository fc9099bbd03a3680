//! Where each element of a shape lives: strides and an offset, in elements.

use super::{MAX_DIMS, Shape, TensorError};
use core::ops::Range;

/// A shape placed in a buffer: element `[i0, i1, ..]` lives at
/// `offset + i0 * strides[0] + i1 * strides[1] + ..`.
///
/// Every layout can compute its furthest element without overflow (checked when it is
/// made), so [`Layout::end`] is exact. Strides are unsigned: every operation Tern needs
/// walks memory forward, and a zero stride repeats an element (broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Shape,
    strides: [usize; MAX_DIMS],
    offset: usize,
}

impl Layout {
    /// The dense row-major layout of `shape`, starting at element 0.
    pub fn contiguous(shape: Shape) -> Layout {
        Layout {
            shape,
            strides: shape.contiguous_strides(),
            offset: 0,
        }
    }

    /// A layout with explicit strides (one per dimension) and offset.
    pub fn new(shape: Shape, strides: &[usize], offset: usize) -> Result<Layout, TensorError> {
        if strides.len() != shape.rank() {
            return Err(TensorError::RankMismatch {
                expected: shape.rank(),
                got: strides.len(),
            });
        }
        let mut all = [0; MAX_DIMS];
        all[..strides.len()].copy_from_slice(strides);
        Layout {
            shape,
            strides: all,
            offset,
        }
        .checked()
    }

    /// The same layout starting `offset` elements into the buffer.
    pub fn with_offset(self, offset: usize) -> Result<Layout, TensorError> {
        Layout { offset, ..self }.checked()
    }

    fn checked(self) -> Result<Layout, TensorError> {
        self.extent().ok_or(TensorError::Overflow)?;
        Ok(self)
    }

    /// One past the furthest element index, or 0 for an empty tensor.
    fn extent(&self) -> Option<usize> {
        if self.shape.numel() == 0 {
            return Some(0);
        }
        let mut last = self.offset;
        for (&d, &s) in self.shape.dims().iter().zip(&self.strides) {
            last = last.checked_add((d - 1).checked_mul(s)?)?;
        }
        last.checked_add(1)
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Strides in elements, one per dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.shape.rank()]
    }

    /// Element index of `[0, 0, ..]`.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// One past the furthest element index the layout reaches (0 when it has no elements):
    /// the number of elements a buffer needs to hold it.
    pub fn end(&self) -> usize {
        // Exact: every constructor checked that the extent fits.
        self.extent().unwrap_or(usize::MAX)
    }

    /// True when the elements form one dense row-major run starting at `offset`.
    /// Dimensions of size 1 may have any stride.
    pub fn is_contiguous(&self) -> bool {
        if self.shape.numel() == 0 {
            return true;
        }
        let mut expect = 1usize;
        for (&d, &s) in self.dims().iter().zip(self.strides()).rev() {
            if d != 1 && s != expect {
                return false;
            }
            expect = expect.saturating_mul(d);
        }
        true
    }

    /// Element index of `index` (one entry per dimension).
    pub fn index(&self, index: &[usize]) -> Result<usize, TensorError> {
        if index.len() != self.shape.rank() {
            return Err(TensorError::RankMismatch {
                expected: self.shape.rank(),
                got: index.len(),
            });
        }
        let mut at = self.offset;
        for (dim, ((&i, &size), &s)) in index.iter().zip(self.dims()).zip(&self.strides).enumerate()
        {
            if i >= size {
                return Err(TensorError::IndexOutOfBounds {
                    dim,
                    index: i,
                    size,
                });
            }
            // In range, so bounded by `extent`, which fits.
            at += i * s;
        }
        Ok(at)
    }

    /// Reorders dimensions: dimension `i` of the result is dimension `axes[i]` of `self`.
    pub fn permute(&self, axes: &[usize]) -> Result<Layout, TensorError> {
        let rank = self.shape.rank();
        if axes.len() != rank {
            return Err(TensorError::RankMismatch {
                expected: rank,
                got: axes.len(),
            });
        }
        let mut seen = 0u32;
        let mut dims = [0; MAX_DIMS];
        let mut strides = [0; MAX_DIMS];
        for (i, &a) in axes.iter().enumerate() {
            if a >= rank {
                return Err(TensorError::AxisOutOfRange { axis: a, rank });
            }
            if seen & (1 << a) != 0 {
                return Err(TensorError::NotAPermutation);
            }
            seen |= 1 << a;
            dims[i] = self.shape.dims()[a];
            strides[i] = self.strides[a];
        }
        Ok(Layout {
            shape: Shape::new(&dims[..rank])?,
            strides,
            offset: self.offset,
        })
    }

    /// Swaps dimensions `a` and `b`.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout, TensorError> {
        let rank = self.shape.rank();
        for axis in [a, b] {
            if axis >= rank {
                return Err(TensorError::AxisOutOfRange { axis, rank });
            }
        }
        let mut axes = [0, 1, 2, 3];
        axes.swap(a, b);
        self.permute(&axes[..rank])
    }

    /// Narrows dimension `dim` to `range`.
    pub fn slice(&self, dim: usize, range: Range<usize>) -> Result<Layout, TensorError> {
        let rank = self.shape.rank();
        if dim >= rank {
            return Err(TensorError::AxisOutOfRange { axis: dim, rank });
        }
        let size = self.shape.dims()[dim];
        if range.start > range.end || range.end > size {
            return Err(TensorError::RangeOutOfBounds {
                dim,
                start: range.start,
                end: range.end,
                size,
            });
        }
        let skip = range
            .start
            .checked_mul(self.strides[dim])
            .and_then(|s| s.checked_add(self.offset))
            .ok_or(TensorError::Overflow)?;
        Layout {
            shape: self.shape.with_dim(dim, range.end - range.start)?,
            strides: self.strides,
            offset: skip,
        }
        .checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn contiguous_layout() {
        let l = Layout::contiguous(shape(&[2, 3, 4]));
        assert_eq!(l.strides(), &[12, 4, 1]);
        assert!(l.is_contiguous());
        assert_eq!(l.end(), 24);
        assert_eq!(l.index(&[1, 2, 3]), Ok(23));
        assert_eq!(
            l.index(&[1, 3, 0]),
            Err(TensorError::IndexOutOfBounds {
                dim: 1,
                index: 3,
                size: 3
            })
        );
    }

    #[test]
    fn transpose_changes_strides_only() {
        let l = Layout::contiguous(shape(&[2, 3])).transpose(0, 1).unwrap();
        assert_eq!(l.dims(), &[3, 2]);
        assert_eq!(l.strides(), &[1, 3]);
        assert!(!l.is_contiguous());
        assert_eq!(l.index(&[2, 1]), Ok(5));
        assert_eq!(l.end(), 6);
    }

    #[test]
    fn permute_checks_axes() {
        let l = Layout::contiguous(shape(&[2, 3, 4]));
        let p = l.permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.dims(), &[4, 2, 3]);
        assert_eq!(p.strides(), &[1, 12, 4]);
        assert_eq!(l.permute(&[0, 0, 1]), Err(TensorError::NotAPermutation));
        assert_eq!(
            l.permute(&[0, 1, 3]),
            Err(TensorError::AxisOutOfRange { axis: 3, rank: 3 })
        );
        assert_eq!(
            l.permute(&[0, 1]),
            Err(TensorError::RankMismatch {
                expected: 3,
                got: 2
            })
        );
    }

    #[test]
    fn slice_moves_offset() {
        let l = Layout::contiguous(shape(&[4, 5]));
        let s = l.slice(1, 1..3).unwrap();
        assert_eq!(s.dims(), &[4, 2]);
        assert_eq!(s.offset(), 1);
        assert_eq!(s.end(), 3 * 5 + 2 + 1);
        assert!(!s.is_contiguous());
        let rows = l.slice(0, 1..3).unwrap();
        assert!(rows.is_contiguous());
        assert_eq!(rows.offset(), 5);
        assert!(l.slice(0, 3..5).is_err());
        assert_eq!(l.slice(0, 4..4).unwrap().end(), 0);
    }

    #[test]
    fn unit_dims_do_not_break_contiguity() {
        let l = Layout::new(shape(&[1, 3, 1]), &[99, 1, 7], 2).unwrap();
        assert!(l.is_contiguous());
        assert_eq!(l.end(), 5);
    }

    #[test]
    fn overflowing_layout_is_rejected() {
        assert_eq!(
            Layout::new(shape(&[2, 2]), &[usize::MAX, 1], 0),
            Err(TensorError::Overflow)
        );
    }
}
