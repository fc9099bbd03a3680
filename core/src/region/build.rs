//! Lowering tensor ops to regions.
//!
//! Every builder describes its op as a nest of up to [`MAX_AXES`] loops over a source and a
//! destination layout, drops unit loops, merges contiguous ones, and writes the result to a
//! caller's `&mut [Region]`, returning how many it wrote. A nest that still has four loops
//! after merging becomes one region per step of its outermost loop; every other op is a
//! single region. Offsets and strides are in elements.

use super::fuse::{fuse, merge_axes, pack};
use super::{Region, RegionError};
use crate::tensor::{Layout, MAX_DIMS, Shape, TensorError};
use core::ops::Range;

/// Most loops a builder accepts: one per tensor dimension.
pub const MAX_AXES: usize = MAX_DIMS;

/// One loop of a strided copy: `size` steps, each moving `src_stride` elements in the
/// source and `dst_stride` in the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Axis {
    /// Steps of the loop.
    pub size: usize,
    /// Source elements between consecutive steps.
    pub src_stride: usize,
    /// Destination elements between consecutive steps.
    pub dst_stride: usize,
}

impl Axis {
    pub(super) const UNIT: Axis = Axis {
        size: 1,
        src_stride: 0,
        dst_stride: 0,
    };
}

/// A loop nest reduced to its essential loops.
struct Nest {
    axes: [Axis; MAX_AXES],
    n: usize,
    src_offset: usize,
    dst_offset: usize,
    empty: bool,
}

impl Nest {
    fn new(axes: &[Axis], src_offset: usize, dst_offset: usize) -> Result<Nest, RegionError> {
        if axes.len() > MAX_AXES {
            return Err(RegionError::TooManyAxes { axes: axes.len() });
        }
        let mut merged = [Axis::UNIT; MAX_AXES];
        let empty = axes.iter().any(|a| a.size == 0);
        let n = if empty {
            0
        } else {
            merge_axes(axes, &mut merged)
        };
        Ok(Nest {
            axes: merged,
            n,
            src_offset,
            dst_offset,
            empty,
        })
    }

    fn count(&self) -> usize {
        match (self.empty, self.n) {
            (true, _) => 0,
            (false, 4) => self.axes[0].size,
            _ => 1,
        }
    }

    fn write(&self, out: &mut [Region]) -> Result<usize, RegionError> {
        let needed = self.count();
        if needed > out.len() {
            return Err(RegionError::TooManyRegions {
                needed,
                capacity: out.len(),
            });
        }
        if needed == 0 {
            return Ok(0);
        }
        if self.n < 4 {
            out[0] = pack(self.src_offset, self.dst_offset, &self.axes[..self.n]);
            return Ok(1);
        }
        let outer = self.axes[0];
        for (i, slot) in out[..needed].iter_mut().enumerate() {
            let at = |base: usize, stride: usize| {
                i.checked_mul(stride)
                    .and_then(|s| s.checked_add(base))
                    .ok_or(RegionError::BuildOverflow)
            };
            *slot = pack(
                at(self.src_offset, outer.src_stride)?,
                at(self.dst_offset, outer.dst_stride)?,
                &self.axes[1..4],
            );
        }
        Ok(needed)
    }
}

/// A general strided copy: `axes` outermost first (at most [`MAX_AXES`]), starting at the
/// given offsets.
pub fn strided(
    axes: &[Axis],
    src_offset: usize,
    dst_offset: usize,
    out: &mut [Region],
) -> Result<usize, RegionError> {
    Nest::new(axes, src_offset, dst_offset)?.write(out)
}

fn nest_of(src: &Layout, dst: &Layout) -> Result<Nest, RegionError> {
    if src.dims() != dst.dims() {
        return Err(RegionError::ShapeMismatch);
    }
    let mut axes = [Axis::UNIT; MAX_AXES];
    for (i, a) in axes.iter_mut().take(src.dims().len()).enumerate() {
        *a = Axis {
            size: src.dims()[i],
            src_stride: src.strides()[i],
            dst_stride: dst.strides()[i],
        };
    }
    Nest::new(&axes[..src.dims().len()], src.offset(), dst.offset())
}

/// Copies every element of `src` to the same index of `dst`; both layouts must have the
/// same shape. This materializes any view: a transposed, permuted or sliced layout on one
/// side and a dense one on the other.
pub fn from_layouts(src: &Layout, dst: &Layout, out: &mut [Region]) -> Result<usize, RegionError> {
    nest_of(src, dst)?.write(out)
}

fn dense(shape: &[usize], offset: usize) -> Result<Layout, TensorError> {
    Layout::contiguous(Shape::new(shape)?).with_offset(offset)
}

/// Transposes a dense `rows x cols` matrix at `src_offset` into a dense `cols x rows`
/// matrix at `dst_offset`. Always one region.
pub fn transpose_2d(rows: usize, cols: usize, src_offset: usize, dst_offset: usize) -> Region {
    Region {
        src_offset,
        dst_offset,
        size: [1, cols, rows],
        src_stride: [0, 1, cols],
        dst_stride: [0, rows, 1],
    }
    .fused()
}

/// Permutes a dense tensor of `shape` at `src_offset` into a dense tensor at `dst_offset`
/// whose dimension `i` is source dimension `axes[i]` (NumPy's `transpose(axes)`).
pub fn permute(
    shape: &[usize],
    axes: &[usize],
    src_offset: usize,
    dst_offset: usize,
    out: &mut [Region],
) -> Result<usize, RegionError> {
    let src = dense(shape, src_offset)?.permute(axes)?;
    let dst = dense(src.dims(), dst_offset)?;
    from_layouts(&src, &dst, out)
}

