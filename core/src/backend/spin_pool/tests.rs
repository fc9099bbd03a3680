//! The pool with std threads standing in for the firmware's cores.

extern crate std;

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::string::String;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, ThreadId};
use std::time::Duration;
use std::vec::Vec;

use super::{RelaxStrategy, SpinPool};
use crate::backend::Parallel;

/// Gives the time slice away between looks: the test machine may have fewer CPUs than a pool
/// has threads, and a spinning thread would then keep the one it waits for off the CPU.
struct Yield;

impl RelaxStrategy for Yield {
    fn relax() {
        thread::yield_now();
    }
}

type Pool<const N: usize> = SpinPool<N, Yield>;

/// Many runs normally, few under Miri, which interprets every step.
fn runs(normal: usize) -> usize {
    if cfg!(miri) { normal / 100 } else { normal }
}

/// Shuts the pool down when dropped, so that a failing check cannot leave workers spinning
/// and the test hanging on their join.
struct ShutDown<'a, const N: usize, R: RelaxStrategy>(&'a SpinPool<N, R>);

impl<const N: usize, R: RelaxStrategy> Drop for ShutDown<'_, N, R> {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// Starts `pool`'s workers, each on a std thread of its own as the firmware would on a core,
/// runs `body` with the thread of each pool thread (0: this one), then shuts the pool down
/// and joins the workers, which must have returned.
fn with_cores<const N: usize, R: RelaxStrategy>(
    pool: &SpinPool<N, R>,
    body: impl FnOnce(&[ThreadId]),
) {
    thread::scope(|s| {
        let workers: Vec<_> = (1..N).map(|i| s.spawn(move || pool.worker(i))).collect();
        let mut cores = Vec::from([thread::current().id()]);
        cores.extend(workers.iter().map(|w| w.thread().id()));
        let stop = ShutDown(pool);
        body(&cores);
        drop(stop);
        for worker in workers {
            worker.join().expect("the worker returns after shutdown");
        }
    });
}

/// Asserts that `run(n_tasks)` calls every task exactly once.
fn assert_each_task_once(pool: &dyn Parallel, n_tasks: usize) {
    let counts: Vec<AtomicUsize> = (0..n_tasks).map(|_| AtomicUsize::new(0)).collect();
    pool.run(n_tasks, &|i| {
        counts[i].fetch_add(1, Ordering::Relaxed);
    });
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "task {i} of {n_tasks}");
    }
}

fn every_task_once_on<const N: usize>() {
    let pool = Pool::<N>::new();
    assert_eq!(pool.n_threads(), N);
    with_cores(&pool, |_| {
        for n_tasks in [0, 1, 2, N, N + 1, 7, 64, 1000] {
            assert_each_task_once(&pool, n_tasks);
        }
    });
}

#[test]
fn every_task_runs_exactly_once() {
    every_task_once_on::<1>();
    every_task_once_on::<2>();
    every_task_once_on::<3>();
    every_task_once_on::<4>();
}

#[test]
fn a_task_per_thread_runs_task_i_on_the_core_of_worker_i() {
    let pool = Pool::<4>::new();
    with_cores(&pool, |cores| {
        for _ in 0..runs(50) {
            let ran_on: Vec<Mutex<Option<ThreadId>>> = (0..4).map(|_| Mutex::new(None)).collect();
            pool.run(4, &|i| {
                *ran_on[i].lock().unwrap() = Some(thread::current().id());
            });
            for (i, (ran_on, core)) in ran_on.into_iter().zip(cores).enumerate() {
                assert_eq!(ran_on.into_inner().unwrap(), Some(*core), "task {i}");
            }
        }
    });
}

/// Plain, non-atomic cells: only the pool's own synchronisation orders the caller's writes
/// before a run's tasks and the tasks' writes before the caller's reads (Miri checks that).
struct Cells(Vec<UnsafeCell<usize>>);

// SAFETY: the tests touch cell `i` only from task `i` of a run, or from the caller between
// runs.
unsafe impl Sync for Cells {}

impl Cells {
    fn new(n: usize) -> Cells {
        Cells((0..n).map(|_| UnsafeCell::new(0)).collect())
    }

    /// # Safety
    /// No other thread may access cell `i` during the call.
    unsafe fn get(&self, i: usize) -> usize {
        // SAFETY: exclusive for the call, by the caller's contract.
        unsafe { *self.0[i].get() }
    }

