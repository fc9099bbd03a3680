//! A whole model on the device: every weight uploaded once, in the layout the kernels read.
//!
//! Formats with a kernel of their own (matrices: F32, F16, Q4_0, Q4_1, Q5_1, Q8_0, Q4_K,
//! Q5_K, Q6_K; embedding tables: F32, F16, Q4_0, Q8_0, Q4_K, Q6_K) keep the file's blocks;
//! any other format is dequantized to f32 at upload (its matmuls still round activations as
//! the stored format's would), as are all vectors (norm weights and biases), which the row
//! kernels read as plain f32. Matrices are uploaded for the matmul kernels of a
//! [`Precision`]: the reference's, or the fast ones for the formats that have them.

use tern_core::exec::device::weights::{F32CopyError, as_f32_view, dequantized_f32};
use tern_core::gguf::Gguf;
use tern_core::model::{
    LayerWeights, LoadError, Model, ModelConfig, WeightId, WeightRole, WeightView,
};

use crate::error::ClError;
use crate::gpu::Gpu;
use crate::ops::{DeviceWeight, EMBED_FORMATS, MATMUL_FORMATS, Precision};

/// The model's weights on one device.
pub struct DeviceModel {
    pub(crate) gpu: Gpu,
    pub(crate) model: Model<DeviceWeight, Vec<LayerWeights<DeviceWeight>>>,
    /// Bytes of weights in device memory.
    device_bytes: u64,
    /// "opencl (DEVICE)", for messages.
    description: String,
}

impl DeviceModel {
    /// Uploads every weight of `gguf` to `gpu` for the reference matmul kernels. The error
    /// names the tensor that failed.
    pub fn load(
        gpu: Gpu,
        gguf: &Gguf<'_>,
        config: ModelConfig,
    ) -> Result<DeviceModel, Box<LoadError<ClError>>> {
        DeviceModel::load_in(gpu, gguf, config, Precision::Reference)
    }

    /// Uploads every weight of `gguf` to `gpu`, its matrices for the matmul kernels of
    /// `precision` (see [`DeviceWeight::matrix_in`]). The error names the tensor that failed.
    pub fn load_in(
        gpu: Gpu,
        gguf: &Gguf<'_>,
        config: ModelConfig,
        precision: Precision,
    ) -> Result<DeviceModel, Box<LoadError<ClError>>> {
        let mut device_bytes = 0u64;
        let model = Model::load(
            gguf,
            config,
            Vec::with_capacity(config.n_layer),
            |view, role| {
                let w = upload(&gpu, &view, role, precision)?;
                device_bytes += w.bytes();
                Ok(w)
            },
        )
        .map_err(Box::new)?;
        let fast = model.weights().any(|w| w.precision == Precision::Fast);
        let math = if fast { ", fast matmuls" } else { "" };
        let description = format!("opencl ({}{math})", gpu.info().name);
        Ok(DeviceModel {
            gpu,
            model,
            device_bytes,
            description,
        })
    }

    /// The shape and hyperparameters of the loaded model.
    pub fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    /// The device the weights live on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The backend and device, for messages: "opencl (cpu-haswell-...)".
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Weight `id` as uploaded: its layout and precision say which matmul kernels it takes.
    pub fn weight(&self, id: WeightId) -> Option<&DeviceWeight> {
        self.model.weight(id)
    }

    /// Bytes of weights in device memory (a tied output head counts twice: it is uploaded
    /// as the embedding table and again as a matrix).
    pub fn weight_bytes(&self) -> u64 {
        self.device_bytes
    }
}

/// One weight in the form the kernels read: as stored where a kernel reads its format, else
/// dequantized to f32 (for the reference kernels, whatever `precision` asks).
fn upload(
    gpu: &Gpu,
    view: &WeightView<'_>,
    role: WeightRole,
    precision: Precision,
) -> Result<DeviceWeight, ClError> {
    let native = match role {
        WeightRole::Matrix => &MATMUL_FORMATS[..],
        WeightRole::Embedding => &EMBED_FORMATS[..],
        WeightRole::Vector => &[],
    };
    if native.contains(&view.dtype) {
        return match role {
            WeightRole::Matrix => DeviceWeight::matrix_in(gpu, view, precision),
            _ => DeviceWeight::rows(gpu, view),
        };
    }
    let bytes = dequantized_f32(view).map_err(|e| match e {
        F32CopyError::OutOfMemory { bytes } => ClError::OutOfMemory {
            memory: "host".into(),
            bytes,
        },
        F32CopyError::Format(what) => ClError::Unsupported {
            op: "weight upload",
            what,
        },
    })?;
    let f32_view = as_f32_view(view, &bytes);
    match role {
        WeightRole::Matrix => DeviceWeight::dequantized_matrix(gpu, &f32_view, view.dtype),
        _ => DeviceWeight::rows(gpu, &f32_view),
    }
}
