//! The extent of a tensor: up to four dimensions, outermost first.

use super::TensorError;

/// The most dimensions a tensor has. Four covers every activation of a transformer
/// (batch or head, sequence, row, column) and keeps shapes `Copy` and allocation-free.
pub const MAX_DIMS: usize = 4;

/// Dimension sizes, outermost first. The product of the non-zero sizes always fits in
/// `usize`, so element counts and contiguous strides never overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: [usize; MAX_DIMS],
    rank: usize,
}

impl Shape {
    /// A rank-0 shape: one element.
    pub const SCALAR: Shape = Shape {
        dims: [1; MAX_DIMS],
        rank: 0,
    };

    /// A shape from sizes listed outermost first.
    pub fn new(dims: &[usize]) -> Result<Shape, TensorError> {
        if dims.len() > MAX_DIMS {
            return Err(TensorError::RankTooLarge { rank: dims.len() });
        }
        dims.iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
            .ok_or(TensorError::Overflow)?;
        let mut all = [1; MAX_DIMS];
        all[..dims.len()].copy_from_slice(dims);
        Ok(Shape {
            dims: all,
            rank: dims.len(),
        })
    }

    /// A shape from GGUF's dimension list, which starts with the innermost (row length).
    pub fn from_ggml(dims: &[u64]) -> Result<Shape, TensorError> {
        if dims.len() > MAX_DIMS {
            return Err(TensorError::RankTooLarge { rank: dims.len() });
        }
        let mut rev = [1usize; MAX_DIMS];
        for (i, &d) in dims.iter().rev().enumerate() {
            rev[i] = usize::try_from(d).map_err(|_| TensorError::Overflow)?;
        }
        Shape::new(&rev[..dims.len()])
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        // Cannot overflow: `new` checked the product of the non-zero sizes.
        self.dims().iter().product()
    }

    /// Strides, in elements, of the dense row-major layout of this shape; entries past the
    /// rank are zero.
    pub fn contiguous_strides(&self) -> [usize; MAX_DIMS] {
        let mut strides = [0; MAX_DIMS];
        let mut acc = 1usize;
        for d in (0..self.rank).rev() {
            strides[d] = acc;
            // Cannot overflow: every suffix product of non-zero sizes fits, see `new`.
            acc *= self.dims[d].max(1);
        }
        strides
    }

    /// The same shape with dimension `dim` set to `size`.
    pub(crate) fn with_dim(&self, dim: usize, size: usize) -> Result<Shape, TensorError> {
        if dim >= self.rank {
            return Err(TensorError::AxisOutOfRange {
                axis: dim,
                rank: self.rank,
            });
        }
        let mut dims = self.dims;
        dims[dim] = size;
        Shape::new(&dims[..self.rank])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let s = Shape::new(&[2, 3, 4]).unwrap();
        assert_eq!(s.rank(), 3);
        assert_eq!(s.dims(), &[2, 3, 4]);
        assert_eq!(s.numel(), 24);
        assert_eq!(s.contiguous_strides(), [12, 4, 1, 0]);
        assert_eq!(Shape::SCALAR.numel(), 1);
        assert_eq!(Shape::new(&[]).unwrap(), Shape::SCALAR);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(
            Shape::new(&[1, 2, 3, 4, 5]),
            Err(TensorError::RankTooLarge { rank: 5 })
        );
        assert_eq!(Shape::new(&[0, usize::MAX, 2]), Err(TensorError::Overflow));
        assert_eq!(Shape::new(&[0, 5]).unwrap().numel(), 0);
    }

    #[test]
    fn from_ggml_reverses() {
        let s = Shape::from_ggml(&[64, 8, 2]).unwrap();
        assert_eq!(s.dims(), &[2, 8, 64]);
    }
}
