//! Fusion: fewer, longer loops for the same copy.
//!
//! Two rewrites, both of which keep the exact sequence of element copies (so the result is
//! identical even when destinations overlap):
//! - inside a region, a loop whose stride on both sides equals the next inner loop's size
//!   times its stride continues that loop, so the two become one; unit loops are dropped;
//! - a region that starts, on both sides, where the previous one's outermost loop would
//!   step next extends that loop.
//!
//! A dense copy of any shape ends as one [`Region::run`]; a transpose stays a 2-D box.

use super::{Axis, Region};

/// `r` with unit loops dropped and contiguous loops merged, packed innermost (see
/// [`pack`]). `None` when `r` copies nothing.
fn simplify(r: Region) -> Option<Region> {
    if r.is_empty() {
        return None;
    }
    let axes: [Axis; 3] = core::array::from_fn(|i| Axis {
        size: r.size[i],
        src_stride: r.src_stride[i],
        dst_stride: r.dst_stride[i],
    });
    let mut merged = [Axis::UNIT; 3];
    let n = merge_axes(&axes, &mut merged);
    Some(pack(r.src_offset, r.dst_offset, &merged[..n]))
}

/// Writes `axes` (outermost first, none empty) to `out` with unit axes dropped and each
/// axis merged into the one outside it where possible; returns how many remain.
pub(super) fn merge_axes(axes: &[Axis], out: &mut [Axis]) -> usize {
    let mut n = 0usize;
    for &a in axes.iter().filter(|a| a.size != 1) {
        if let Some(m) = n.checked_sub(1).and_then(|last| merge_two(out[last], a)) {
            out[n - 1] = m;
        } else {
            out[n] = a;
            n += 1;
        }
    }
    n
}

/// The single loop equal to `outer` wrapped around `inner`, when `outer` steps exactly
/// past `inner`'s span on both sides.
fn merge_two(outer: Axis, inner: Axis) -> Option<Axis> {
    let continues = |outer_stride: usize, inner_stride: usize| {
        inner.size.checked_mul(inner_stride) == Some(outer_stride)
    };
    if !continues(outer.src_stride, inner.src_stride)
        || !continues(outer.dst_stride, inner.dst_stride)
    {
        return None;
    }
    Some(Axis {
        size: outer.size.checked_mul(inner.size)?,
        ..inner
    })
}

/// A region from up to three loops, outermost first, placed innermost. Unused loops get
/// stride 0, so equal copies compare equal; with no loops at all it is a one-element run.
pub(super) fn pack(src_offset: usize, dst_offset: usize, dims: &[Axis]) -> Region {
    if dims.is_empty() {
        return Region::run(src_offset, dst_offset, 1);
    }
    let mut r = Region {
        src_offset,
        dst_offset,
        size: [1; 3],
        src_stride: [0; 3],
        dst_stride: [0; 3],
    };
    let first = 3 - dims.len();
    for (i, d) in dims.iter().enumerate() {
        r.size[first + i] = d.size;
        r.src_stride[first + i] = d.src_stride;
        r.dst_stride[first + i] = d.dst_stride;
    }
    r
}

/// The stride that makes a loop of `a` then `b` iterations one loop, given that `b`
/// starts `delta` after `a`. A loop of one iteration has no stride of its own yet.
fn common_stride(a: usize, sa: usize, b: usize, sb: usize, delta: usize) -> Option<usize> {
    let s = if a > 1 {
        sa
    } else if b > 1 {
        sb
    } else {
        delta
    };
    (b <= 1 || sb == s).then_some(())?;
    (a.checked_mul(s)? == delta).then_some(s)
}

/// One region doing `a` then `b`, both simplified, when `b` continues `a`: along the
/// outermost loop either of them uses, or along a new loop just outside it.
fn merge_regions(a: &Region, b: &Region) -> Option<Region> {
    let ds = b.src_offset.checked_sub(a.src_offset)?;
    let dd = b.dst_offset.checked_sub(a.dst_offset)?;
    let outermost = |r: &Region| r.size.iter().position(|&n| n != 1).unwrap_or(2);
    let k = outermost(a).min(outermost(b));
    (k.saturating_sub(1)..=k)
        .rev()
        .find_map(|k| extend(a, b, k, ds, dd))
}