    /// # Safety
    /// No other thread may access cell `i` during the call.
    unsafe fn set(&self, i: usize, value: usize) {
        // SAFETY: exclusive for the call, by the caller's contract.
        unsafe { *self.0[i].get() = value }
    }
}

fn many_runs_on<const N: usize>() {
    const MOST_TASKS: usize = 9;
    let pool = Pool::<N>::new();
    let (input, sums) = (Cells::new(MOST_TASKS), Cells::new(MOST_TASKS));
    let mut want = [0usize; MOST_TASKS];
    with_cores(&pool, |_| {
        for r in 0..runs(10_000) {
            let n_tasks = if r % 2 == 0 { N } else { 1 + r % MOST_TASKS };
            for (i, want) in want.iter_mut().enumerate().take(n_tasks) {
                // SAFETY: between runs, only this thread touches the cells.
                unsafe { input.set(i, r + i) };
                *want += r + i;
            }
            // A task run twice would add its input twice, or race with itself.
            // SAFETY: task `i` alone touches cell `i` during the run.
            pool.run(n_tasks, &|i| unsafe {
                sums.set(i, sums.get(i) + input.get(i))
            });
            for (i, want) in want.iter().enumerate() {
                // SAFETY: the run has returned; only this thread touches the cells.
                let sum = unsafe { sums.get(i) };
                assert_eq!(sum, *want, "run {r}, task {i} of {n_tasks}");
            }
        }
    });
}

#[test]
fn thousands_of_runs_in_a_row_see_the_callers_writes_and_return_theirs() {
    many_runs_on::<2>();
    many_runs_on::<3>();
    many_runs_on::<4>();
}

#[test]
fn one_thread_needs_no_worker() {
    let pool = Pool::<1>::new();
    assert_eq!(pool.n_threads(), 1);
    let caller = thread::current().id();
    pool.run(5, &|_| assert_eq!(thread::current().id(), caller));
    assert_each_task_once(&pool, 5);
}

#[test]
fn a_run_before_the_workers_start_waits_for_them() {
    let pool = &Pool::<3>::new();
    thread::scope(|s| {
        let caller = s.spawn(|| {
            assert_each_task_once(pool, 3);
            assert_each_task_once(pool, 20);
        });
        thread::sleep(Duration::from_millis(20));
        let stop = ShutDown(pool);
        let workers: Vec<_> = (1..3).map(|i| s.spawn(move || pool.worker(i))).collect();
        caller
            .join()
            .expect("the runs complete once the workers are up");
        drop(stop);
        for worker in workers {
            worker.join().unwrap();
        }
    });
}

#[test]
fn shutdown_returns_the_workers_and_later_runs_keep_to_the_caller() {
    let pool = Pool::<3>::new();
    with_cores(&pool, |_| assert_each_task_once(&pool, 3));
    let caller = thread::current().id();
    pool.run(3, &|_| assert_eq!(thread::current().id(), caller));
    assert_each_task_once(&pool, 10);

    // Shut down before its workers start: they return at once.
    let idle = Pool::<3>::new();
    with_cores(&idle, |_| idle.shutdown());
}

#[test]
fn nested_runs_complete() {
    let pool = Pool::<3>::new();
    let total = AtomicUsize::new(0);
    with_cores(&pool, |_| {
        pool.run(3, &|_| {
            pool.run(4, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
        });
    });
    assert_eq!(total.load(Ordering::Relaxed), 12);
}

#[test]
fn concurrent_callers_all_complete() {
    let pool = Pool::<3>::new();
    let total = AtomicUsize::new(0);
    let per_caller = runs(200);
    with_cores(&pool, |_| {
        thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..per_caller {
                        pool.run(5, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
    });
    assert_eq!(total.load(Ordering::Relaxed), 3 * per_caller * 5);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| String::from(*s)))
        .unwrap_or_default()
}

#[test]
fn a_panic_on_the_calling_core_waits_for_the_workers_and_the_pool_goes_on() {
    let pool = Pool::<3>::new();
    with_cores(&pool, |_| {
        let done: Vec<AtomicBool> = (0..3).map(|_| AtomicBool::new(false)).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(3, &|i| {
                if i == 0 {
                    panic!("task 0 fails");
                }
                thread::sleep(Duration::from_millis(10));
                done[i].store(true, Ordering::Relaxed);
            })
        }));
        let payload = result.expect_err("the panic propagates");
        assert_eq!(panic_message(&*payload), "task 0 fails");
        assert!(done[1].load(Ordering::Relaxed) && done[2].load(Ordering::Relaxed));
        assert_each_task_once(&pool, 3);
        assert_each_task_once(&pool, 100);
    });
}

