//! What can go wrong between Tern and a Vulkan driver, each case with what and where.

use ash::vk;

/// A Vulkan backend failure.
#[derive(Debug, thiserror::Error)]
pub enum VkError {
    /// The Vulkan loader library (libvulkan.so.1 / vulkan-1.dll) could not be loaded.
    #[error("no Vulkan loader library on this system ({0}); install a Vulkan loader and driver")]
    NoLoader(String),
    /// The loader found no driver, or no driver offers a device with a compute queue.
    #[error("no Vulkan device: {0}")]
    NoDevice(String),
    /// No device is a real GPU (`--backend auto` never takes a CPU implementation); the
    /// names of the devices there are.
    #[error("no GPU ({})", no_gpu_found(.0))]
    NoGpu(Vec<String>),
    /// `--gpu-fast` on a device without shaderFloat16.
    #[error("device {index} ({name}) has no shaderFloat16 for --gpu-fast")]
    NoFloat16 {
        /// The device's index in [`crate::enumerate`]'s list.
        index: usize,
        /// The device's name as its driver reports it.
        name: String,
    },
    /// A device index past the last device.
    #[error("no Vulkan device with index {index} ({count} found)")]
    NoSuchDevice {
        /// The index asked for.
        index: usize,
        /// Number of devices the loader found.
        count: usize,
    },
    /// The driver lost the device (a crash, a reset, a timeout); the context is unusable.
    #[error("Vulkan device lost during {0}")]
    DeviceLost(&'static str),
    /// Device or host memory ran out while allocating `bytes` (0 when not an allocation).
    #[error("out of {kind} memory during {during} ({bytes} bytes requested)")]
    OutOfMemory {
        /// Which memory ran out: `"device"`, `"host-visible"` or `"host"`.
        kind: &'static str,
        /// The Vulkan call or the step that needed the memory.
        during: &'static str,
        /// Bytes requested, 0 when the failing call was not an allocation.
        bytes: u64,
    },
    /// No memory type with the properties a buffer needs.
    #[error("no Vulkan memory type fits a {0} buffer")]
    NoMemoryType(&'static str),
    /// A compute pipeline could not be built from a shader.
    #[error("Vulkan pipeline `{shader}` failed to create: {result}")]
    Pipeline {
        /// Name of the shader the pipeline was built from.
        shader: &'static str,
        /// What the driver returned.
        result: vk::Result,
    },
    /// SPIR-V bytes that are not a whole number of little-endian words with the magic number.
    #[error("shader `{0}` is not valid SPIR-V")]
    BadSpirv(&'static str),
    /// Any other Vulkan call that failed.
    #[error("Vulkan call {call} failed: {result}")]
    Call {
        /// Name of the Vulkan function, e.g. `vkQueueSubmit`.
        call: &'static str,
        /// What the driver returned.
        result: vk::Result,
    },
    /// Sizes or offsets that do not fit the op, a buffer, or 32-bit shader indexing.
    #[error("bad shape for {op}: {why}")]
    Shape {
        /// The op, kernel or transfer that was handed the sizes.
        op: &'static str,
        /// Which size or offset is wrong, in words.
        why: String,
    },
    /// A weight or cache type the kernels do not handle.
    #[error("{op} does not support {what}")]
    Unsupported {
        /// The op or step that met the type.
        op: &'static str,
        /// The type or feature it does not handle, in words.
        what: String,
    },
}

/// What a search for a GPU found instead.
fn no_gpu_found(names: &[String]) -> String {
    if names.is_empty() {
        "no device".into()
    } else {
        format!("only {}, a CPU implementation", names.join(", "))
    }
}

impl VkError {
    /// Maps a failed call's result to the typed error the caller can act on.
    pub(crate) fn from_call(call: &'static str, result: vk::Result) -> VkError {
        match result {
            vk::Result::ERROR_DEVICE_LOST => VkError::DeviceLost(call),
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY => VkError::OutOfMemory {
                kind: "device",
                during: call,
                bytes: 0,
            },
            vk::Result::ERROR_OUT_OF_HOST_MEMORY => VkError::OutOfMemory {
                kind: "host",
                during: call,
                bytes: 0,
            },
            result => VkError::Call { call, result },
        }
    }

    pub(crate) fn shape(op: &'static str, why: impl Into<String>) -> VkError {
        VkError::Shape {
            op,
            why: why.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = VkError> = core::result::Result<T, E>;

/// Adds the call's name to a raw Vulkan result.
pub(crate) trait Context<T> {
    fn during(self, call: &'static str) -> Result<T>;
}

impl<T> Context<T> for core::result::Result<T, vk::Result> {
    fn during(self, call: &'static str) -> Result<T> {
        self.map_err(|r| VkError::from_call(call, r))
    }
}