/// `a` with loop `k` lengthened to also cover `b`, when both have the same loops inside
/// `k` and `b` starts where `a`'s loop `k` steps next. Loops outside `k` are unit in both.
fn extend(a: &Region, b: &Region, k: usize, ds: usize, dd: usize) -> Option<Region> {
    let inner = k + 1..3;
    if a.size[inner.clone()] != b.size[inner.clone()]
        || a.src_stride[inner.clone()] != b.src_stride[inner.clone()]
        || a.dst_stride[inner.clone()] != b.dst_stride[inner]
    {
        return None;
    }
    let (na, nb) = (a.size[k], b.size[k]);
    let mut m = *a;
    m.src_stride[k] = common_stride(na, a.src_stride[k], nb, b.src_stride[k], ds)?;
    m.dst_stride[k] = common_stride(na, a.dst_stride[k], nb, b.dst_stride[k], dd)?;
    m.size[k] = na.checked_add(nb)?;
    simplify(m)
}

/// Fuses `regions` in place and returns how many remain; `regions[..n]` then performs
/// exactly the same copies, in the same order, as the original list. Empty regions are
/// dropped.
pub fn fuse(regions: &mut [Region]) -> usize {
    let mut n = 0;
    for i in 0..regions.len() {
        let Some(mut r) = simplify(regions[i]) else {
            continue;
        };
        // A merge can make the result continue the region before it, so keep folding.
        while n > 0 {
            match merge_regions(&regions[n - 1], &r) {
                Some(m) => {
                    r = m;
                    n -= 1;
                }
                None => break,
            }
        }
        regions[n] = r;
        n += 1;
    }
    n
}

