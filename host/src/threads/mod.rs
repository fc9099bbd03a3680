//! A pool of worker threads behind core's [`Parallel`] trait.
//!
//! A decode step is well under a millisecond and calls [`Parallel::run`] dozens of times, so
//! the cost of handing out a job matters more than anything else here. Idle workers spin for a
//! short while watching a job counter before they park, which keeps the dispatch of
//! back-to-back jobs at the price of a cache-line transfer; a dispatch allocates nothing.

mod calibrate;
mod topology;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tern_core::backend::Parallel;

pub use topology::physical_cores;

/// Most threads a pool may be asked for; more is a typo, not a machine.
pub const MAX_THREADS: usize = 512;

/// How long an idle worker spins for the next job before it parks.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

/// Spins of the caller waiting for workers before it starts yielding its time slice; also how
/// often a spinning worker yields.
const SPINS_BEFORE_YIELD: u32 = 1 << 10;

/// A fixed set of threads that run [`Parallel`] jobs. The calling thread is thread 0 and does
/// its share; threads `1..n` are workers, optionally pinned to a CPU each.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Relative speed per thread, measured once at creation.
    speeds: Box<[f32]>,
    /// One job at a time: concurrent callers take turns.
    dispatch: Mutex<()>,
}

/// Keeps a hot atomic on a cache line (pair) of its own.
#[repr(align(128))]
struct Padded<T>(T);

/// The job being run: the task with its lifetime erased, and how many tasks.
#[derive(Clone, Copy)]
struct Job {
    task: Option<NonNull<dyn Fn(usize) + Sync>>,
    n_tasks: usize,
}

struct Shared {
    /// Bumped once per job and once at shutdown; workers wait for it to move.
    epoch: Padded<AtomicUsize>,
    /// Workers that have not finished the current job.
    pending: Padded<AtomicUsize>,
    /// Next unclaimed task when tasks are handed out dynamically.
    next: Padded<AtomicUsize>,
    /// Written only by the dispatching caller while no worker reads it (see `run`).
    job: UnsafeCell<Job>,
    /// Per worker: parked, or about to park, and so needs an unpark to see a job.
    sleeping: Box<[Padded<AtomicBool>]>,
    n_threads: usize,
    /// Whether waiting threads spin at all: not when there are more threads than CPUs, where a
    /// spinning thread only keeps the one it waits for off the CPU.
    spin: bool,
    panicked: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    shutdown: AtomicBool,
}

// SAFETY: `job` is the only field that is not Sync. The dispatching caller writes it only
// while it holds `dispatch` and every worker has finished the previous job (it saw `pending`
// reach 0 with Acquire), and publishes it with the SeqCst bump of `epoch`; workers read it only
// after seeing that bump and before they decrement `pending`. The task behind the pointer is
// `Sync` and outlives the job (`run` returns only after `pending` reaches 0).
unsafe impl Sync for Shared {}
// SAFETY: as above; the pointer in `job` is only a borrow of a `Sync` task.
unsafe impl Send for Shared {}

thread_local! {
    /// The pool whose job this thread is running (its `Shared` address), or 0.
    static CURRENT_POOL: Cell<usize> = const { Cell::new(0) };
}

impl ThreadPool {
    /// Starts a pool of `n_threads` threads (at least 1), the caller's included, and measures
    /// their speeds. Workers float over the CPUs: right for a library that shares its
    /// machine (several pools pinned alike would pile onto the same cores).
    pub fn new(n_threads: usize) -> io::Result<ThreadPool> {
        ThreadPool::start(n_threads, false)
    }

    /// As [`ThreadPool::new`], with thread `i` pinned to its own physical core where the OS
    /// allows, the calling thread (thread 0) included: for a process that owns the machine
    /// and calls the pool from the thread that made it (`tern run`, `tern bench`).
    pub fn pinned(n_threads: usize) -> io::Result<ThreadPool> {
        ThreadPool::start(n_threads, true)
    }

    fn start(n_threads: usize, pin: bool) -> io::Result<ThreadPool> {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            epoch: Padded(AtomicUsize::new(0)),
            pending: Padded(AtomicUsize::new(0)),
            next: Padded(AtomicUsize::new(0)),
            job: UnsafeCell::new(Job {
                task: None,
                n_tasks: 0,
            }),
            sleeping: (1..n_threads)
                .map(|_| Padded(AtomicBool::new(false)))
                .collect(),
            n_threads,
            spin: n_threads <= thread::available_parallelism().map_or(1, |n| n.get()),
            panicked: AtomicBool::new(false),
            panic: Mutex::new(None),
            shutdown: AtomicBool::new(false),
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::with_capacity(n_threads - 1),
            speeds: vec![1.0; n_threads].into(),
            dispatch: Mutex::new(()),
        };
        let cpus = topology::cpu_order().filter(|cpus| pin && cpus.len() >= n_threads);
        if let Some(cpus) = &cpus {
            // The caller is thread 0: left floating, the scheduler can put it on a worker's
            // core, and then the two take turns instead of running side by side.
            topology::pin_current_thread(cpus[0]);
        }
        for index in 1..n_threads {
            let shared = Arc::clone(&pool.shared);
            let cpu = cpus.as_ref().map(|cpus| cpus[index]);
            // On failure, dropping `pool` stops the workers started so far.
            let handle = thread::Builder::new()
                .name(format!("tern-worker-{index}"))
                .spawn(move || worker(&shared, index, cpu))?;
            pool.workers.push(handle);
        }
        pool.speeds = calibrate::speeds(&pool);
        Ok(pool)
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }
}

