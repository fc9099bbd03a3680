//! A step's kernels, each with its arguments bound once, enqueued again on every run.
//!
//! OpenCL 1.2 has no recording, so a [`Batch`] is the next best thing: one kernel object
//! per dispatch, its arguments set when the batch is made, so running it is one enqueue per
//! kernel and no host work besides. Where the device has usable `cl_khr_command_buffer`, a
//! batch finalized with [`Gpu::finalize`] is also recorded into a command buffer, and running
//! it is then one enqueue in all. Every kernel keeps the buffers it reads alive.

use std::sync::atomic::Ordering;

use crate::command_buffer::CommandBuffer;
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
    /// The kernels below recorded into a command buffer, once finalized where the device
    /// offers one. Declared first so that it is released before the kernels and buffers it
    /// names.
    recorded: Option<CommandBuffer>,
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

    /// Whether [`Gpu::submit`] replays a command buffer rather than enqueueing each kernel.
    pub fn in_command_buffer(&self) -> bool {
        self.recorded.is_some()
    }

    /// Appends `kernel` (its arguments set) over `global` work-items in groups of `local`.
    /// A command buffer recorded before no longer holds every kernel, so it is dropped.
    pub(crate) fn push(&mut self, kernel: Kernel, global: [usize; 3], local: [usize; 3]) {
        self.recorded = None;
        self.dispatches.push(Dispatch {
            kernel,
            global,
            local,
        });
    }
}

impl Gpu {
    /// Makes `batch` ready to be submitted many times: records its kernels into a command
    /// buffer, once, where the device's command buffers are used (see
    /// [`Gpu::uses_command_buffers`]); elsewhere does nothing, and [`Gpu::submit`] enqueues
    /// each kernel. A batch submitted once gains nothing from it.
    pub fn finalize(&self, batch: &mut Batch) -> Result<(), ClError> {
        if !self.recording || batch.recorded.is_some() || batch.dispatches.is_empty() {
            return Ok(());
        }
        let Some(entries) = self.shared.command_buffers else {
            return Ok(());
        };
        let kernels = batch
            .dispatches
            .iter()
            .map(|d| (&d.kernel, d.global, d.local));
        batch.recorded = Some(CommandBuffer::record(&self.shared, entries, kernels)?);
        self.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Enqueues every kernel of `batch`, in order, without waiting: one command buffer where
    /// it was recorded ([`Gpu::finalize`]), else one enqueue per kernel.
    pub fn submit(&self, batch: &Batch) -> Result<(), ClError> {
        if let Some(recorded) = &batch.recorded {
            if !recorded.belongs_to(&self.shared) {
                return Err(ClError::shape(
                    "submit",
                    "the batch was recorded on another device",
                ));
            }
            return recorded.enqueue();
        }
        for d in &batch.dispatches {
            self.run(&d.kernel, d.global, d.local)?;
        }
        Ok(())
    }

    /// Whether [`Gpu::finalize`] records batches into command buffers: where the device has
    /// usable `cl_khr_command_buffer` ([`crate::DeviceInfo::command_buffers`]), unless
    /// [`crate::NO_COMMAND_BUFFER_ENV`] was set when the device was opened or
    /// [`Gpu::use_command_buffers`] turned them off.
    pub fn uses_command_buffers(&self) -> bool {
        self.recording
    }

    /// Turns the recording of batches into command buffers on or off for batches finalized
    /// from now on (those recorded before keep replaying theirs). On takes effect only where
    /// the device's command buffers are usable; returns whether they are used.
    pub fn use_command_buffers(&mut self, on: bool) -> bool {
        self.recording = on && self.shared.command_buffers.is_some();
        self.recording
    }

    /// Command buffers recorded on this device so far (each finalized batch makes one where
    /// they are used): a step that records shows here.
    pub fn command_buffers_recorded(&self) -> usize {
        self.recorded.load(Ordering::Relaxed)
    }
}
