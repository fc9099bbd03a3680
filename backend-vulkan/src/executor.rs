//! The Vulkan backend behind core's step contract ([`tern_core::exec::Executor`]): which
//! device a load takes, the model on it, and its sessions.

pub use tern_core::exec::device::DeviceChoice;
use tern_core::exec::device::{Candidate, NoChoice};
use tern_core::exec::{
    ExecError, Executor, ExecutorSession, Residence, SessionBytes, SessionSpec, Step, WeightMemory,
};
use tern_core::gguf::Gguf;
use tern_core::kv::{KvType, KvTypes};
use tern_core::model::{ModelConfig, WeightView};

use crate::device::{DeviceInfo, DeviceKind, enumerate};
use crate::error::VkError;
use crate::gpu::Gpu;
use crate::model::DeviceModel;
use crate::ops::{KvFormat, Precision};
use crate::session::{DeviceSession, DeviceStepError};

/// The name errors and messages give this backend.
pub const BACKEND: &str = "Vulkan";

/// Whether a device is a GPU rather than a CPU emulation (lavapipe, SwiftShader).
pub fn is_real_gpu(d: &DeviceInfo) -> bool {
    d.has_compute_queue
        && matches!(
            d.kind,
            DeviceKind::Discrete | DeviceKind::Integrated | DeviceKind::Virtual
        )
}

/// The index of the device `choice` names, or why there is none.
fn device_index(choice: DeviceChoice) -> Result<usize, VkError> {
    let devices = enumerate()?;
    let candidates: Vec<Candidate> = devices
        .iter()
        .map(|d| Candidate {
            index: d.index,
            gpu: is_real_gpu(d),
            computes: d.has_compute_queue,
        })
        .collect();
    choice.pick(&candidates).map_err(|e| match e {
        NoChoice::NoSuchDevice { index, count } => VkError::NoSuchDevice { index, count },
        NoChoice::NoGpu => VkError::NoGpu(devices.iter().map(|d| d.name.clone()).collect()),
        NoChoice::NoDevice => VkError::NoDevice("no device with a compute queue".into()),
    })
}

/// Opens the device `choice` names, builds every kernel (so a driver that cannot compile one
/// fails before anything is uploaded) and uploads `gguf`'s weights, matrices multiplied in
/// `precision` where a kernel offers it.
pub fn load(
    choice: DeviceChoice,
    precision: Precision,
    gguf: &Gguf<'_>,
    config: ModelConfig,
) -> Result<DeviceModel, ExecError> {
    let gpu = Gpu::open(device_index(choice)?)?;
    if precision == Precision::F16 && !gpu.info().shader_float16 {
        let info = gpu.info();
        return Err(device_error(VkError::NoFloat16 {
            index: info.index,
            name: info.name.clone(),
        }));
    }
    gpu.build_kernels()?;
    DeviceModel::load_in(gpu, gguf, config, precision).map_err(device_error)
}

/// A device failure as core's executors report it.
fn device_error(e: impl core::error::Error + Send + Sync + 'static) -> ExecError {
    ExecError::Device {
        backend: BACKEND,
        source: Box::new(e),
    }
}

impl From<VkError> for ExecError {
    fn from(e: VkError) -> Self {
        device_error(e)
    }
}

impl From<DeviceStepError> for ExecError {
    fn from(e: DeviceStepError) -> Self {
        match e {
            DeviceStepError::Step(e) => ExecError::Step(e),
            DeviceStepError::Device(e) => device_error(e),
        }
    }
}

impl Executor for DeviceModel {
    fn describe(&self) -> &str {
        self.description()
    }

    fn config(&self) -> &ModelConfig {
        DeviceModel::config(self)
    }

    fn residence(&self) -> Residence {
        Residence::Device
    }

    fn weight_memory(&self) -> WeightMemory {
        WeightMemory {
            device: self.weight_bytes(),
            ..WeightMemory::default()
        }
    }

    fn embedding_table(&self) -> Option<WeightView<'_>> {
        // The device keeps its own copy.
        None
    }

    fn open_session(&self, spec: SessionSpec) -> Result<Box<dyn ExecutorSession + '_>, ExecError> {
        let format = match spec.kv_types {
            KvTypes {
                keys: KvType::F32,
                values: KvType::F32,
            } => KvFormat::F32,
            KvTypes {
                keys: KvType::F16,
                values: KvType::F16,
            } => KvFormat::F16,
            asked => {
                return Err(ExecError::KvTypes {
                    backend: "Vulkan",
                    asked,
                    supported: &[KvType::F32, KvType::F16],
                });
            }
        };
        let session = DeviceSession::new(self, spec.n_ctx, spec.n_batch, format)?;
        Ok(Box::new(session))
    }
}

impl ExecutorSession for DeviceSession<'_> {
    fn step(&mut self, step: Step<'_>) -> Result<&mut [f32], ExecError> {
        Ok(DeviceSession::step(self, step.plan, step.tokens, step.pos)?)
    }

    fn memory(&self) -> SessionBytes {
        SessionBytes {
            kv_device: self.kv_bytes(),
            arena: self.step_bytes(),
        }
    }
}
