//! A decode step allocates nothing: every buffer a step needs is made with the session, and
//! handing work to the thread pool allocates nothing either.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use tern::engine::{Engine, EngineOptions, Session};
use tern_core::backend::Parallel;

/// Counts allocations and reallocations on the threads that compute: the test's own and the
/// engines' pool workers, which mark themselves (the test harness's threads allocate now and
/// then on their own, more often on a loaded machine).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COMPUTES: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    // `try_with`: during thread teardown the flag may already be gone.
    if COMPUTES.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Marks every thread of `engine`'s pool (task `i` runs on thread `i`) and this one.
fn mark_computing_threads(engine: &Engine) {
    let pool = engine.pool();
    pool.run(pool.n_threads(), &|_| COMPUTES.set(true));
    COMPUTES.set(true);
}

// SAFETY: defers every call to `System` unchanged; counting has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made while `f` runs (by any thread).
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Feeds a prompt and one decode step, then counts allocations over 16 more decode steps.
fn decode_allocations(session: &mut Session<'_>, n_vocab: usize) -> usize {
    let prompt: Vec<u32> = (1..9).map(|i| (i * 7 % n_vocab) as u32).collect();
    session.eval(&prompt).expect("prompt");
    session.eval(&[3]).expect("first decode step");
    allocations_in(|| {
        for i in 0..16u32 {
            let logits = session
                .eval(&[(i * 13 + 5) % n_vocab as u32])
                .expect("step");
            assert!(logits[0].is_finite());
        }
    })
}

fn options(threads: usize) -> EngineOptions {
    EngineOptions {
        n_ctx: Some(64),
        threads,
        ..EngineOptions::default()
    }
}

/// One test on purpose: the counter is global, and a second test running beside this one
/// on a marked thread would allocate into it.
#[test]
fn decode_steps_and_pool_dispatch_allocate_nothing() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fixtures/qwen2/qwen2-q4_0.gguf");
    COMPUTES.set(true);
    let counted = allocations_in(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(16))));
    assert_eq!(counted, 1, "the counter sees allocations");
    for threads in [1, 2] {
        let engine = Engine::load_bundled(options(threads)).expect("bundled model");
        assert_eq!(engine.n_threads(), threads);
        mark_computing_threads(&engine);
        let mut session = engine.session().unwrap();
        let n = decode_allocations(&mut session, engine.config().n_vocab);
        assert_eq!(n, 0, "bundled model, {threads} threads: {n} allocations");

        let engine = Engine::load(&fixture, options(threads)).expect("fixture");
        mark_computing_threads(&engine);
        let mut session = engine.session().unwrap();
        let n = decode_allocations(&mut session, engine.config().n_vocab);
        assert_eq!(
            n,
            0,
            "{}, {threads} threads: {n} allocations",
            fixture.display()
        );

        let pool = engine.pool();
        let done = AtomicUsize::new(0);
        let n = allocations_in(|| {
            for n_tasks in [0, 1, 2, 3, 17] {
                for _ in 0..100 {
                    pool.run(n_tasks, &|_| {
                        done.fetch_add(1, Ordering::Relaxed);
                    });
                }
            }
        });
        assert_eq!(n, 0, "pool dispatch, {threads} threads: {n} allocations");
        assert_eq!(done.load(Ordering::Relaxed), 100 * (1 + 2 + 3 + 17));
    }
}
