//! [`Gpu`]: an open device, its kernels (built on first use), buffers and batches.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::batch::Batch;
use crate::device::{DeviceInfo, Shared};
use crate::error::{Result, VkError};
use crate::kernel::Kernel;
use crate::memory::Buffer;
use crate::shaders::Shader;

/// An open Vulkan device with a compute queue.
pub struct Gpu {
    shared: Arc<Shared>,
    info: DeviceInfo,
    kernels: Mutex<HashMap<Shader, Arc<Kernel>>>,
}

impl Gpu {
    /// Opens device `index` of [`crate::enumerate`]'s list.
    pub fn open(index: usize) -> Result<Gpu> {
        let (shared, info) = Shared::open(index)?;
        Ok(Gpu {
            shared: Arc::new(shared),
            info,
            kernels: Mutex::new(HashMap::new()),
        })
    }

    /// The device this context was opened on and its capabilities.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Device memory allocations made so far.
    pub fn allocations(&self) -> usize {
        self.shared.allocations.load(Ordering::Relaxed)
    }

    /// Batches recorded so far (replays and internal transfers not counted).
    pub fn recordings(&self) -> usize {
        self.shared.recordings.load(Ordering::Relaxed)
    }

    /// A zero-filled buffer of at least `bytes` bytes.
    pub fn buffer(&self, bytes: u64) -> Result<Buffer> {
        Buffer::new(&self.shared, bytes)
    }

    /// A zero-filled buffer of at least `bytes` bytes that the host maps for good, so reads
    /// and writes never take a staging copy (every device has such memory).
    pub fn host_buffer(&self, bytes: u64) -> Result<Buffer> {
        Buffer::host(&self.shared, bytes)
    }

    /// A buffer that always moves bytes through a staging copy.
    #[doc(hidden)]
    pub fn buffer_unmapped(&self, bytes: u64) -> Result<Buffer> {
        Buffer::unmapped(&self.shared, bytes)
    }

    /// A buffer holding `values`.
    pub fn buffer_f32(&self, values: &[f32]) -> Result<Buffer> {
        let mut b = self.buffer(values.len() as u64 * 4)?;
        b.write_f32(0, values)?;
        Ok(b)
    }

    /// A buffer holding `values`.
    pub fn buffer_u32(&self, values: &[u32]) -> Result<Buffer> {
        let mut b = self.buffer(values.len() as u64 * 4)?;
        b.write_u32(0, values)?;
        Ok(b)
    }

    /// A buffer holding `bytes` (padded with zeros to whole words).
    pub fn buffer_bytes(&self, bytes: &[u8]) -> Result<Buffer> {
        let mut b = self.buffer(bytes.len() as u64)?;
        b.write(0, bytes)?;
        Ok(b)
    }

    /// An empty batch to record kernels into.
    pub fn batch(&self) -> Result<Batch> {
        Batch::new(&self.shared)
    }

    /// Submits `batch` (ending its recording the first time) and waits for it.
    pub fn run(&self, batch: &mut Batch) -> Result<()> {
        batch.submit()
    }

    /// The kernel of `shader`, built the first time it is asked for.
    pub(crate) fn kernel(&self, shader: Shader) -> Result<Arc<Kernel>> {
        if shader.needs_float16() && !self.info.shader_float16 {
            return Err(VkError::Unsupported {
                op: "kernel",
                what: format!("f16 arithmetic on {} (no shaderFloat16)", self.info.name),
            });
        }
        let mut kernels = self.kernels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = kernels.get(&shader) {
            return Ok(Arc::clone(k));
        }
        let (name, spirv, bindings, push) = shader.interface();
        let k = Arc::new(Kernel::new(&self.shared, name, spirv, bindings, push)?);
        kernels.insert(shader, Arc::clone(&k));
        Ok(k)
    }

    /// Builds every kernel now, so that a driver that cannot compile one says so before a
    /// model is uploaded rather than at the first step (and `--backend auto` can still
    /// choose the CPU).
    pub fn build_kernels(&self) -> Result<()> {
        for shader in Shader::ALL {
            if !shader.needs_float16() || self.info.shader_float16 {
                self.kernel(shader)?;
            }
        }
        Ok(())
    }

    /// Builds a kernel from arbitrary SPIR-V, for checking how bad modules fail.
    #[doc(hidden)]
    pub fn try_kernel(&self, name: &'static str, spirv: &[u8], bindings: u32) -> Result<()> {
        Kernel::new(&self.shared, name, spirv, bindings, 0).map(drop)
    }
}
