//! OpenCL compute backend for Tern, for the boards whose GPU speaks OpenCL (Mali, Adreno,
//! PowerVR) and often no good Vulkan.
//!
//! - [`enumerate`]: the devices of an OpenCL library opened at run time (the ICD loader, or
//!   a vendor library named by path or `TERN_OPENCL_LIB`), with the extensions kernels may
//!   use; nothing links against OpenCL, so Tern builds with no SDK.
//! - [`Gpu`]: an open device with an in-order queue; [`Buffer`]s, [`Program`]s built from
//!   OpenCL C 1.2 sources (a failed build gives the driver log's first line), [`Kernel`]s.
//! - [`ops`]: the ops of a step as kernels added to a [`Batch`], with the reference
//!   backend's semantics.
//!
//! Only OpenCL 1.2 is required; `cl_khr_fp16`, subgroups, integer dot products and command
//! buffers are reported for kernels to choose from, each with a fallback.

mod api;
mod batch;
mod device;
mod error;
mod gpu;
pub mod ops;
mod programs;

pub use api::{LIBRARY_ENV, LIBRARY_NAMES};
pub use batch::Batch;
pub use device::{DeviceInfo, DeviceKind, Extensions, enumerate};
pub use error::{ClError, code_name};
pub use gpu::{Buffer, Gpu, Kernel, Program};
pub use ops::{AttentionShape, DeviceKv, DeviceWeight, KvFormat, Layout, View};
