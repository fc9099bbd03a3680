//! [`SpinPool`]: a [`Parallel`] for firmware that has several cores but no OS threads (bare
//! metal, or an RTOS whose tasks are pinned one per core).
//!
//! The firmware starts [`SpinPool::worker`] once on each extra core; the core that calls
//! [`Parallel::run`] is thread 0 and does its share. A run publishes the task and bumps a
//! generation counter; the workers, spinning on that counter, run their tasks and count
//! themselves done; the caller spins until the count is zero, so the task (borrowed for the
//! call only) is never touched after `run` returns. Nothing allocates and nothing needs an OS:
//! [`SpinPool::new`] is a `const fn`, so the pool can live in a `static`.
//!
//! ```
//! use core::sync::atomic::{AtomicUsize, Ordering};
//! use tern_core::backend::Parallel;
//! use tern_core::backend::spin_pool::SpinPool;
//!
//! static POOL: SpinPool<2> = SpinPool::new();
//!
//! // Firmware runs this on its second core at boot; a std thread stands in for it here.
//! let core1 = std::thread::spawn(|| POOL.worker(1));
//!
//! // On the first core: hand `&POOL` to the runner as its `parallel`, or call it directly.
//! let sum = AtomicUsize::new(0);
//! POOL.run(2, &|i| {
//!     sum.fetch_add(i + 1, Ordering::Relaxed);
//! });
//! assert_eq!(sum.load(Ordering::Relaxed), 3);
//!
//! POOL.shutdown();
//! core1.join().unwrap();
//! ```
//!
//! A panic in a task is the firmware's business: with `panic = "abort"`, usual for firmware,
//! its panic handler decides what becomes of the cores. Where panics unwind, the pool stays
//! sound and does not hang: a panic on the calling core waits for the workers before it
//! leaves `run`; one on a worker core ends that worker, makes that `run` panic on the caller,
//! and every later run keeps to the calling core.
//!
//! The pool needs atomic read-modify-write on `usize` (`target_has_atomic = "ptr"`).

#[cfg(test)]
mod tests;

use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use spin::mutex::SpinMutex;

use super::Parallel;

/// What a waiting core does between two looks at the pool's state; implement it, e.g., to
/// yield to an RTOS instead of spinning. It must return without being woken: the pool
/// signals nothing but its atomics.
pub use spin::relax::RelaxStrategy;
/// The default [`RelaxStrategy`]: a spin-loop hint.
pub use spin::relax::Spin;

/// Keeps a hot atomic on a cache line (pair) of its own.
#[repr(align(128))]
struct Padded<T>(T);

/// The run in flight: its task with the lifetime erased, and how many tasks.
#[derive(Clone, Copy)]
struct Job {
    task: Option<NonNull<dyn Fn(usize) + Sync>>,
    n_tasks: usize,
}

/// `N` cores (the calling one included) that run [`Parallel`] jobs by spinning on shared
/// atomics. `R` is what a waiting core does between looks ([`Spin`] by default).
///
/// One run has the workers at a time. A run made while another is in flight, whether nested
/// inside a task or from another core, runs its tasks in order on its own core: a no_std pool
/// cannot tell the two apart, and a nested run must not wait for the run that contains it.
pub struct SpinPool<const N: usize, R = Spin> {
    /// Bumped once per run; workers wait for it to move.
    generation: Padded<AtomicUsize>,
    /// Workers that have not finished the current run.
    pending: Padded<AtomicUsize>,
    /// Next unclaimed task when there is not one task per thread.
    next: Padded<AtomicUsize>,
    /// Written by the dispatching caller only while no worker reads it (see `run`).
    job: UnsafeCell<Job>,
    /// Held by the run that has the workers, and by `shutdown`.
    dispatch: SpinMutex<(), R>,
    /// Per worker index: `worker` has been called with it.
    started: [AtomicBool; N],
    /// Fixed at construction: a split computed by several threads must see the same speeds.
    speeds: [f32; N],
    /// Set by `shutdown`; idle workers return when they see it.
    shutdown: AtomicBool,
    /// A worker unwound out of a task and is gone.
    lost: AtomicBool,
}

