//! A step's kernels, each with its arguments bound once, enqueued again on every run.
//!
//! OpenCL 1.2 has no recording, so a [`Batch`] is the next best thing: one kernel object
//! per dispatch, its arguments set when the batch is made, so running it is one enqueue per
//! kernel and no host work besides. Every kernel keeps the buffers it reads alive.

use crate::error::ClError;
use crate::gpu::{Gpu, Kernel};

/// One kernel over its range.
struct Dispatch {
    kernel: Kernel,
    global: [usize; 3],
    local: [usize; 3],
}

/// Kernels to run in order, each seeing the writes of those before it (the queue is in
/// order).
#[derive(Default)]
pub struct Batch {
    dispatches: Vec<Dispatch>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Kernels recorded so far.
    pub fn dispatches(&self) -> usize {
        self.dispatches.len()
    }

    /// Appends `kernel` (its arguments set) over `global` work-items in groups of `local`.
    pub(crate) fn push(&mut self, kernel: Kernel, global: [usize; 3], local: [usize; 3]) {
        self.dispatches.push(Dispatch {
            kernel,
            global,
            local,
        });
    }
}

impl Gpu {
    /// Enqueues every kernel of `batch`, in order, without waiting.
    pub fn submit(&self, batch: &Batch) -> Result<(), ClError> {
        for d in &batch.dispatches {
            self.run(&d.kernel, d.global, d.local)?;
        }
        Ok(())
    }
}
