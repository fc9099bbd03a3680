//! The offset planner: lifetimes in, byte offsets out.

use super::ArenaError;
use core::cmp::Reverse;

/// One tensor of a plan: its size and the ops (indices, inclusive) that first and last
/// use it.
#[derive(Clone, Copy, Debug)]
pub struct Lifetime {
    /// Size of the tensor in bytes; 0 is allowed and takes no space.
    pub bytes: usize,
    /// Index of the first op that uses the tensor.
    pub first_use: usize,
    /// Index of the last op that uses it (inclusive, at least `first_use`).
    pub last_use: usize,
}

impl Lifetime {
    fn overlaps(&self, other: &Lifetime) -> bool {
        self.first_use <= other.last_use && other.first_use <= self.last_use
    }
}

/// Assigns each tensor a byte offset so that tensors whose lifetimes overlap never overlap
/// in memory; returns the total bytes needed (a multiple of `align`).
///
/// Greedy by size: the largest tensor is placed first (ties: earlier first use, then lower
/// index, so the result is deterministic), each into the smallest gap between the
/// tensors already placed and alive at the same time that holds it, or above them all.
/// Every offset is a multiple of `align`, a power of two. Zero-byte tensors get offset 0.
/// Needs no memory beyond `offsets`; time is quadratic in the number of tensors, which
/// is paid once per plan, not per step.
pub fn plan_offsets(
    lifetimes: &[Lifetime],
    align: usize,
    offsets: &mut [usize],
) -> Result<usize, ArenaError> {
    if offsets.len() != lifetimes.len() {
        return Err(ArenaError::LengthMismatch {
            lifetimes: lifetimes.len(),
            offsets: offsets.len(),
        });
    }
    if !align.is_power_of_two() {
        return Err(ArenaError::BadAlign { align });
    }
    if let Some((index, l)) = lifetimes
        .iter()
        .enumerate()
        .find(|(_, l)| l.first_use > l.last_use)
    {
        return Err(ArenaError::BadLifetime {
            index,
            first_use: l.first_use,
            last_use: l.last_use,
        });
    }
    let key = |i: usize| (Reverse(lifetimes[i].bytes), lifetimes[i].first_use, i);
    let mut total = 0usize;
    let mut prev = None;
    for _ in 0..lifetimes.len() {
        // The next tensor in placement order: the smallest key above the last one placed.
        let Some(t) = (0..lifetimes.len())
            .filter(|&i| prev.is_none_or(|p| key(i) > key(p)))
            .min_by_key(|&i| key(i))
        else {
            break;
        };
        let placed = |p: usize| key(p) < key(t);
        offsets[t] = place(lifetimes, offsets, t, placed, align)?;
        let end = offsets[t]
            .checked_add(lifetimes[t].bytes)
            .ok_or(ArenaError::Overflow)?;
        total = total.max(end);
        prev = Some(t);
    }
    align_up(total, align)
}

fn align_up(x: usize, align: usize) -> Result<usize, ArenaError> {
    x.checked_add(align - 1)
        .map(|x| x & !(align - 1))
        .ok_or(ArenaError::Overflow)
}