#[test]
fn a_panic_on_a_worker_core_reaches_the_caller_and_later_runs_keep_to_it() {
    let pool = &Pool::<3>::new();
    thread::scope(|s| {
        let stop = ShutDown(pool);
        let workers: Vec<_> = (1..3).map(|i| s.spawn(move || pool.worker(i))).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(3, &|i| {
                if i == 2 {
                    panic!("task 2 fails");
                }
            })
        }));
        let payload = result.expect_err("the run panics");
        assert!(panic_message(&*payload).contains("worker core"));
        let caller = thread::current().id();
        pool.run(3, &|_| assert_eq!(thread::current().id(), caller));
        assert_each_task_once(pool, 10);
        drop(stop);
        let [first, second] = <[_; 2]>::try_from(workers).ok().unwrap();
        first.join().expect("worker 1 returns after shutdown");
        second.join().expect_err("worker 2 unwound out of its task");
    });
}

#[test]
fn speeds_are_as_given() {
    let pool = SpinPool::<3>::with_speeds([1.0, 1.0, 0.25]);
    assert_eq!([0, 1, 2, 3].map(|t| pool.speed(t)), [1.0, 1.0, 0.25, 1.0]);
    let even = SpinPool::<2>::new();
    assert_eq!([0, 1].map(|t| even.speed(t)), [1.0, 1.0]);
}

#[test]
#[should_panic(expected = "every speed must be positive and finite")]
fn a_zero_speed_is_refused() {
    let _ = SpinPool::<2>::with_speeds([1.0, 0.0]);
}

#[test]
#[should_panic(expected = "worker index 0 is not in 1..2")]
fn the_calling_core_is_no_worker() {
    Pool::<2>::new().worker(0);
}

#[test]
#[should_panic(expected = "worker index 2 is not in 1..2")]
fn a_worker_index_past_the_pool_is_refused() {
    Pool::<2>::new().worker(2);
}

#[test]
fn a_worker_index_starts_once() {
    let pool = Pool::<2>::new();
    pool.shutdown();
    pool.worker(1);
    let again = catch_unwind(AssertUnwindSafe(|| pool.worker(1)));
    assert_eq!(
        panic_message(&*again.expect_err("refused")),
        "worker 1 was already started"
    );
}

/// The CPU driver splits a matmul's rows by thread speed over the pool's real threads; every
/// output must be bit for bit what one thread computes.
#[cfg(feature = "alloc")]
#[test]
fn cpu_matmul_through_the_pool_matches_sequential_bit_for_bit() {
    use crate::DType;
    use crate::backend::{Backend, Sequential};
    use crate::cpu::{Cpu, ScalarKernels};
    use crate::model::{WeightRole, WeightView};
    use crate::quant::quantize;
    use crate::sample::Xoshiro256;

    let dtypes: &[DType] = if cfg!(miri) {
        &[DType::Q8_0, DType::F16]
    } else {
        &DType::ALL
    };
    let pool = SpinPool::<3>::with_speeds([1.0, 1.0, 0.5]);
    let cpu = Cpu::new(ScalarKernels);
    let mut rng = Xoshiro256::seed_from_u64(3);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f64() as f32 * 2.0 - 1.0).collect() };
    with_cores(&pool, |_| {
        for &dtype in dtypes {
            let (rows, cols, n) = (37, 2 * dtype.block_len().max(32), 3);
            let mut bytes = std::vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
            quantize(dtype, &random(rows * cols), &mut bytes).unwrap();
            let view = WeightView {
                name: "w",
                dtype,
                rows,
                cols,
                data: &bytes,
            };
            let w = cpu.prepare(view, WeightRole::Matrix).unwrap();
            let x = random(n * cols);
            let mut scratch = std::vec![0f32; n * (cols + 16)];
            let mut want = std::vec![0f32; n * rows];
            cpu.matmul(&w, &x, &mut want, &mut scratch, &Sequential);
            let mut got = std::vec![0f32; n * rows];
            cpu.matmul(&w, &x, &mut got, &mut scratch, &pool);
            let same = got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{dtype}: {got:?} vs {want:?}");
        }
    });
}