/// Copies the part of a dense tensor of `shape` where dimension `dim` lies in `range`
/// into a dense tensor at `dst_offset`.
pub fn slice(
    shape: &[usize],
    dim: usize,
    range: Range<usize>,
    src_offset: usize,
    dst_offset: usize,
    out: &mut [Region],
) -> Result<usize, RegionError> {
    let src = dense(shape, src_offset)?.slice(dim, range)?;
    let dst = dense(src.dims(), dst_offset)?;
    from_layouts(&src, &dst, out)
}

fn part_nest(
    shape: &[usize],
    dim: usize,
    range: Range<usize>,
    src_offset: usize,
    dst_offset: usize,
) -> Result<Nest, RegionError> {
    let dst = dense(shape, dst_offset)?.slice(dim, range)?;
    let src = dense(dst.dims(), src_offset)?;
    nest_of(&src, &dst)
}

/// Writes one dense part at `src_offset` into its place, `range` along dimension `dim`,
/// of a dense output of `shape` at `dst_offset`. The building block of a concat whose
/// parts live in different buffers: one call, and one [`copy_regions`] per part.
///
/// [`copy_regions`]: super::copy_regions
pub fn concat_part(
    shape: &[usize],
    dim: usize,
    range: Range<usize>,
    src_offset: usize,
    dst_offset: usize,
    out: &mut [Region],
) -> Result<usize, RegionError> {
    part_nest(shape, dim, range, src_offset, dst_offset)?.write(out)
}

/// Concatenates dense parts living in one source buffer along dimension `dim` into a dense
/// output of `shape` at `dst_offset`. Part `i` has `shape` except `part_lens[i]` along
/// `dim`, and starts at `src_offsets[i]`. The regions come out fused, so parts that sit
/// back to back in the source and tile the output in order become one run.
pub fn concat(
    shape: &[usize],
    dim: usize,
    part_lens: &[usize],
    src_offsets: &[usize],
    dst_offset: usize,
    out: &mut [Region],
) -> Result<usize, RegionError> {
    let size = *shape.get(dim).ok_or(TensorError::AxisOutOfRange {
        axis: dim,
        rank: shape.len(),
    })?;
    let sum = part_lens
        .iter()
        .try_fold(0usize, |acc, &n| acc.checked_add(n))
        .ok_or(RegionError::BuildOverflow)?;
    if part_lens.len() != src_offsets.len() || sum != size {
        return Err(RegionError::PartsMismatch {
            parts: part_lens.len(),
            offsets: src_offsets.len(),
            sum,
            size,
        });
    }
    let parts = || {
        part_lens
            .iter()
            .zip(src_offsets)
            .scan(0, |at, (&len, &src)| {
                let range = *at..*at + len;
                *at += len;
                Some(part_nest(shape, dim, range, src, dst_offset))
            })
    };
    let mut needed = 0usize;
    for nest in parts() {
        needed = needed.saturating_add(nest?.count());
    }
    if needed > out.len() {
        return Err(RegionError::TooManyRegions {
            needed,
            capacity: out.len(),
        });
    }
    let mut n = 0;
    for nest in parts() {
        n += nest?.write(&mut out[n..])?;
    }
    Ok(fuse(&mut out[..n]))
}

/// Appends `n_tokens` new key (or value) rows of one layer to a KV cache.
///
/// The source holds the new tokens as `[token][kv_head][head_dim]` (the output of the K or
/// V projection), `src_token_stride` elements apart (`n_kv_heads * head_dim` when dense,
/// more when K and V share a row). The cache is `[kv_head][pos][head_dim]` with room for
/// `max_pos` positions per head, starting at `dst_offset`; the rows land at positions
/// `start_pos..start_pos + n_tokens`. One region: attention then reads each head's keys
/// as one dense matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvAppend {
    /// Key (or value) heads per position.
    pub n_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Positions the cache holds per head.
    pub max_pos: usize,
    /// Position the first new row lands at.
    pub start_pos: usize,
    /// New rows (tokens) to append.
    pub n_tokens: usize,
    /// Index of the first new token's row in the source.
    pub src_offset: usize,
    /// Elements between consecutive tokens' rows in the source (at least
    /// `n_kv_heads * head_dim`).
    pub src_token_stride: usize,
    /// Index of the cache's first element (head 0, position 0) in the destination.
    pub dst_offset: usize,
}

impl KvAppend {
    /// The append as one fused region.
    pub fn region(&self) -> Result<Region, RegionError> {
        let full = RegionError::KvFull {
            start_pos: self.start_pos,
            n_tokens: self.n_tokens,
            max_pos: self.max_pos,
        };
        let end = self.start_pos.checked_add(self.n_tokens).ok_or(full)?;
        if end > self.max_pos {
            return Err(full);
        }
        let head_stride = self
            .max_pos
            .checked_mul(self.head_dim)
            .ok_or(RegionError::BuildOverflow)?;
        let dst_offset = self
            .start_pos
            .checked_mul(self.head_dim)
            .and_then(|o| o.checked_add(self.dst_offset))
            .ok_or(RegionError::BuildOverflow)?;
        Ok(Region {
            src_offset: self.src_offset,
            dst_offset,
            size: [self.n_kv_heads, self.n_tokens, self.head_dim],
            src_stride: [self.head_dim, self.src_token_stride, 1],
            dst_stride: [head_stride, self.head_dim, 1],
        }
        .fused())
    }
}

#[cfg(test)]
mod tests;
