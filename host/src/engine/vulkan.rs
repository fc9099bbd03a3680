//! The Vulkan backend as the engine uses it: which device, and the model loaded onto it.

use tern_backend_vulkan::{DeviceInfo, DeviceKind, DeviceModel, Gpu, Precision, VkError};
use tern_core::gguf::Gguf;
use tern_core::model::ModelConfig;

/// Whether a device is a GPU rather than a CPU emulation (lavapipe, SwiftShader), which
/// `--backend auto` never picks: the CPU backend beats it.
fn is_real_gpu(d: &DeviceInfo) -> bool {
    d.has_compute_queue
        && matches!(
            d.kind,
            DeviceKind::Discrete | DeviceKind::Integrated | DeviceKind::Virtual
        )
}

/// The device `--backend auto` uses: `requested` if given, else the first real GPU; or why
/// there is none.
pub(super) fn real_gpu(requested: Option<usize>) -> Result<usize, String> {
    let devices = tern_backend_vulkan::enumerate().map_err(|e| format!("Vulkan: {e}"))?;
    if let Some(index) = requested {
        return match devices.get(index) {
            Some(_) => Ok(index),
            None => Err(format!(
                "Vulkan: {}",
                VkError::NoSuchDevice {
                    index,
                    count: devices.len()
                }
            )),
        };
    }
    match devices.iter().find(|d| is_real_gpu(d)) {
        Some(d) => Ok(d.index),
        None => {
            let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            Err(format!(
                "Vulkan: no GPU ({})",
                if names.is_empty() {
                    "no device".to_string()
                } else {
                    format!("only {}, a CPU implementation", names.join(", "))
                }
            ))
        }
    }
}

/// The device `--backend vulkan` uses: `requested`, else the first real GPU, else the first
/// device that computes (a CPU implementation, which is what CI has).
fn device_for_vulkan(requested: Option<usize>) -> Result<usize, VkError> {
    if let Some(index) = requested {
        return Ok(index);
    }
    let devices = tern_backend_vulkan::enumerate()?;
    devices
        .iter()
        .find(|d| is_real_gpu(d))
        .or_else(|| devices.iter().find(|d| d.has_compute_queue))
        .map(|d| d.index)
        .ok_or_else(|| VkError::NoDevice("no device with a compute queue".into()))
}

/// Opens the device and uploads every weight to it, for f16 matmuls with `f16`.
pub(super) fn load(
    requested: Option<usize>,
    f16: bool,
    gguf: &Gguf<'_>,
    config: ModelConfig,
) -> Result<DeviceModel, String> {
    let vk = |e: VkError| format!("Vulkan: {e}");
    let gpu = Gpu::open(device_for_vulkan(requested).map_err(vk)?).map_err(vk)?;
    if f16 && !gpu.info().shader_float16 {
        return Err(format!(
            "Vulkan: device {} ({}) has no shaderFloat16 for --gpu-f16",
            gpu.info().index,
            gpu.info().name
        ));
    }
    // A kernel the driver cannot build fails here, before anything is uploaded.
    gpu.build_kernels().map_err(vk)?;
    let precision = if f16 {
        Precision::F16
    } else {
        Precision::Reference
    };
    DeviceModel::load_in(gpu, gguf, config, precision).map_err(|e| format!("Vulkan: {e}"))
}

/// One line per device for `tern devices`.
pub fn describe_devices() -> Result<Vec<String>, String> {
    let devices = tern_backend_vulkan::enumerate().map_err(|e| format!("Vulkan: {e}"))?;
    Ok(devices
        .iter()
        .map(|d| {
            let (major, minor, patch) = d.api_version;
            let mut features = Vec::new();
            for (has, name) in [
                (d.shader_float16, "shaderFloat16"),
                (d.shader_int8, "shaderInt8"),
                (d.storage_16bit, "16-bit storage"),
                (d.storage_8bit, "8-bit storage"),
            ] {
                if has {
                    features.push(name.to_string());
                }
            }
            if let Some(n) = d.subgroup_size {
                features.push(format!("subgroups of {n}"));
            }
            let kind = match d.kind {
                DeviceKind::Discrete => "discrete GPU",
                DeviceKind::Integrated => "integrated GPU",
                DeviceKind::Virtual => "virtual GPU",
                DeviceKind::Cpu => "CPU implementation (not picked by --backend auto)",
                DeviceKind::Other => "other",
            };
            let compute = if d.has_compute_queue {
                ""
            } else {
                ", no compute queue"
            };
            format!(
                "{}: {} ({kind}{compute}), Vulkan {major}.{minor}.{patch}, largest storage \
                 buffer {} MiB; {}",
                d.index,
                d.name,
                d.max_storage_buffer_range >> 20,
                if features.is_empty() {
                    "no optional features".to_string()
                } else {
                    features.join(", ")
                }
            )
        })
        .collect())
}
