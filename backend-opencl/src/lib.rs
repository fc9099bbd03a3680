//! OpenCL compute backend for Tern, for the boards whose GPU speaks OpenCL (Mali, Adreno,
//! PowerVR) and often no good Vulkan.
//!
//! - [`enumerate`]: the devices of an OpenCL library opened at run time (the ICD loader, or
//!   a vendor library named by path or `TERN_OPENCL_LIB`), with the extensions kernels may
//!   use; nothing links against OpenCL, so Tern builds with no SDK.
//! - [`Gpu`]: an open device with an in-order queue; [`Buffer`]s, [`Program`]s built from
//!   OpenCL C 1.2 sources (a failed build gives the driver log's first line), [`Kernel`]s.
//! - [`ops`]: the ops of a step as kernels added to a [`Batch`], with the reference
//!   backend's semantics; matmuls at a [`Precision`]: the reference's exact bits, or fast
//!   kernels (Q4_0, Q4_1, Q8_0) whose sums are reassociated within a stated bound.
//! - [`DeviceModel`]: a model's weights uploaded once; [`DeviceSession`]: a KV cache and
//!   step memory on the device, core's plan of each step shape made into a batch once and
//!   enqueued again. Both meet core's step contract ([`tern_core::exec::Executor`]);
//!   [`load`] opens the device a [`DeviceChoice`] names and uploads a model.
//!
//! Only OpenCL 1.2 is required; `cl_khr_fp16`, subgroups, integer dot products and command
//! buffers are reported for kernels to choose from, each with a fallback. Where a device has
//! `cl_khr_command_buffer` in a revision Tern calls correctly, a session's batches are
//! recorded into command buffers and a step is one enqueue; `TERN_OPENCL_NO_COMMAND_BUFFER=1`
//! ([`NO_COMMAND_BUFFER_ENV`]) keeps every device to one enqueue per kernel.

mod api;
mod batch;
mod command_buffer;
mod device;
mod error;
mod executor;
mod gpu;
mod model;
pub mod ops;
mod program_cache;
mod programs;
mod session;

pub use api::{LIBRARY_ENV, LIBRARY_NAMES};
pub use batch::Batch;
pub use command_buffer::{
    CommandBufferSupport, CommandBufferUnusable, ExtensionRevision, NO_COMMAND_BUFFER_ENV,
};
pub use device::{DeviceInfo, DeviceKind, Extensions, IntegerDot, enumerate};
pub use error::{ClError, code_name};
pub use executor::{BACKEND, DeviceChoice, is_real_gpu, load};
pub use gpu::{Buffer, Gpu, Kernel, Program};
pub use model::DeviceModel;
pub use ops::{AttentionShape, DeviceKv, DeviceWeight, KvFormat, Layout, Precision, View};
pub use session::{DeviceSession, DeviceStepError};