impl Region {
    /// This region with unit loops dropped and contiguous loops merged (see [`fuse()`]);
    /// an empty region comes back unchanged.
    pub fn fused(self) -> Region {
        simplify(self).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::copy_regions;
    use proptest::prelude::*;

    #[test]
    fn contiguous_copy_fuses_to_one_run() {
        // A dense 2x3x4 block written as three nested loops.
        let r = Region {
            src_offset: 5,
            dst_offset: 7,
            size: [2, 3, 4],
            src_stride: [12, 4, 1],
            dst_stride: [12, 4, 1],
        };
        assert_eq!(r.fused(), Region::run(5, 7, 24));
        assert!(r.fused().is_run());
    }

    #[test]
    fn row_by_row_copy_fuses_to_one_run() {
        let mut rs: [Region; 4] = core::array::from_fn(|i| Region::run(10 * i, 10 * i, 10));
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(rs[0], Region::run(0, 0, 40));
    }

    #[test]
    fn runs_of_different_lengths_join() {
        let mut rs = [
            Region::run(0, 3, 5),
            Region::run(5, 8, 2),
            Region::run(7, 10, 9),
        ];
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(rs[0], Region::run(0, 3, 16));
    }

    #[test]
    fn transpose_does_not_fuse() {
        let t = Region {
            src_offset: 0,
            dst_offset: 0,
            size: [1, 4, 3],
            src_stride: [0, 1, 4],
            dst_stride: [0, 3, 1],
        };
        let mut rs = [t];
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(rs[0], t);
        assert!(!rs[0].is_run());
    }

    #[test]
    fn strided_rows_stack_into_a_box() {
        // Rows of 4 taken every 8 source elements, packed densely: a 2-D box, not a run.
        let mut rs: [Region; 3] = core::array::from_fn(|i| Region::run(8 * i, 4 * i, 4));
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(
            rs[0],
            Region {
                src_offset: 0,
                dst_offset: 0,
                size: [1, 3, 4],
                src_stride: [0, 8, 1],
                dst_stride: [0, 4, 1],
            }
        );
    }

    #[test]
    fn single_elements_become_a_strided_run() {
        let mut rs: [Region; 5] = core::array::from_fn(|i| Region::run(3 * i, 2 * i + 1, 1));
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(rs[0].size, [1, 1, 5]);
        assert_eq!((rs[0].src_stride[2], rs[0].dst_stride[2]), (3, 2));
    }

    #[test]
    fn empty_regions_are_dropped_and_gaps_kept() {
        let mut rs = [
            Region::run(0, 0, 4),
            Region::run(100, 100, 0),
            Region::run(5, 4, 3),
        ];
        assert_eq!(fuse(&mut rs), 2);
        assert_eq!(&rs[..2], &[Region::run(0, 0, 4), Region::run(5, 4, 3)]);
    }

    #[test]
    fn a_longer_box_absorbs_a_following_box() {
        // Rows 0..2 of a strided matrix, then rows 2..5: one box of five rows.
        let rows = |first: usize, n: usize| Region {
            src_offset: 9 * first,
            dst_offset: 4 * first,
            size: [1, n, 4],
            src_stride: [0, 9, 1],
            dst_stride: [0, 4, 1],
        };
        let mut rs = [rows(0, 2), rows(2, 3)];
        assert_eq!(fuse(&mut rs), 1);
        assert_eq!(rs[0], rows(0, 5));
    }

    fn small_region() -> impl Strategy<Value = Region> {
        (
            0usize..40,
            0usize..40,
            [0usize..4, 1..4, 1..6],
            [0usize..13, 0..7, 0..3],
            [0usize..13, 0..7, 0..3],
        )
            .prop_map(|(so, d, size, ss, ds)| Region {
                src_offset: so,
                dst_offset: d,
                size,
                src_stride: ss,
                dst_stride: ds,
            })
    }

    /// Regions that often continue each other: each starts where the previous one ended
    /// on both sides (plus a small jitter), with a random shape.
    fn chained_regions() -> impl Strategy<Value = [Region; 6]> {
        proptest::collection::vec(
            ([1usize..3, 1..4, 1..5], 0usize..3, 0usize..2, 0usize..2),
            6,
        )
        .prop_map(|parts| {
            let (mut s, mut d) = (0usize, 0usize);
            core::array::from_fn(|i| {
                let (size, gap, sj, dj) = parts[i];
                let r = Region {
                    src_offset: s + sj * gap,
                    dst_offset: d + dj * gap,
                    size,
                    src_stride: [size[1] * size[2], size[2], 1],
                    dst_stride: [size[1] * size[2] + gap, size[2], 1],
                };
                s = r.src_end().unwrap();
                d = r.dst_end().unwrap();
                r
            })
        })
    }

    fn same_result(regions: &[Region]) -> Result<(), TestCaseError> {
        let src: [u32; 1024] = core::array::from_fn(|i| i as u32 + 1);
        let mut plain = [0u32; 1024];
        let mut fused_dst = [0u32; 1024];
        let mut fused = [Region::default(); 8];
        fused[..regions.len()].copy_from_slice(regions);
        let n = fuse(&mut fused[..regions.len()]);
        prop_assert!(n <= regions.len());
        let a = copy_regions(&src, &mut plain, regions);
        let b = copy_regions(&src, &mut fused_dst, &fused[..n]);
        prop_assert_eq!(a.is_ok(), b.is_ok());
        prop_assert_eq!(&plain[..], &fused_dst[..]);
        Ok(())
    }

    proptest! {
        #[test]
        fn fused_random_regions_copy_the_same(
            rs in proptest::collection::vec(small_region(), 1..6)
        ) {
            same_result(&rs)?;
        }

        #[test]
        fn fused_chained_regions_copy_the_same(rs in chained_regions()) {
            same_result(&rs)?;
        }

        #[test]
        fn back_to_back_dense_boxes_fuse_to_one_run(
            sizes in proptest::collection::vec([1usize..4, 1..4, 1..5], 1..8),
            so in 0usize..9,
            d in 0usize..9,
        ) {
            let mut rs = [Region::default(); 8];
            let mut at = 0;
            for (r, size) in rs.iter_mut().zip(&sizes) {
                let strides = [size[1] * size[2], size[2], 1];
                *r = Region {
                    src_offset: so + at,
                    dst_offset: d + at,
                    size: *size,
                    src_stride: strides,
                    dst_stride: strides,
                };
                at += size[0] * size[1] * size[2];
            }
            let n = fuse(&mut rs[..sizes.len()]);
            prop_assert_eq!(&rs[..n], &[Region::run(so, d, at)]);
        }

        #[test]
        fn dense_boxes_always_fuse_to_a_run(
            size in [1usize..5, 1..5, 1..5],
            so in 0usize..50,
            d in 0usize..50,
        ) {
            let r = Region {
                src_offset: so,
                dst_offset: d,
                size,
                src_stride: [size[1] * size[2], size[2], 1],
                dst_stride: [size[1] * size[2], size[2], 1],
            };
            let n = size[0] * size[1] * size[2];
            prop_assert_eq!(r.fused(), Region::run(so, d, n));
        }
    }
}
