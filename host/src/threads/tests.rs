use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};

use tern_core::backend::Parallel;

use super::ThreadPool;

fn pool(n: usize) -> ThreadPool {
    ThreadPool::new(n).expect("start pool")
}

/// Asserts that `run(n_tasks)` calls every task exactly once.
fn assert_each_task_once(pool: &ThreadPool, n_tasks: usize) {
    let counts: Vec<AtomicUsize> = (0..n_tasks).map(|_| AtomicUsize::new(0)).collect();
    pool.run(n_tasks, &|i| {
        counts[i].fetch_add(1, Ordering::Relaxed);
    });
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "task {i} of {n_tasks}");
    }
}

#[test]
fn every_task_runs_exactly_once() {
    for n_threads in [1, 2, 3, 4] {
        let pool = pool(n_threads);
        assert_eq!(pool.n_threads(), n_threads);
        for n_tasks in [0, 1, 2, n_threads, n_threads + 1, 7, 64, 1000] {
            assert_each_task_once(&pool, n_tasks);
        }
    }
}

#[test]
fn zero_threads_means_one() {
    let pool = pool(0);
    assert_eq!(pool.n_threads(), 1);
    assert_each_task_once(&pool, 5);
}

#[test]
fn a_task_per_thread_runs_task_i_on_thread_i() {
    let pool = pool(4);
    let caller = thread::current().id();
    let mut first: Option<Vec<ThreadId>> = None;
    for _ in 0..50 {
        let ids: Vec<Mutex<Option<ThreadId>>> = (0..4).map(|_| Mutex::new(None)).collect();
        pool.run(4, &|i| {
            *ids[i].lock().unwrap() = Some(thread::current().id())
        });
        let ids: Vec<ThreadId> = ids
            .into_iter()
            .map(|m| m.into_inner().unwrap().unwrap())
            .collect();
        assert_eq!(ids[0], caller, "task 0 runs on the caller");
        let mut distinct = ids.clone();
        distinct.sort_by_key(|id| format!("{id:?}"));
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "one task per thread: {ids:?}");
        match &first {
            None => first = Some(ids),
            Some(first) => assert_eq!(first, &ids, "task i always lands on thread i"),
        }
    }
}

#[test]
fn speeds_are_positive_and_the_fastest_is_one() {
    let pool = pool(3);
    let speeds: Vec<f32> = (0..3).map(|t| pool.speed(t)).collect();
    assert!(speeds.iter().all(|&s| s > 0.0 && s <= 1.0), "{speeds:?}");
    assert!(speeds.contains(&1.0), "{speeds:?}");
}

#[test]
fn a_panicking_task_reaches_the_caller_and_the_pool_goes_on() {
    let pool = pool(3);
    for (n_tasks, bad) in [(3, 0), (3, 2), (10, 7), (10, 0)] {
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(n_tasks, &|i| {
                if i == bad {
                    panic!("task {i} fails");
                }
            })
        }));
        let payload = result.expect_err("the panic propagates");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(message, format!("task {bad} fails"));
        assert_each_task_once(&pool, 100);
    }
}

#[test]
fn nested_runs_complete() {
    let pool = pool(2);
    let total = AtomicUsize::new(0);
    pool.run(2, &|_| {
        pool.run(3, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        })
    });
    assert_eq!(total.load(Ordering::Relaxed), 6);
}

#[test]
fn concurrent_callers_take_turns() {
    let pool = pool(2);
    let total = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..200 {
                    pool.run(5, &|_| {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    assert_eq!(total.load(Ordering::Relaxed), 3 * 200 * 5);
}

#[test]
fn ten_thousand_runs_in_a_row() {
    for n_threads in [2, 3, 4] {
        let pool = pool(n_threads);
        let total = AtomicUsize::new(0);
        for r in 0..10_000 {
            let n_tasks = if r % 2 == 0 { n_threads } else { 1 + r % 5 };
            pool.run(n_tasks, &|i| {
                total.fetch_add(i + 1, Ordering::Relaxed);
            });
        }
        let expected: usize = (0..10_000)
            .map(|r| {
                let n = if r % 2 == 0 { n_threads } else { 1 + r % 5 };
                n * (n + 1) / 2
            })
            .sum();
        assert_eq!(
            total.load(Ordering::Relaxed),
            expected,
            "{n_threads} threads"
        );
    }
}

#[test]
fn runs_after_workers_have_parked_still_complete() {
    let pool = pool(2);
    for _ in 0..5 {
        thread::sleep(super::SPIN_BEFORE_PARK * 4);
        assert_each_task_once(&pool, 2);
        assert_each_task_once(&pool, 9);
    }
}

/// `cargo test --release -p tern --lib dispatch_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn dispatch_cost() {
    use std::time::Instant;
    for n_threads in [2, 4] {
        let pool = pool(n_threads);
        for n_tasks in [n_threads, 64] {
            let runs = 200_000;
            for _ in 0..1000 {
                pool.run(n_tasks, &|_| {});
            }
            let start = Instant::now();
            for _ in 0..runs {
                pool.run(n_tasks, &|_| {});
            }
            let ns = start.elapsed().as_nanos() as f64 / runs as f64;
            println!("{n_threads} threads, {n_tasks} empty tasks: {ns:.0} ns per run");
        }
    }
}
