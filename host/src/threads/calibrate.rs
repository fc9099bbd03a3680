//! Measures how fast each thread of a pool computes, once, so that work can be split in
//! proportion (big and little cores). Equal cores must come out exactly equal, so speeds within
//! [`EVEN_WITHIN`] of each other snap to 1.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tern_core::backend::Parallel;

use super::ThreadPool;

/// Rounds of measurement; a thread's best round counts, so a round lost to preemption does not.
const ROUNDS: usize = 3;
/// Length of one round on each thread.
const ROUND: Duration = Duration::from_micros(500);
/// Speeds whose slowest is within this fraction of the fastest are taken as equal.
const EVEN_WITHIN: f32 = 0.15;

/// Relative speed of each thread of `pool`, the fastest 1.
pub(super) fn speeds(pool: &ThreadPool) -> Box<[f32]> {
    let n = pool.n_threads();
    if n == 1 {
        return [1.0].into();
    }
    let best: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    for _ in 0..ROUNDS {
        pool.run(n, &|thread| {
            best[thread].fetch_max(rate(ROUND), Ordering::Relaxed);
        });
    }
    normalize(best.iter().map(|r| r.load(Ordering::Relaxed) as f32))
}

/// Scales `rates` so the fastest is 1; all 1 when they are within [`EVEN_WITHIN`].
fn normalize(rates: impl Iterator<Item = f32>) -> Box<[f32]> {
    let rates: Vec<f32> = rates.map(|r| r.max(1.0)).collect();
    let max = rates.iter().copied().fold(1.0, f32::max);
    let min = rates.iter().copied().fold(f32::INFINITY, f32::min);
    if min >= (1.0 - EVEN_WITHIN) * max {
        return vec![1.0; rates.len()].into();
    }
    rates.iter().map(|r| r / max).collect()
}

/// Blocks of mixed integer and floating-point work done per second, measured for `time`.
fn rate(time: Duration) -> u64 {
    let start = Instant::now();
    let mut blocks = 0u64;
    let (mut x, mut acc) = (0x9e37_79b9_7f4a_7c15_u64, 1.0f32);
    loop {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            acc = acc * 0.999_9 + (x & 0xff) as f32 * 1e-6;
        }
        black_box((x, acc));
        blocks += 1;
        let elapsed = start.elapsed();
        if elapsed >= time {
            return (blocks as u128 * 1_000_000_000 / elapsed.as_nanos().max(1)) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_equal_rates_snap_to_one() {
        assert_eq!(&*normalize([100.0, 90.0, 95.0].into_iter()), &[1.0; 3]);
    }

    #[test]
    fn unequal_rates_scale_to_the_fastest() {
        assert_eq!(&*normalize([50.0, 100.0].into_iter()), &[0.5, 1.0]);
    }
}
