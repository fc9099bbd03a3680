//! The reference raster kernel: check every region, then copy.

use super::{Region, RegionError};

/// Checks that every region stays inside a source of `src_len` and a destination of
/// `dst_len` elements. A plan can call this once and replay the copies many times.
pub fn validate(regions: &[Region], src_len: usize, dst_len: usize) -> Result<(), RegionError> {
    for (i, r) in regions.iter().enumerate() {
        let overflow = RegionError::Overflow { region: i };
        let end = r.src_end().ok_or(overflow)?;
        if end > src_len {
            return Err(RegionError::SrcOutOfBounds {
                region: i,
                end,
                len: src_len,
            });
        }
        let end = r.dst_end().ok_or(overflow)?;
        if end > dst_len {
            return Err(RegionError::DstOutOfBounds {
                region: i,
                end,
                len: dst_len,
            });
        }
    }
    Ok(())
}

/// Copies every region from `src` to `dst`, in order. Nothing is written unless all
/// regions fit both buffers.
pub fn copy_regions<T: Copy>(
    src: &[T],
    dst: &mut [T],
    regions: &[Region],
) -> Result<(), RegionError> {
    validate(regions, src.len(), dst.len())?;
    for r in regions {
        copy_one(src, dst, r);
    }
    Ok(())
}

/// Copies one validated region. Indexing cannot fail: `validate` bounded the furthest
/// index on each side, and every other index is smaller.
fn copy_one<T: Copy>(src: &[T], dst: &mut [T], r: &Region) {
    if r.is_empty() {
        return;
    }
    let [n0, n1, n2] = r.size;
    let dense = r.src_stride[2] == 1 && r.dst_stride[2] == 1;
    for i in 0..n0 {
        let s0 = r.src_offset + i * r.src_stride[0];
        let d0 = r.dst_offset + i * r.dst_stride[0];
        for j in 0..n1 {
            let s = s0 + j * r.src_stride[1];
            let d = d0 + j * r.dst_stride[1];
            if dense {
                dst[d..d + n2].copy_from_slice(&src[s..s + n2]);
            } else {
                for k in 0..n2 {
                    dst[d + k * r.dst_stride[2]] = src[s + k * r.src_stride[2]];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn copies_a_strided_box() {
        let src: [u16; 12] = core::array::from_fn(|i| i as u16);
        let mut dst = [0u16; 12];
        // Transpose a 3x4 matrix.
        let r = Region {
            src_offset: 0,
            dst_offset: 0,
            size: [1, 4, 3],
            src_stride: [0, 1, 4],
            dst_stride: [0, 3, 1],
        };
        copy_regions(&src, &mut dst, &[r]).unwrap();
        assert_eq!(dst, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    }

    #[test]
    fn out_of_bounds_is_rejected_before_any_write() {
        let src = [1u8; 8];
        let mut dst = [0u8; 8];
        let ok = Region::run(0, 0, 4);
        let bad_src = Region::run(5, 0, 4);
        assert_eq!(
            copy_regions(&src, &mut dst, &[ok, bad_src]),
            Err(RegionError::SrcOutOfBounds {
                region: 1,
                end: 9,
                len: 8
            })
        );
        assert_eq!(dst, [0; 8], "nothing written when a later region is bad");
        let bad_dst = Region {
            size: [2, 1, 4],
            dst_stride: [5, 0, 1],
            ..ok
        };
        assert_eq!(
            copy_regions(&src, &mut dst, &[bad_dst]),
            Err(RegionError::DstOutOfBounds {
                region: 0,
                end: 9,
                len: 8
            })
        );
        let overflow = Region {
            size: [3, 1, 1],
            src_stride: [usize::MAX / 2 + 1, 0, 0],
            ..ok
        };
        assert_eq!(
            copy_regions(&src, &mut dst, &[overflow]),
            Err(RegionError::Overflow { region: 0 })
        );
    }

    #[test]
    fn empty_regions_are_valid_anywhere() {
        let mut dst = [0u8; 1];
        let r = Region {
            src_offset: 1000,
            dst_offset: 1000,
            size: [0, 5, 5],
            src_stride: [1, 1, 1],
            dst_stride: [1, 1, 1],
        };
        assert_eq!(copy_regions(&[], &mut dst, &[r]), Ok(()));
    }

    fn region_in(max_off: usize) -> impl Strategy<Value = Region> {
        (
            0..max_off,
            0..max_off,
            [0usize..5, 0..5, 0..5],
            [0usize..30, 0..30, 0..30],
            [0usize..30, 0..30, 0..30],
        )
            .prop_map(|(so, d, size, ss, ds)| Region {
                src_offset: so,
                dst_offset: d,
                size,
                src_stride: ss,
                dst_stride: ds,
            })
    }

    proptest! {
        /// Acceptance is exact: a region passes iff every index it touches is in bounds,
        /// and a rejected list leaves the destination untouched.
        #[test]
        fn validation_matches_every_touched_index(
            r in region_in(60),
            src_len in 0usize..200,
            dst_len in 0usize..200,
        ) {
            let mut fits = true;
            for i in 0..r.size[0] {
                for j in 0..r.size[1] {
                    for k in 0..r.size[2] {
                        let s = r.src_offset + i * r.src_stride[0] + j * r.src_stride[1]
                            + k * r.src_stride[2];
                        let d = r.dst_offset + i * r.dst_stride[0] + j * r.dst_stride[1]
                            + k * r.dst_stride[2];
                        fits &= s < src_len && d < dst_len;
                    }
                }
            }
            let src = [7u32; 200];
            let mut dst = [0u32; 200];
            let res = copy_regions(&src[..src_len], &mut dst[..dst_len], &[r]);
            prop_assert_eq!(res.is_ok(), fits);
            if !fits {
                prop_assert!(dst.iter().all(|&x| x == 0));
            }
        }
    }
}
