//! Every builder against a naive reference that computes each element's index by hand.

extern crate std;

use super::*;
use crate::region::{copy_regions, validate};
use crate::tensor::TensorView;
use proptest::prelude::*;
use std::vec::Vec;

const SENTINEL: u32 = u32::MAX;

fn source(len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| i * 7 + 1).collect()
}

fn unravel(mut lin: usize, dims: &[usize]) -> [usize; 4] {
    let mut idx = [0; 4];
    for d in (0..dims.len()).rev() {
        idx[d] = lin % dims[d];
        lin /= dims[d];
    }
    idx
}

fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Copies with the builder's regions into a sentinel-filled buffer.
fn run(src: &[u32], dst_len: usize, regions: &[Region]) -> Vec<u32> {
    let mut dst = std::vec![SENTINEL; dst_len];
    copy_regions(src, &mut dst, regions).unwrap();
    dst
}

#[test]
fn transpose_2d_matches_by_hand() {
    let src = source(6);
    let r = transpose_2d(2, 3, 0, 0);
    assert_eq!(
        run(&src, 6, &[r]),
        [src[0], src[3], src[1], src[4], src[2], src[5]]
    );
    assert!(transpose_2d(1, 5, 2, 3).is_run());
    assert!(transpose_2d(5, 1, 2, 3).is_run());
}

#[test]
fn dense_permute_of_identity_is_one_run() {
    let mut out = [Region::default(); 4];
    let n = permute(&[2, 3, 4, 5], &[0, 1, 2, 3], 10, 20, &mut out).unwrap();
    assert_eq!(&out[..n], &[Region::run(10, 20, 120)]);
    // Swapping two unit-free axes keeps the rest merged: [2][3*4*5] -> [3*4*5][2] style box.
    let n = permute(&[2, 3, 4, 5], &[1, 2, 3, 0], 0, 0, &mut out).unwrap();
    assert_eq!(n, 1);
    assert_eq!(out[0].size, [1, 60, 2]);
}

#[test]
fn four_loop_permute_needs_room() {
    // Reversing all four axes leaves no loops to merge: one region per outer step.
    let mut out = [Region::default(); 1];
    assert_eq!(
        permute(&[3, 2, 2, 2], &[3, 2, 1, 0], 0, 0, &mut out),
        Err(RegionError::TooManyRegions {
            needed: 2,
            capacity: 1
        })
    );
    let mut big = [Region::default(); 8];
    assert_eq!(permute(&[3, 2, 2, 2], &[3, 2, 1, 0], 0, 0, &mut big), Ok(2));
    assert_eq!(
        strided(
            &[
                Axis {
                    size: 5,
                    src_stride: 1,
                    dst_stride: 100
                },
                Axis {
                    size: 2,
                    src_stride: 50,
                    dst_stride: 1
                },
                Axis {
                    size: 2,
                    src_stride: 5,
                    dst_stride: 40
                },
                Axis {
                    size: 2,
                    src_stride: 20,
                    dst_stride: 2
                },
            ],
            0,
            0,
            &mut out,
        ),
        Err(RegionError::TooManyRegions {
            needed: 5,
            capacity: 1
        })
    );
}

#[test]
fn builders_reject_bad_arguments() {
    let mut out = [Region::default(); 4];
    assert_eq!(
        permute(&[2, 3], &[1, 1], 0, 0, &mut out),
        Err(RegionError::Layout(TensorError::NotAPermutation))
    );
    assert!(matches!(
        slice(&[2, 3], 1, 2..4, 0, 0, &mut out),
        Err(RegionError::Layout(TensorError::RangeOutOfBounds { .. }))
    ));
    assert_eq!(
        concat(&[2, 3], 1, &[1, 1], &[0, 10], 0, &mut out),
        Err(RegionError::PartsMismatch {
            parts: 2,
            offsets: 2,
            sum: 2,
            size: 3
        })
    );
    assert!(matches!(
        concat(&[2, 3], 2, &[3], &[0], 0, &mut out),
        Err(RegionError::Layout(TensorError::AxisOutOfRange { .. }))
    ));
    assert_eq!(
        strided(&[Axis::default(); 5], 0, 0, &mut out),
        Err(RegionError::TooManyAxes { axes: 5 })
    );
    assert_eq!(strided(&[Axis::default(); 2], 0, 0, &mut out), Ok(0));
    let kv = KvAppend {
        n_kv_heads: 2,
        head_dim: 4,
        max_pos: 8,
        start_pos: 6,
        n_tokens: 3,
        src_offset: 0,
        src_token_stride: 8,
        dst_offset: 0,
    };
    assert_eq!(
        kv.region(),
        Err(RegionError::KvFull {
            start_pos: 6,
            n_tokens: 3,
            max_pos: 8
        })
    );
}

