//! Geometric computing: every data-movement op is a strided region copy.
//!
//! Transpose, permute, slice, concat and the KV-cache append are all the same thing: walk a
//! box of up to three nested loops and copy one element per step from a source offset to a
//! destination offset, each side with its own strides. Lowering every such op to
//! [`Region`]s means a backend needs one raster kernel ([`copy_regions`] is the reference
//! one) instead of one kernel per op, and [`fuse()`] can merge what the ops produced so each
//! contiguous stretch is moved as a single run.
//!
//! - [`copy`]: checks regions against both buffers, then copies.
//! - [`fuse`](mod@fuse): collapses contiguous loops and joins regions that continue each other.
//! - [`build`]: lowers tensor ops to regions, writing into a caller's slice (no allocation).

pub mod build;
pub mod copy;
pub mod fuse;

pub use build::{
    Axis, KvAppend, concat, concat_part, from_layouts, permute, slice, strided, transpose_2d,
};
pub use copy::{copy_regions, validate};
pub use fuse::fuse;

use crate::tensor::TensorError;
use core::fmt;

/// A strided copy of a box of `size[0] x size[1] x size[2]` elements, outermost loop first.
///
/// Step `(i, j, k)` copies `src[src_offset + i*src_stride[0] + j*src_stride[1] +
/// k*src_stride[2]]` to the same expression over `dst_*`. Units are elements, never bytes,
/// so one region serves any element type. Steps run in lexicographic order, which only
/// matters when the destination strides overlap (a later write wins).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Region {
    /// Index of the first element read from the source.
    pub src_offset: usize,
    /// Index of the first element written to the destination.
    pub dst_offset: usize,
    /// Steps of each loop, outermost first; a 0 anywhere makes the region empty.
    pub size: [usize; 3],
    /// Source elements between consecutive steps of each loop.
    pub src_stride: [usize; 3],
    /// Destination elements between consecutive steps of each loop.
    pub dst_stride: [usize; 3],
}

impl Region {
    /// A single contiguous run of `len` elements: the memcpy case.
    pub const fn run(src_offset: usize, dst_offset: usize, len: usize) -> Region {
        Region {
            src_offset,
            dst_offset,
            size: [1, 1, len],
            src_stride: [0, 0, 1],
            dst_stride: [0, 0, 1],
        }
    }

    /// Elements copied, or `None` when the count overflows.
    pub fn elements(&self) -> Option<usize> {
        self.size
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
    }

    /// True when the region copies nothing.
    pub fn is_empty(&self) -> bool {
        self.size.contains(&0)
    }

    /// True when the region is one contiguous run on both sides, so a backend can move it
    /// with a single memcpy.
    pub fn is_run(&self) -> bool {
        self.size[0] == 1
            && self.size[1] == 1
            && (self.size[2] <= 1 || (self.src_stride[2] == 1 && self.dst_stride[2] == 1))
    }

    /// One past the furthest source index read (0 when empty), or `None` on overflow.
    pub fn src_end(&self) -> Option<usize> {
        end(
            self.src_offset,
            &self.size,
            &self.src_stride,
            self.is_empty(),
        )
    }

    /// One past the furthest destination index written (0 when empty), or `None` on overflow.
    pub fn dst_end(&self) -> Option<usize> {
        end(
            self.dst_offset,
            &self.size,
            &self.dst_stride,
            self.is_empty(),
        )
    }
}

fn end(offset: usize, size: &[usize; 3], stride: &[usize; 3], empty: bool) -> Option<usize> {
    if empty {
        return Some(0);
    }
    let mut last = offset;
    for (&n, &s) in size.iter().zip(stride) {
        last = last.checked_add((n - 1).checked_mul(s)?)?;
    }
    last.checked_add(1)
}

