//! Splitting work across threads in proportion to their speed (the paper's big.LITTLE load
//! balancing), and the one unsafe tool the split needs: disjoint writes into one slice.

use core::marker::PhantomData;
use core::ops::Range;

use crate::backend::Parallel;

/// The part of `0..total` that thread `thread` of `par` takes: contiguous shares whose sizes
/// follow the threads' [`Parallel::speed`]s (an even split for equal speeds).
pub fn share(total: usize, par: &dyn Parallel, thread: usize) -> Range<usize> {
    let n = par.n_threads().max(1);
    let speed = |i: usize| {
        let s = par.speed(i);
        if s.is_finite() && s > 0.0 {
            s as f64
        } else {
            1.0
        }
    };
    let sum: f64 = (0..n).map(speed).sum();
    let before: f64 = (0..thread.min(n)).map(speed).sum();
    let at = |x: f64| libm::round((total as f64) * x / sum) as usize;
    let start = at(before).min(total);
    let end = if thread + 1 >= n {
        total
    } else {
        at(before + speed(thread)).min(total)
    };
    start..end.max(start)
}

/// Like [`share`], for items of unequal cost: `cost(i)` is the work of item `i`, and each
/// thread's contiguous share carries its proportion of the total cost.
pub fn share_by_cost(
    total: usize,
    par: &dyn Parallel,
    thread: usize,
    cost: impl Fn(usize) -> u64,
) -> Range<usize> {
    let n = par.n_threads().max(1);
    if n == 1 {
        return 0..total;
    }
    let all: u64 = (0..total).map(&cost).sum();
    // Cost boundaries of this thread, from the even item split scaled to cost.
    let item_share = share(1 << 20, par, thread);
    let from = (all as u128 * item_share.start as u128) >> 20;
    let to = (all as u128 * item_share.end as u128) >> 20;
    let (mut start, mut end, mut acc) = (total, total, 0u128);
    for i in 0..total {
        if start == total && acc >= from {
            start = i;
        }
        if acc >= to {
            end = i;
            break;
        }
        acc += cost(i) as u128;
    }
    if thread + 1 >= n {
        end = total;
    }
    start.min(end)..end
}

/// A slice that several threads write through, each to ranges no other thread touches.
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `SharedMut` is only a `&mut [T]` split at run time; sending it to other threads
// is sound as long as each range is written by one thread at a time, which `range`'s
// contract requires of its callers.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    /// Shares `slice`, which stays mutably borrowed for as long as the `SharedMut` lives.
    pub fn new(slice: &'a mut [T]) -> Self {
        SharedMut {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements `range` of the slice.
    ///
    /// # Safety
    /// While the returned slice lives, no other call may return an overlapping range.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, range: Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (checked above) of the slice borrowed for 'a; exclusive by the
        // caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Speeds(&'static [f32]);

    impl Parallel for Speeds {
        fn n_threads(&self) -> usize {
            self.0.len()
        }
        fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
            (0..n_tasks).for_each(task);
        }
        fn speed(&self, thread: usize) -> f32 {
            self.0[thread]
        }
    }

    fn shares(par: &dyn Parallel, total: usize) -> alloc::vec::Vec<Range<usize>> {
        (0..par.n_threads()).map(|i| share(total, par, i)).collect()
    }

    #[test]
    fn equal_threads_split_evenly_and_cover_everything() {
        let s = shares(&Speeds(&[1.0, 1.0]), 101);
        assert_eq!(s, [0..51, 51..101]);
        let s = shares(&Speeds(&[1.0; 4]), 2);
        assert_eq!(s.iter().map(|r| r.len()).sum::<usize>(), 2);
    }

    #[test]
    fn a_faster_thread_gets_more() {
        let s = shares(&Speeds(&[3.0, 1.0]), 100);
        assert_eq!(s, [0..75, 75..100]);
        // Nonsense speeds count as 1.
        let s = shares(&Speeds(&[f32::NAN, 1.0]), 10);
        assert_eq!(s, [0..5, 5..10]);
    }

    #[test]
    fn cost_shares_balance_a_triangle() {
        let par = Speeds(&[1.0, 1.0]);
        let cost = |i: usize| i as u64 + 1;
        let a = share_by_cost(100, &par, 0, cost);
        let b = share_by_cost(100, &par, 1, cost);
        assert_eq!(a.end, b.start);
        assert_eq!((a.start, b.end), (0, 100));
        let ca: u64 = a.clone().map(cost).sum();
        let cb: u64 = b.map(cost).sum();
        assert!(ca.abs_diff(cb) <= 100, "{ca} vs {cb}");
    }

    proptest::proptest! {
        #[test]
        fn shares_tile_the_range(total in 0usize..5000, n in 1usize..9) {
            static SPEEDS: [f32; 8] = [1.0, 2.5, 0.7, 1.0, 3.0, 1.1, 0.4, 2.0];
            let par = Speeds(&SPEEDS[..n]);
            let (mut next, mut next_by_cost) = (0, 0);
            for i in 0..n {
                let r = share(total, &par, i);
                proptest::prop_assert_eq!(r.start, next);
                next = r.end;
                let c = share_by_cost(total, &par, i, |j| (j % 7) as u64 + 1);
                proptest::prop_assert_eq!(c.start, next_by_cost);
                next_by_cost = c.end;
            }
            proptest::prop_assert_eq!(next, total);
            proptest::prop_assert_eq!(next_by_cost, total);
        }
    }
}