/// The offset for tensor `t`: the best-fitting aligned gap among the placed tensors whose
/// lifetimes overlap `t`'s.
fn place(
    lifetimes: &[Lifetime],
    offsets: &[usize],
    t: usize,
    placed: impl Fn(usize) -> bool,
    align: usize,
) -> Result<usize, ArenaError> {
    let me = lifetimes[t];
    if me.bytes == 0 {
        return Ok(0);
    }
    // Byte ranges that `t` must avoid. Their ends were checked when they were placed.
    let busy = || {
        lifetimes
            .iter()
            .enumerate()
            .filter(|&(p, l)| placed(p) && l.bytes > 0 && l.overlaps(&me))
            .map(|(p, l)| (offsets[p], offsets[p] + l.bytes))
    };
    // Best gap as (waste, offset); `top` is the lowest offset above every busy range.
    let mut best: Option<(usize, usize)> = None;
    let mut top = None;
    let starts = core::iter::once(Ok(0)).chain(busy().map(|(_, end)| align_up(end, align)));
    for start in starts {
        let start = start?;
        let end = start.checked_add(me.bytes).ok_or(ArenaError::Overflow)?;
        if busy().any(|(s, e)| s < end && start < e) {
            continue;
        }
        match busy().map(|(s, _)| s).filter(|&s| s >= end).min() {
            Some(next) => {
                let waste = next - end;
                if best.is_none_or(|b| (waste, start) < b) {
                    best = Some((waste, start));
                }
            }
            None => top = Some(top.map_or(start, |t: usize| t.min(start))),
        }
    }
    match (best, top) {
        (Some((_, start)), _) | (None, Some(start)) => Ok(start),
        // Unreachable: the start above the highest busy range always fits.
        (None, None) => Err(ArenaError::Overflow),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn life(bytes: usize, first_use: usize, last_use: usize) -> Lifetime {
        Lifetime {
            bytes,
            first_use,
            last_use,
        }
    }

    #[test]
    fn disjoint_lifetimes_share_memory() {
        let lives: [Lifetime; 4] = core::array::from_fn(|i| life(100 + i, i, i));
        let mut offsets = [1; 4];
        let total = plan_offsets(&lives, 64, &mut offsets).unwrap();
        assert_eq!(offsets, [0; 4]);
        assert_eq!(total, 128);
    }

    #[test]
    fn overlapping_lifetimes_stack() {
        let lives = [life(64, 0, 3), life(128, 1, 2), life(64, 2, 5)];
        let mut offsets = [0; 3];
        let total = plan_offsets(&lives, 64, &mut offsets).unwrap();
        assert_eq!(offsets, [128, 0, 192]);
        assert_eq!(total, 256);
    }

    #[test]
    fn picks_the_tightest_gap() {
        // Two short-lived tensors leave gaps of 40 and 30 bytes below the long-lived
        // ones; a 20-byte tensor that arrives later takes the 30-byte gap.
        let lives = [
            life(40, 0, 0),
            life(40, 0, 9),
            life(30, 0, 0),
            life(30, 0, 9),
            life(20, 5, 9),
        ];
        let mut offsets = [0; 5];
        let total = plan_offsets(&lives, 1, &mut offsets).unwrap();
        assert_eq!(offsets, [0, 40, 80, 110, 80]);
        assert_eq!(total, 140);
    }

    #[test]
    fn offsets_are_aligned() {
        let lives = [life(3, 0, 2), life(5, 0, 2), life(7, 1, 2), life(1, 2, 2)];
        let mut offsets = [0; 4];
        let total = plan_offsets(&lives, 16, &mut offsets).unwrap();
        assert!(offsets.iter().all(|o| o % 16 == 0));
        assert_eq!(total, 64);
    }

    #[test]
    fn bad_input_is_an_error() {
        let lives = [life(8, 0, 1)];
        assert_eq!(
            plan_offsets(&lives, 64, &mut []),
            Err(ArenaError::LengthMismatch {
                lifetimes: 1,
                offsets: 0
            })
        );
        for align in [0, 3, 48] {
            assert_eq!(
                plan_offsets(&lives, align, &mut [0]),
                Err(ArenaError::BadAlign { align })
            );
        }
        assert_eq!(
            plan_offsets(&[life(8, 0, 0), life(8, 3, 2)], 1, &mut [0; 2]),
            Err(ArenaError::BadLifetime {
                index: 1,
                first_use: 3,
                last_use: 2
            })
        );
        let huge = [
            life(usize::MAX / 2 + 1, 0, 1),
            life(usize::MAX / 2 + 1, 1, 2),
        ];
        assert_eq!(
            plan_offsets(&huge, 1, &mut [0; 2]),
            Err(ArenaError::Overflow)
        );
        assert_eq!(
            plan_offsets(&[life(usize::MAX, 0, 0)], 64, &mut [0]),
            Err(ArenaError::Overflow)
        );
        assert_eq!(plan_offsets(&[], 64, &mut []), Ok(0));
    }

    fn lifetimes() -> impl Strategy<Value = Vec<Lifetime>> {
        proptest::collection::vec(
            (0usize..5000, 0usize..30, 0usize..10).prop_map(|(b, f, n)| life(b, f, f + n)),
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        #[cfg_attr(miri, ignore)]
        fn live_tensors_never_share_bytes(
            lives in lifetimes(),
            align in prop::sample::select(&[1usize, 4, 16, 64][..]),
        ) {
            let mut offsets = std::vec![0; lives.len()];
            let total = plan_offsets(&lives, align, &mut offsets).unwrap();
            prop_assert_eq!(total % align, 0);
            let aligned_sum: usize = lives.iter().map(|l| l.bytes.div_ceil(align) * align).sum();
            prop_assert!(total <= aligned_sum);
            for (i, a) in lives.iter().enumerate() {
                prop_assert_eq!(offsets[i] % align, 0);
                prop_assert!(offsets[i] + a.bytes <= total);
                for (j, b) in lives.iter().enumerate().skip(i + 1) {
                    if a.bytes == 0 || b.bytes == 0 || !a.overlaps(b) {
                        continue;
                    }
                    let apart = offsets[i] + a.bytes <= offsets[j]
                        || offsets[j] + b.bytes <= offsets[i];
                    prop_assert!(apart, "tensors {} and {} overlap: {:?}", i, j, offsets);
                }
            }
        }

        #[test]
        #[cfg_attr(miri, ignore)]
        fn sequential_tensors_reuse_one_slot(
            sizes in proptest::collection::vec(1usize..999, 2..20),
        ) {
            let lives: Vec<_> = sizes.iter().enumerate().map(|(i, &b)| life(b, i, i)).collect();
            let mut offsets = std::vec![7; lives.len()];
            let total = plan_offsets(&lives, 64, &mut offsets).unwrap();
            let largest = sizes.iter().max().unwrap().div_ceil(64) * 64;
            prop_assert_eq!(total, largest);
            let aligned_sum: usize = sizes.iter().map(|b| b.div_ceil(64) * 64).sum();
            prop_assert!(total < aligned_sum);
            prop_assert!(offsets.iter().all(|&o| o == 0));
        }
    }
}