/// Why regions could not be built or copied. `region` is an index into the list given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The region reads up to index `end` (exclusive) of a source of `len` elements.
    SrcOutOfBounds {
        /// Index of the region in the list given.
        region: usize,
        /// One past the furthest source index it reads.
        end: usize,
        /// Elements in the source.
        len: usize,
    },
    /// The region writes up to index `end` (exclusive) of a destination of `len` elements.
    DstOutOfBounds {
        /// Index of the region in the list given.
        region: usize,
        /// One past the furthest destination index it writes.
        end: usize,
        /// Elements in the destination.
        len: usize,
    },
    /// The region's index arithmetic overflows `usize`.
    Overflow {
        /// Index of the region in the list given.
        region: usize,
    },
    /// Offsets or sizes given to a builder overflow `usize`.
    BuildOverflow,
    /// A builder was given more than [`build::MAX_AXES`] axes.
    TooManyAxes {
        /// Axes given.
        axes: usize,
    },
    /// The output slice holds `capacity` regions, the op needs `needed`.
    TooManyRegions {
        /// Regions the op lowers to.
        needed: usize,
        /// Regions the output slice holds.
        capacity: usize,
    },
    /// Source and destination layouts of different shapes.
    ShapeMismatch,
    /// Concat parts that do not tile the output: `parts` lengths and `offsets` source
    /// offsets given, lengths summing to `sum` along a dimension of `size`.
    PartsMismatch {
        /// Part lengths given.
        parts: usize,
        /// Source offsets given (one per part is needed).
        offsets: usize,
        /// The part lengths' sum along the concat dimension.
        sum: usize,
        /// The output's size along that dimension, which `sum` must equal.
        size: usize,
    },
    /// A KV append of `n_tokens` at `start_pos` past a cache of `max_pos` positions.
    KvFull {
        /// Position of the first new row.
        start_pos: usize,
        /// Rows to append.
        n_tokens: usize,
        /// Positions the cache holds per head.
        max_pos: usize,
    },
    /// A shape, axis list or range the tensor layer rejected.
    Layout(TensorError),
}

impl From<TensorError> for RegionError {
    fn from(e: TensorError) -> Self {
        RegionError::Layout(e)
    }
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegionError::SrcOutOfBounds { region, end, len } => write!(
                f,
                "region {region} reads up to element {end} of a {len}-element source"
            ),
            RegionError::DstOutOfBounds { region, end, len } => write!(
                f,
                "region {region} writes up to element {end} of a {len}-element destination"
            ),
            RegionError::Overflow { region } => {
                write!(f, "region {region}: index arithmetic overflows usize")
            }
            RegionError::BuildOverflow => f.write_str("region offsets overflow usize"),
            RegionError::TooManyAxes { axes } => {
                write!(f, "{axes} axes, at most {} supported", build::MAX_AXES)
            }
            RegionError::TooManyRegions { needed, capacity } => {
                write!(f, "op needs {needed} regions, room for {capacity}")
            }
            RegionError::ShapeMismatch => f.write_str("source and destination shapes differ"),
            RegionError::PartsMismatch {
                parts,
                offsets,
                sum,
                size,
            } => write!(
                f,
                "concat: {parts} part lengths and {offsets} source offsets, lengths sum to \
                 {sum} of {size}"
            ),
            RegionError::KvFull {
                start_pos,
                n_tokens,
                max_pos,
            } => write!(
                f,
                "KV append of {n_tokens} tokens at position {start_pos} exceeds {max_pos} positions"
            ),
            RegionError::Layout(e) => write!(f, "layout: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_runs() {
        let r = Region::run(3, 5, 4);
        assert!(r.is_run());
        assert_eq!(r.src_end(), Some(7));
        assert_eq!(r.dst_end(), Some(9));
        assert_eq!(r.elements(), Some(4));
        let empty = Region {
            size: [2, 0, 3],
            ..r
        };
        assert!(empty.is_empty());
        assert_eq!(empty.src_end(), Some(0));
        let huge = Region {
            size: [2, 1, 1],
            src_stride: [usize::MAX, 0, 0],
            ..r
        };
        assert_eq!(huge.src_end(), None);
    }
}
