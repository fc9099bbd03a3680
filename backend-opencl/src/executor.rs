//! The OpenCL backend behind core's step contract ([`tern_core::exec::Executor`]): which
//! library and device a load takes, the model on it, and its sessions.

use std::path::Path;

pub use tern_core::exec::device::DeviceChoice;
use tern_core::exec::device::{Candidate, NoChoice};
use tern_core::exec::{
    ExecError, Executor, ExecutorSession, Residence, SessionBytes, SessionSpec, Step, WeightMemory,
};
use tern_core::gguf::Gguf;
use tern_core::kv::{KvType, KvTypes};
use tern_core::model::{ModelConfig, WeightView};

use crate::device::{DeviceInfo, DeviceKind, enumerate};
use crate::error::ClError;
use crate::gpu::Gpu;
use crate::model::DeviceModel;
use crate::ops::{KvFormat, Precision};
use crate::programs::Source;
use crate::session::{DeviceSession, DeviceStepError};

/// The name errors and messages give this backend.
pub const BACKEND: &str = "OpenCL";

/// Whether a device is a GPU rather than a CPU implementation (PoCL, rusticl on llvmpipe).
pub fn is_real_gpu(d: &DeviceInfo) -> bool {
    d.kind == DeviceKind::Gpu
}

/// The index of the device `choice` names among `library`'s, or why there is none.
fn device_index(choice: DeviceChoice, library: Option<&Path>) -> Result<usize, ClError> {
    let devices = enumerate(library)?;
    let candidates: Vec<Candidate> = devices
        .iter()
        .map(|d| Candidate {
            index: d.index,
            gpu: is_real_gpu(d),
            computes: true,
        })
        .collect();
    choice.pick(&candidates).map_err(|e| match e {
        NoChoice::NoSuchDevice { index, count } => ClError::NoSuchDevice { index, count },
        NoChoice::NoGpu | NoChoice::NoDevice => {
            ClError::NoGpu(devices.iter().map(|d| d.name.clone()).collect())
        }
    })
}

/// Opens the device `choice` names in the OpenCL library at `library` (else
/// `TERN_OPENCL_LIB`, else the usual names), builds the kernels every model needs (so a
/// driver that cannot compile one fails before anything is uploaded), from the compiled
/// programs in `program_cache` where it has them, and uploads `gguf`'s weights, its matrices
/// for the matmul kernels of `precision`.
pub fn load(
    library: Option<&Path>,
    choice: DeviceChoice,
    program_cache: Option<&Path>,
    gguf: &Gguf<'_>,
    config: ModelConfig,
    precision: Precision,
) -> Result<DeviceModel, ExecError> {
    let gpu = Gpu::open(library, device_index(choice, library)?)?.with_program_cache(program_cache);
    for source in Source::EVERY_MODEL {
        gpu.built(source)?;
    }
    if precision == Precision::Fast {
        gpu.built(Source::QuantizeActivations)?;
    }
    DeviceModel::load_in(gpu, gguf, config, precision).map_err(device_error)
}

/// A device failure as core's executors report it.
fn device_error(e: impl core::error::Error + Send + Sync + 'static) -> ExecError {
    ExecError::Device {
        backend: BACKEND,
        source: Box::new(e),
    }
}

impl From<ClError> for ExecError {
    fn from(e: ClError) -> Self {
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
                    backend: "OpenCL",
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