// SAFETY: `job` is the only field that is not Sync. The dispatching caller writes it only while
// it holds `dispatch` and every worker has finished the previous run (that run saw `pending`
// reach 0 with Acquire before releasing `dispatch`), and publishes it with the Release bump of
// `generation`; workers read it only after seeing that bump (Acquire) and before they decrement
// `pending`. The task behind the pointer is `Sync` and lives until `run` returns, which is
// after `pending` reaches 0.
unsafe impl<const N: usize, R> Sync for SpinPool<N, R> {}

impl<const N: usize, R: RelaxStrategy> SpinPool<N, R> {
    /// A pool of `N` threads of equal speed. `N` counts the calling core, so `N - 1` workers
    /// must be started.
    pub const fn new() -> Self {
        Self::with_speeds([1.0; N])
    }

    /// A pool whose thread `i` has relative speed `speeds[i]` (positive, finite; compared
    /// between threads only): on a big.LITTLE chip, work splits in proportion. Panics (at
    /// compile time in a `static`) on a speed that is not.
    pub const fn with_speeds(speeds: [f32; N]) -> Self {
        const { assert!(N >= 1, "a pool has at least the calling core") };
        let mut i = 0;
        while i < N {
            assert!(
                speeds[i] > 0.0 && speeds[i].is_finite(),
                "every speed must be positive and finite"
            );
            i += 1;
        }
        SpinPool {
            generation: Padded(AtomicUsize::new(0)),
            pending: Padded(AtomicUsize::new(0)),
            next: Padded(AtomicUsize::new(0)),
            job: UnsafeCell::new(Job {
                task: None,
                n_tasks: 0,
            }),
            dispatch: SpinMutex::new(()),
            started: [const { AtomicBool::new(false) }; N],
            speeds,
            shutdown: AtomicBool::new(false),
            lost: AtomicBool::new(false),
        }
    }

    /// The loop of worker `index` (`1..N`; the calling core is 0): the firmware calls it once
    /// on the core that is to be thread `index`. It returns only after [`SpinPool::shutdown`].
    ///
    /// Runs wait until every worker has started, so a run made before then blocks until the
    /// last one is up. Panics if `index` is out of range or was already started: a second loop
    /// under one index would break the count of finished workers that keeps the task alive.
    pub fn worker(&self, index: usize) {
        assert!(
            (1..N).contains(&index),
            "worker index {index} is not in 1..{N}"
        );
        assert!(
            !self.started[index].swap(true, Ordering::Relaxed),
            "worker {index} was already started"
        );
        // Only runs bump the generation, and a run finishes only once every worker has taken
        // part, so a worker that has taken part in none has seen generation 0.
        let mut seen = 0;
        loop {
            let generation = self.generation.0.load(Ordering::Acquire);
            if generation == seen {
                // `shutdown` is set under `dispatch` with no run in flight, after every
                // earlier run has finished, which this worker took part in: nothing is missed.
                if self.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                R::relax();
                continue;
            }
            seen = generation;
            // SAFETY: the generation moved (Acquire), so the caller has written this run's job
            // and will not write it again until this worker decrements `pending`.
            let job = unsafe { *self.job.get() };
            let mut finished = Finished {
                pool: self,
                returned: false,
            };
            self.work(job, index);
            finished.returned = true;
        }
    }