impl Parallel for ThreadPool {
    fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// Runs on the caller's thread alone when there is one task or one thread, and when
    /// called from inside one of this pool's own tasks (nesting cannot wait for busy threads).
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let shared = &*self.shared;
        if n_tasks == 0 {
            return;
        }
        if n_tasks == 1 || shared.n_threads == 1 || CURRENT_POOL.get() == self.id() {
            (0..n_tasks).for_each(task);
            return;
        }
        let guard = self.dispatch.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: only the lifetime is erased (same layout). The pointer is dereferenced only
        // by tasks of this job, which all finish before this function returns.
        let task: NonNull<dyn Fn(usize) + Sync> = unsafe {
            std::mem::transmute::<NonNull<dyn Fn(usize) + Sync + '_>, NonNull<dyn Fn(usize) + Sync>>(
                NonNull::from(task),
            )
        };
        let job = Job {
            task: Some(task),
            n_tasks,
        };
        // SAFETY: we hold `dispatch`, and the previous `run` saw every worker finish (pending
        // == 0, Acquire) before it returned; no worker reads `job` until the epoch moves.
        unsafe { *shared.job.get() = job };
        shared.next.0.store(0, Ordering::Relaxed);
        shared
            .pending
            .0
            .store(shared.n_threads - 1, Ordering::Relaxed);
        // SeqCst pairs with the workers' SeqCst `sleeping` store and epoch load: either a
        // worker sees the new epoch before parking or we see it sleeping and unpark it.
        shared.epoch.0.fetch_add(1, Ordering::SeqCst);
        // The SeqCst pair alone orders the bump before the flag loads; the fence says so to
        // emulators too (qemu's aarch64-on-x86 lets a load pass an earlier `stlr`, and a
        // missed wakeup then parks a worker for good). Cheap next to a dispatch.
        fence(Ordering::SeqCst);
        for (flag, handle) in shared.sleeping.iter().zip(&self.workers) {
            if flag.0.load(Ordering::SeqCst) && flag.0.swap(false, Ordering::SeqCst) {
                handle.thread().unpark();
            }
        }

        let outer = CURRENT_POOL.replace(self.id());
        let mine = catch_unwind(AssertUnwindSafe(|| shared.work(job, 0)));
        CURRENT_POOL.set(outer);

        let mut spins = if shared.spin { 0 } else { SPINS_BEFORE_YIELD };
        while shared.pending.0.load(Ordering::Acquire) != 0 {
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        // SAFETY: every worker has finished this job (pending == 0 above), so none reads it.
        unsafe { (*shared.job.get()).task = None };
        let theirs = if shared.panicked.swap(false, Ordering::Relaxed) {
            shared
                .panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        drop(guard);
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if let Some(payload) = theirs {
            resume_unwind(payload);
        }
    }

    fn speed(&self, thread: usize) -> f32 {
        self.speeds.get(thread).copied().unwrap_or(1.0)
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.shared.n_threads)
            .field("speeds", &self.speeds)
            .finish()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.shared.epoch.0.fetch_add(1, Ordering::SeqCst);
        for handle in &self.workers {
            handle.thread().unpark();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Shared {
    /// Runs this thread's part of `job`: task `thread` when there is a task per thread,
    /// otherwise tasks claimed one by one until none are left.
    fn work(&self, job: Job, thread: usize) {
        let Some(task) = job.task else { return };
        // SAFETY: the task outlives the job (see `ThreadPool::run`), and it is `Sync`.
        let task = unsafe { task.as_ref() };
        if job.n_tasks == self.n_threads {
            task(thread);
            return;
        }
        loop {
            let i = self.next.0.fetch_add(1, Ordering::Relaxed);
            if i >= job.n_tasks {
                break;
            }
            task(i);
        }
    }

    /// Spins for up to [`SPIN_BEFORE_PARK`] until the epoch moves past `seen`; the new one.
    fn spin_for_job(&self, seen: usize) -> Option<usize> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let epoch = self.epoch.0.load(Ordering::Acquire);
            if epoch != seen {
                return Some(epoch);
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % 128 == 0 {
                if start.elapsed() > SPIN_BEFORE_PARK {
                    return None;
                }
                // Lets a thread that the machine's other load keeps waiting have the CPU.
                if spins % SPINS_BEFORE_YIELD == 0 {
                    thread::yield_now();
                }
            }
        }
    }

    /// Waits for the epoch to move past `seen` and returns the new one: spinning first (unless
    /// the pool has more threads than CPUs), then parked.
    fn wait(&self, worker: usize, seen: usize) -> usize {
        if self.spin {
            if let Some(epoch) = self.spin_for_job(seen) {
                return epoch;
            }
        }
        let flag = &self.sleeping[worker].0;
        loop {
            flag.store(true, Ordering::SeqCst);
            // As in `run`: the store must be visible before the epoch is read.
            fence(Ordering::SeqCst);
            let epoch = self.epoch.0.load(Ordering::SeqCst);
            if epoch != seen {
                flag.store(false, Ordering::Relaxed);
                return epoch;
            }
            thread::park();
        }
    }
}

/// Worker thread `index` (1-based; the caller is thread 0).
fn worker(shared: &Shared, index: usize, cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        topology::pin_current_thread(cpu);
    }
    CURRENT_POOL.set(shared as *const Shared as usize);
    let mut seen = 0;
    loop {
        seen = shared.wait(index - 1, seen);
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: the epoch moved (Acquire), so the caller has written this job and will not
        // write again until we decrement `pending` below.
        let job = unsafe { *shared.job.get() };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| shared.work(job, index))) {
            let mut slot = shared.panic.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert(payload);
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.pending.0.fetch_sub(1, Ordering::Release);
    }
}
