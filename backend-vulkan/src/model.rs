//! A whole model on the device: every weight uploaded once, in the layout the kernels read.
//!
//! Formats with a kernel of their own (matrices: F32, F16, Q4_0, Q4_1, Q5_1, Q8_0, Q4_K,
//! Q5_K, Q6_K; embedding tables: F32, F16, Q4_0, Q8_0, Q4_K, Q6_K) keep the file's block
//! layout; any other format is dequantized to f32 at upload (its matmuls still round
//! activations as the stored format's would), as are all vectors (norm weights and biases),
//! which the row kernels read as plain f32.

use tern_core::exec::device::weights::{F32CopyError, as_f32_view, dequantized_f32};
use tern_core::gguf::Gguf;
use tern_core::model::{LayerWeights, LoadError, Model, ModelConfig, WeightRole, WeightView};

use crate::error::{Result, VkError};
use crate::gpu::Gpu;
use crate::ops::{DeviceWeight, EMBED_FORMATS, MATMUL_FORMATS, Precision};

/// The model's weights on one device.
pub struct DeviceModel {
    pub(crate) gpu: Gpu,
    pub(crate) model: Model<DeviceWeight, Vec<LayerWeights<DeviceWeight>>>,
    /// Bytes of weights in device memory.
    device_bytes: u64,
    /// "vulkan (DEVICE[, f16 matmuls])", for messages.
    description: String,
}

impl DeviceModel {
    /// Uploads every weight of `gguf` to `gpu`, for the reference's arithmetic. The error
    /// names the tensor that failed.
    pub fn load(
        gpu: Gpu,
        gguf: &Gguf<'_>,
        config: ModelConfig,
    ) -> core::result::Result<DeviceModel, Box<LoadError<VkError>>> {
        DeviceModel::load_in(gpu, gguf, config, Precision::Reference)
    }

    /// [`DeviceModel::load`] with matrices multiplied in `precision` where they can be.
    pub fn load_in(
        gpu: Gpu,
        gguf: &Gguf<'_>,
        config: ModelConfig,
        precision: Precision,
    ) -> core::result::Result<DeviceModel, Box<LoadError<VkError>>> {
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
        let mut loaded = DeviceModel {
            gpu,
            model,
            device_bytes,
            description: String::new(),
        };
        let math = if loaded.f16_matrices() {
            ", f16 matmuls"
        } else {
            ""
        };
        loaded.description = format!("vulkan ({}{math})", loaded.gpu.info().name);
        Ok(loaded)
    }

    /// The shape and hyperparameters of the loaded model.
    pub fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    /// The device the weights live on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Whether some matrix multiplies in f16 ([`Precision::F16`]).
    pub fn f16_matrices(&self) -> bool {
        self.model.weights().any(|w| w.precision == Precision::F16)
    }

    /// The backend and device, for messages: "vulkan (llvmpipe, f16 matmuls)".
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Bytes of weights in device memory (a tied output head counts twice: it is uploaded
    /// as the embedding table and again as a matrix).
    pub fn weight_bytes(&self) -> u64 {
        self.device_bytes
    }
}

/// One weight in the form the kernels read: as stored where a kernel reads its format, else
/// dequantized to f32.
fn upload(
    gpu: &Gpu,
    view: &WeightView<'_>,
    role: WeightRole,
    precision: Precision,
) -> Result<DeviceWeight> {
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
        F32CopyError::OutOfMemory { bytes } => VkError::OutOfMemory {
            kind: "host",
            during: "dequantizing a weight for upload",
            bytes: bytes as u64,
        },
        F32CopyError::Format(what) => VkError::Unsupported {
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