    /// Stops the workers: each returns from [`SpinPool::worker`] once idle, and later runs keep
    /// to the calling core. Waits for a run in flight to finish, so never call it from a task.
    pub fn shutdown(&self) {
        let _dispatch = self.dispatch.lock();
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// Runs this thread's part of `job`: task `thread` when there is a task per thread,
    /// otherwise tasks claimed one by one until none are left.
    fn work(&self, job: Job, thread: usize) {
        let Some(task) = job.task else { return };
        // SAFETY: the task lives until `run` returns, which waits for every thread's `work`;
        // it is `Sync`, so a shared borrow may be used from any core.
        let task = unsafe { task.as_ref() };
        if job.n_tasks == N {
            task(thread);
            return;
        }
        loop {
            let i = self.next.0.fetch_add(1, Ordering::Relaxed);
            if i >= job.n_tasks {
                return;
            }
            task(i);
        }
    }
}

impl<const N: usize, R: RelaxStrategy> Default for SpinPool<N, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, R: RelaxStrategy> Parallel for SpinPool<N, R> {
    fn n_threads(&self) -> usize {
        N
    }

    /// Runs on the calling core alone when there is one task or one thread, when another run
    /// has the workers (see [`SpinPool`]), and after shutdown or a lost worker.
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if n_tasks <= 1 || N == 1 {
            (0..n_tasks).for_each(task);
            return;
        }
        let Some(dispatch) = self.dispatch.try_lock() else {
            (0..n_tasks).for_each(task);
            return;
        };
        if self.shutdown.load(Ordering::Relaxed) || self.lost.load(Ordering::Relaxed) {
            drop(dispatch);
            (0..n_tasks).for_each(task);
            return;
        }
        // SAFETY: only the lifetime is erased (same layout). The pointer is dereferenced only
        // by this run's `work`, which every thread finishes before `run` returns or unwinds
        // (`WaitForWorkers`), and it is cleared before then.
        let task = unsafe {
            core::mem::transmute::<NonNull<dyn Fn(usize) + Sync + '_>, NonNull<dyn Fn(usize) + Sync>>(
                NonNull::from(task),
            )
        };
        let job = Job {
            task: Some(task),
            n_tasks,
        };
        // SAFETY: we hold `dispatch`, and the run before saw every worker finish (`pending`
        // reached 0 with Acquire) before releasing it; no worker reads `job` until the
        // generation moves.
        unsafe { *self.job.get() = job };
        self.next.0.store(0, Ordering::Relaxed);
        self.pending.0.store(N - 1, Ordering::Relaxed);
        self.generation.0.fetch_add(1, Ordering::Release);

        let workers = WaitForWorkers(self);
        self.work(job, 0);
        drop(workers);
        drop(dispatch);
        assert!(
            !self.lost.load(Ordering::Relaxed),
            "a task panicked on a worker core; later runs keep to the calling core"
        );
    }

    fn speed(&self, thread: usize) -> f32 {
        self.speeds.get(thread).copied().unwrap_or(1.0)
    }
}

/// Waits, when dropped, until every worker has finished the run, and then forgets its task:
/// a drop guard, so that a task panicking on the calling core cannot end the borrow of the
/// task while workers still use it.
struct WaitForWorkers<'a, const N: usize, R: RelaxStrategy>(&'a SpinPool<N, R>);

impl<const N: usize, R: RelaxStrategy> Drop for WaitForWorkers<'_, N, R> {
    fn drop(&mut self) {
        let pool = self.0;
        while pool.pending.0.load(Ordering::Acquire) != 0 {
            R::relax();
        }
        // SAFETY: every worker has finished this run (`pending` reached 0 with Acquire), and
        // none reads `job` again before the next run, which needs `dispatch`, still held.
        unsafe { (*pool.job.get()).task = None };
    }
}

/// Counts a worker finished with the run when dropped, also when a task unwinds out of it;
/// then the pool is marked as having lost that worker.
struct Finished<'a, const N: usize, R> {
    pool: &'a SpinPool<N, R>,
    returned: bool,
}

impl<const N: usize, R> Drop for Finished<'_, N, R> {
    fn drop(&mut self) {
        if !self.returned {
            self.pool.lost.store(true, Ordering::Relaxed);
        }
        self.pool.pending.0.fetch_sub(1, Ordering::Release);
    }
}
