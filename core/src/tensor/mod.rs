//! Tensor views: a shape, strides and an offset over borrowed bytes.
//!
//! Nothing here owns or copies memory. A view checks once, when it is made, that every
//! element its layout can reach lies inside the buffer, so code that walks a view never
//! needs a bounds check of its own. Permuting, transposing and slicing only rewrite the
//! layout; moving the data is the job of [`crate::region`].
//!
//! Dimensions are listed outermost first (row-major, like NumPy). GGUF lists them the other
//! way round; [`Shape::from_ggml`] turns them.

pub mod cast;
mod layout;
mod shape;
mod view;

pub use cast::{bytes_as_f32, bytes_as_f32_mut, f32_as_bytes, f32_as_bytes_mut};
pub use layout::Layout;
pub use shape::{MAX_DIMS, Shape};
pub use view::{TensorView, TensorViewMut};

use crate::dtype::DType;
use core::fmt;

/// A layout or view that cannot be made, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorError {
    /// More than [`MAX_DIMS`] dimensions.
    RankTooLarge {
        /// Dimensions asked for.
        rank: usize,
    },
    /// A list of strides, axes or indices whose length is not the tensor's rank.
    RankMismatch {
        /// The tensor's rank.
        expected: usize,
        /// Length of the list given.
        got: usize,
    },
    /// An axis number at or past the rank.
    AxisOutOfRange {
        /// The axis given (0 is the outermost).
        axis: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// Permutation axes that name some axis twice.
    NotAPermutation,
    /// A slice `start..end` that does not fit in a dimension of `size`.
    RangeOutOfBounds {
        /// The dimension sliced (0 is the outermost).
        dim: usize,
        /// First index of the slice.
        start: usize,
        /// One past the slice's last index.
        end: usize,
        /// Size of the dimension.
        size: usize,
    },
    /// An index past the end of its dimension.
    IndexOutOfBounds {
        /// The dimension indexed (0 is the outermost).
        dim: usize,
        /// The index given.
        index: usize,
        /// Size of the dimension.
        size: usize,
    },
    /// Sizes, strides or offsets whose arithmetic does not fit in `usize`.
    Overflow,
    /// The layout reaches `needed` bytes, the buffer holds `available`.
    OutOfBounds {
        /// Bytes the buffer must hold: up to the furthest element the layout reaches.
        needed: usize,
        /// Bytes the buffer holds.
        available: usize,
    },
    /// A block-quantized tensor must keep whole blocks contiguous along its innermost
    /// dimension, and every other stride and the offset must be whole blocks.
    SplitsBlocks {
        /// The tensor's block-quantized type.
        dtype: DType,
    },
    /// An f32 accessor on a tensor of another type.
    NotF32 {
        /// The tensor's type.
        dtype: DType,
    },
    /// A per-element accessor on a block-quantized tensor.
    NotElementwise {
        /// The tensor's block-quantized type.
        dtype: DType,
    },
    /// f32 data whose address or length is not a multiple of 4 bytes.
    Misaligned,
    /// An operation that needs the elements in one dense run.
    NotContiguous,
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TensorError::RankTooLarge { rank } => {
                write!(f, "rank {rank} exceeds the maximum of {MAX_DIMS}")
            }
            TensorError::RankMismatch { expected, got } => {
                write!(f, "expected {expected} entries (the rank), got {got}")
            }
            TensorError::AxisOutOfRange { axis, rank } => {
                write!(f, "axis {axis} out of range for rank {rank}")
            }
            TensorError::NotAPermutation => f.write_str("axes are not a permutation"),
            TensorError::RangeOutOfBounds {
                dim,
                start,
                end,
                size,
            } => write!(
                f,
                "range {start}..{end} out of bounds for dim {dim} of size {size}"
            ),
            TensorError::IndexOutOfBounds { dim, index, size } => {
                write!(
                    f,
                    "index {index} out of bounds for dim {dim} of size {size}"
                )
            }
            TensorError::Overflow => f.write_str("tensor size arithmetic overflows usize"),
            TensorError::OutOfBounds { needed, available } => {
                write!(f, "layout needs {needed} bytes, buffer has {available}")
            }
            TensorError::SplitsBlocks { dtype } => {
                write!(f, "{dtype}: layout does not keep whole blocks contiguous")
            }
            TensorError::NotF32 { dtype } => write!(f, "expected F32 data, tensor is {dtype}"),
            TensorError::NotElementwise { dtype } => {
                write!(f, "{dtype} is block-quantized: no per-element access")
            }
            TensorError::Misaligned => f.write_str("f32 data is not 4-byte aligned"),
            TensorError::NotContiguous => f.write_str("tensor is not contiguous"),
        }
    }
}