#[test]
fn concat_of_adjacent_rows_is_one_run() {
    let mut out = [Region::default(); 4];
    let n = concat(&[5, 4], 0, &[2, 3], &[100, 108], 7, &mut out).unwrap();
    assert_eq!(&out[..n], &[Region::run(100, 7, 20)]);
    // Along columns the parts interleave: one 2-D box each.
    let n = concat(&[5, 4], 1, &[1, 3], &[0, 5], 0, &mut out).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn single_token_kv_append_of_one_head_is_a_run() {
    let kv = KvAppend {
        n_kv_heads: 1,
        head_dim: 64,
        max_pos: 128,
        start_pos: 9,
        n_tokens: 1,
        src_offset: 0,
        src_token_stride: 64,
        dst_offset: 1000,
    };
    assert_eq!(kv.region(), Ok(Region::run(0, 1000 + 9 * 64, 64)));
}

#[test]
fn from_layouts_materializes_a_transposed_view() {
    let data: [f32; 6] = core::array::from_fn(|i| i as f32);
    let shape = Shape::new(&[2, 3]).unwrap();
    let view = TensorView::from_f32(&data, shape)
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let dst_layout = Layout::contiguous(view.shape());
    let mut out = [Region::default(); 1];
    let n = from_layouts(&view.layout(), &dst_layout, &mut out).unwrap();
    let mut dst = [0.0f32; 6];
    copy_regions(view.as_f32().unwrap(), &mut dst, &out[..n]).unwrap();
    assert_eq!(dst, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let other = Layout::contiguous(shape);
    assert_eq!(
        from_layouts(&view.layout(), &other, &mut out),
        Err(RegionError::ShapeMismatch)
    );
}

fn shape_and_axes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1usize..=4).prop_flat_map(|rank| {
        (
            proptest::collection::vec(1usize..5, rank),
            Just((0..rank).collect::<Vec<_>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #[test]
    fn permute_matches_naive(
        (shape, axes) in shape_and_axes(),
        src_off in 0usize..7,
        dst_off in 0usize..7,
    ) {
        let numel: usize = shape.iter().product();
        let src = source(src_off + numel);
        let mut out = [Region::default(); 8];
        let n = permute(&shape, &axes, src_off, dst_off, &mut out).unwrap();
        let got = run(&src, dst_off + numel + 3, &out[..n]);

        let out_dims: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let mut want = std::vec![SENTINEL; dst_off + numel + 3];
        for lin in 0..numel {
            let o = unravel(lin, &out_dims);
            let mut s = [0; 4];
            for (i, &a) in axes.iter().enumerate() {
                s[a] = o[i];
            }
            want[dst_off + lin] = src[src_off + ravel(&s[..shape.len()], &shape)];
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn slice_matches_naive(
        shape in proptest::collection::vec(1usize..6, 1..=4),
        pick in any::<(usize, usize, usize)>(),
        src_off in 0usize..5,
    ) {
        let dim = pick.0 % shape.len();
        let start = pick.1 % (shape[dim] + 1);
        let end = start + pick.2 % (shape[dim] - start + 1);
        let numel: usize = shape.iter().product();
        let src = source(src_off + numel);
        let mut out = [Region::default(); 8];
        let n = slice(&shape, dim, start..end, src_off, 0, &mut out).unwrap();
        let mut out_dims = shape.clone();
        out_dims[dim] = end - start;
        let out_numel: usize = out_dims.iter().product();
        let got = run(&src, out_numel + 2, &out[..n]);

        let mut want = std::vec![SENTINEL; out_numel + 2];
        for (lin, w) in want.iter_mut().take(out_numel).enumerate() {
            let mut idx = unravel(lin, &out_dims);
            idx[dim] += start;
            *w = src[src_off + ravel(&idx[..shape.len()], &shape)];
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn concat_matches_naive(
        shape in proptest::collection::vec(1usize..5, 1..=4),
        dim_pick in any::<usize>(),
        lens in proptest::collection::vec(0usize..4, 1..4),
        gaps in proptest::collection::vec(0usize..3, 4),
        dst_off in 0usize..4,
    ) {
        let dim = dim_pick % shape.len();
        let mut shape = shape;
        shape[dim] = lens.iter().sum();
        let part_numel = |len: usize| -> usize {
            shape.iter().enumerate().map(|(i, &d)| if i == dim { len } else { d }).product()
        };
        let mut offsets = Vec::new();
        let mut at = 0;
        for (i, &len) in lens.iter().enumerate() {
            at += gaps[i];
            offsets.push(at);
            at += part_numel(len);
        }
        let src = source(at);
        let numel: usize = shape.iter().product();
        let mut out = [Region::default(); 16];
        let n = concat(&shape, dim, &lens, &offsets, dst_off, &mut out).unwrap();
        let got = run(&src, dst_off + numel + 2, &out[..n]);

        let mut want = std::vec![SENTINEL; dst_off + numel + 2];
        for lin in 0..numel {
            let mut idx = unravel(lin, &shape);
            let (mut p, mut before) = (0, 0);
            while idx[dim] >= before + lens[p] {
                before += lens[p];
                p += 1;
            }
            idx[dim] -= before;
            let mut part_dims = shape.clone();
            part_dims[dim] = lens[p];
            want[dst_off + lin] = src[offsets[p] + ravel(&idx[..shape.len()], &part_dims)];
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn kv_append_matches_naive(
        n_kv_heads in 1usize..4,
        head_dim in 1usize..6,
        max_pos in 1usize..8,
        pick in any::<(usize, usize)>(),
        pad in 0usize..3,
        src_off in 0usize..5,
        dst_off in 0usize..5,
    ) {
        let start_pos = pick.0 % max_pos;
        let n_tokens = 1 + pick.1 % (max_pos - start_pos);
        let stride = n_kv_heads * head_dim + pad;
        let kv = KvAppend {
            n_kv_heads,
            head_dim,
            max_pos,
            start_pos,
            n_tokens,
            src_offset: src_off,
            src_token_stride: stride,
            dst_offset: dst_off,
        };
        let src = source(src_off + n_tokens * stride);
        let cache_len = dst_off + n_kv_heads * max_pos * head_dim;
        let region = kv.region().unwrap();
        prop_assert!(validate(&[region], src.len(), cache_len).is_ok());
        let got = run(&src, cache_len, &[region]);

        let mut want = std::vec![SENTINEL; cache_len];
        for t in 0..n_tokens {
            for h in 0..n_kv_heads {
                for d in 0..head_dim {
                    let at = dst_off + (h * max_pos + start_pos + t) * head_dim + d;
                    want[at] = src[src_off + t * stride + h * head_dim + d];
                }
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn strided_matches_naive(
        axes in proptest::collection::vec(
            (0usize..4, 0usize..9, 0usize..9).prop_map(|(size, s, d)| Axis {
                size,
                src_stride: s,
                dst_stride: d,
            }),
            0..=4,
        ),
        src_off in 0usize..5,
        dst_off in 0usize..5,
    ) {
        let mut out = [Region::default(); 8];
        let n = strided(&axes, src_off, dst_off, &mut out).unwrap();
        let src = source(200);
        let got = run(&src, 200, &out[..n]);

        let mut want = std::vec![SENTINEL; 200];
        let dims: Vec<usize> = axes.iter().map(|a| a.size).collect();
        let numel: usize = dims.iter().product();
        for lin in 0..numel {
            let idx = unravel(lin, &dims);
            let (mut s, mut d) = (src_off, dst_off);
            for (a, &i) in axes.iter().zip(&idx) {
                s += i * a.src_stride;
                d += i * a.dst_stride;
            }
            want[d] = src[s];
        }
        prop_assert_eq!(got, want);
    }
}
