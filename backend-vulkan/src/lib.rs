//! Vulkan compute backend for Tern.
//!
//! - [`device`]: the loader opened at run time, device enumeration and capabilities.
//! - [`Gpu`]: an open device with one compute queue; buffers, batches, kernels.
//! - [`ops`]: the ops of a transformer step as kernels, with the semantics of core's
//!   reference backend, which the tests compare them against.
//! - [`DeviceModel`]: a model's weights uploaded once; [`DeviceSession`]: a KV cache and
//!   step memory on the device, core's plan of each step shape recorded once and replayed.
//!   Both meet core's step contract ([`tern_core::exec::Executor`]); [`load`] opens the
//!   device a [`DeviceChoice`] names and uploads a model.
//!
//! Every kernel is plain Vulkan 1.0 compute (SPIR-V 1.0, 32-bit storage only), so any
//! conformant driver runs it; the f16, int8 and subgroup capabilities are reported for
//! faster kernels to choose from, not required.

mod batch;
pub mod device;
mod error;
mod executor;
mod gpu;
mod kernel;
mod memory;
mod model;
pub mod ops;
mod session;
mod shaders;

pub use batch::Batch;
pub use device::{DeviceInfo, DeviceKind, enumerate};
pub use error::{Result, VkError};
pub use executor::{BACKEND, DeviceChoice, is_real_gpu, load};
pub use gpu::Gpu;
pub use memory::Buffer;
pub use model::DeviceModel;
pub use ops::{
    AttentionShape, DeviceKv, DeviceWeight, KvFormat, Layout, Precision, View, rope_table,
};
pub use session::{DeviceSession, DeviceStepError};
