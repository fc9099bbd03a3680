//! Device buffers: where memory lives and how bytes get in and out.
//!
//! A buffer takes device-local memory. Where that memory is also host-visible (integrated
//! GPUs, software drivers, resizable BAR) it stays mapped and reads and writes are plain
//! copies; otherwise they go through a temporary host-visible staging buffer and a transfer.

use std::ptr::NonNull;
use std::sync::Arc;

use ash::vk;

use crate::device::Shared;
use crate::error::{Context as _, Result, VkError};

/// A storage buffer on the device. Sizes are rounded up to whole 32-bit words.
pub struct Buffer {
    pub(crate) alloc: Arc<Allocation>,
    size: u64,
    mapped: Option<Mapped>,
}

/// The Vulkan buffer and its memory, freed when the last holder lets go: the [`Buffer`] and
/// every [`Batch`](crate::Batch) that binds it, so a recorded batch can never name a freed
/// buffer however long it is kept for replay.
pub(crate) struct Allocation {
    pub(crate) shared: Arc<Shared>,
    pub(crate) raw: vk::Buffer,
    memory: vk::DeviceMemory,
}

/// The host address of a persistently mapped, host-coherent allocation.
struct Mapped(NonNull<u8>);

// SAFETY: the pointer is only dereferenced by `Buffer::write` (through `&mut Buffer`) and
// `Buffer::read` (through `&Buffer`), so the borrow rules already exclude a write racing any
// other access from the host; the device only touches the memory inside a submission, and
// every submission is waited for before `Gpu::run` returns.
unsafe impl Send for Mapped {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapped {}

const USAGE: vk::BufferUsageFlags = vk::BufferUsageFlags::from_raw(
    vk::BufferUsageFlags::STORAGE_BUFFER.as_raw()
        | vk::BufferUsageFlags::TRANSFER_SRC.as_raw()
        | vk::BufferUsageFlags::TRANSFER_DST.as_raw(),
);

const HOST: vk::MemoryPropertyFlags = vk::MemoryPropertyFlags::from_raw(
    vk::MemoryPropertyFlags::HOST_VISIBLE.as_raw()
        | vk::MemoryPropertyFlags::HOST_COHERENT.as_raw(),
);

impl Buffer {
    /// A zero-filled device buffer of at least `bytes` bytes.
    pub(crate) fn new(shared: &Arc<Shared>, bytes: u64) -> Result<Buffer> {
        let local = vk::MemoryPropertyFlags::DEVICE_LOCAL;
        // Mappable device memory first, then device memory, then any host memory.
        Self::with_memory(shared, bytes, &[local | HOST, local, HOST], "device")
    }

    /// A device buffer that is never mapped, so reads and writes take the staging path even
    /// where device memory is host-visible (for testing that path everywhere).
    pub(crate) fn unmapped(shared: &Arc<Shared>, bytes: u64) -> Result<Buffer> {
        Self::with_memory(
            shared,
            bytes,
            &[vk::MemoryPropertyFlags::DEVICE_LOCAL],
            "device",
        )
    }

    /// A buffer the host always reads and writes directly, in device-local memory where that
    /// is host-visible too: a step's inputs and results, moved without a staging copy (and
    /// so without allocating) on every step.
    pub(crate) fn host(shared: &Arc<Shared>, bytes: u64) -> Result<Buffer> {
        let local = vk::MemoryPropertyFlags::DEVICE_LOCAL;
        Self::with_memory(shared, bytes, &[local | HOST, HOST], "host-visible")
    }

    /// A host-visible buffer for moving bytes to and from a device-only buffer.
    fn staging(shared: &Arc<Shared>, bytes: u64) -> Result<Buffer> {
        Self::with_memory(shared, bytes, &[HOST], "staging")
    }

    fn with_memory(
        shared: &Arc<Shared>,
        bytes: u64,
        wanted: &[vk::MemoryPropertyFlags],
        what: &'static str,
    ) -> Result<Buffer> {
        let size = bytes.max(4).div_ceil(4) * 4;
        let device = &shared.device;
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(USAGE)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: a valid device and create info with a non-zero size.
        let raw = unsafe { device.create_buffer(&info, None) }.map_err(|e| match e {
            vk::Result::ERROR_OUT_OF_DEVICE_MEMORY | vk::Result::ERROR_OUT_OF_HOST_MEMORY => {
                VkError::OutOfMemory {
                    kind: "device",
                    during: "vkCreateBuffer",
                    bytes: size,
                }
            }
            e => VkError::from_call("vkCreateBuffer", e),
        })?;
        // SAFETY: `raw` was just created from `device`.
        let needs = unsafe { device.get_buffer_memory_requirements(raw) };
        let mut last = VkError::NoMemoryType(what);
        for &flags in wanted {
            let Some(type_index) = memory_type(&shared.memory, needs.memory_type_bits, flags)
            else {
                continue;
            };
            let alloc = vk::MemoryAllocateInfo::default()
                .allocation_size(needs.size)
                .memory_type_index(type_index);
            // SAFETY: a valid device; the type index is one the buffer accepts.
            let memory = match unsafe { device.allocate_memory(&alloc, None) } {
                Ok(m) => m,
                Err(
                    vk::Result::ERROR_OUT_OF_DEVICE_MEMORY | vk::Result::ERROR_OUT_OF_HOST_MEMORY,
                ) => {
                    last = VkError::OutOfMemory {
                        kind: if flags.contains(vk::MemoryPropertyFlags::DEVICE_LOCAL) {
                            "device"
                        } else {
                            "host-visible"
                        },
                        during: "vkAllocateMemory",
                        bytes: needs.size,
                    };
                    continue;
                }
                Err(e) => {
                    last = VkError::from_call("vkAllocateMemory", e);
                    continue;
                }
            };
            shared.count_allocation();
            match Self::finish(shared, raw, memory, size, flags) {
                Ok(buffer) => return Ok(buffer),
                Err(e) => {
                    // SAFETY: the memory is bound to nothing that outlives this.
                    unsafe { device.free_memory(memory, None) };
                    last = e;
                }
            }
        }
        // SAFETY: the buffer is bound to no memory and used by no command.
        unsafe { device.destroy_buffer(raw, None) };
        Err(last)
    }

    fn finish(
        shared: &Arc<Shared>,
        raw: vk::Buffer,
        memory: vk::DeviceMemory,
        size: u64,
        flags: vk::MemoryPropertyFlags,
    ) -> Result<Buffer> {
        let device = &shared.device;
        // SAFETY: fresh buffer and memory of the size and type its requirements asked for.
        unsafe { device.bind_buffer_memory(raw, memory, 0) }.during("vkBindBufferMemory")?;
        let mapped = if flags.contains(HOST) {
            // SAFETY: host-visible memory, mapped once for its whole life and unmapped by
            // freeing it in `Drop`.
            let ptr = unsafe {
                device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            }
            .during("vkMapMemory")?;
            let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| {
                VkError::from_call("vkMapMemory", vk::Result::ERROR_MEMORY_MAP_FAILED)
            })?;
            // SAFETY: the mapping covers `size` bytes (the allocation is at least that).
            unsafe { ptr.as_ptr().write_bytes(0, size as usize) };
            Some(Mapped(ptr))
        } else {
            None
        };
        if mapped.is_none() {
            crate::batch::one_off(shared, |device, cmd| {
                // SAFETY: `cmd` is recording and the buffer is alive and bound to memory;
                // filling the whole size (a multiple of 4) is within bounds.
                unsafe { device.cmd_fill_buffer(cmd, raw, 0, vk::WHOLE_SIZE, 0) };
            })?;
        }
        Ok(Buffer {
            alloc: Arc::new(Allocation {
                shared: Arc::clone(shared),
                raw,
                memory,
            }),
            size,
            mapped,
        })
    }

    /// Size in bytes (a multiple of 4).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size in 32-bit words, the unit of every shader offset.
    pub fn words(&self) -> usize {
        (self.size / 4) as usize
    }

    /// Whether the host reads and writes the memory directly (no staging copy).
    pub fn is_mapped(&self) -> bool {
        self.mapped.is_some()
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(VkError::shape(
                "buffer copy",
                format!("bytes {offset}..+{len} outside a {}-byte buffer", self.size),
            )),
        }
    }

    /// Copies `bytes` into the buffer from byte `offset` on.
    pub fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.check(offset, bytes.len())?;
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(Mapped(ptr)) = &self.mapped {
            // SAFETY: the range was checked against the mapped size; `&mut self` excludes
            // other host access, and no device work is in flight (see `Mapped`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    ptr.as_ptr().add(offset as usize),
                    bytes.len(),
                );
            }
            return Ok(());
        }
        let shared = &self.alloc.shared;
        let mut staging = Buffer::staging(shared, bytes.len() as u64)?;
        staging.write(0, bytes)?;
        transfer(
            shared,
            staging.alloc.raw,
            0,
            self.alloc.raw,
            offset,
            bytes.len() as u64,
        )
    }

    /// Copies bytes of the buffer from byte `offset` on into `out`.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<()> {
        self.check(offset, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        if let Some(Mapped(ptr)) = &self.mapped {
            // SAFETY: the range was checked against the mapped size; no host write can run
            // while `&self` is held, and no device work is in flight (see `Mapped`).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ptr.as_ptr().add(offset as usize),
                    out.as_mut_ptr(),
                    out.len(),
                );
            }
            return Ok(());
        }
        let shared = &self.alloc.shared;
        let staging = Buffer::staging(shared, out.len() as u64)?;
        transfer(
            shared,
            self.alloc.raw,
            offset,
            staging.alloc.raw,
            0,
            out.len() as u64,
        )?;
        staging.read(0, out)
    }

    /// Writes f32 values from element `offset` on.
    pub fn write_f32(&mut self, offset: usize, values: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(offset as u64 * 4, &bytes)
    }

    /// Writes u32 values from element `offset` on.
    pub fn write_u32(&mut self, offset: usize, values: &[u32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(offset as u64 * 4, &bytes)
    }

    /// Reads `len` f32 values from element `offset` on.
    pub fn read_f32(&self, offset: usize, len: usize) -> Result<Vec<f32>> {
        let mut bytes = vec![0u8; len * 4];
        self.read(offset as u64 * 4, &mut bytes)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        // SAFETY: every batch that binds this buffer holds this allocation, so the last
        // holder is gone and no command buffer names it any more; every submission is waited
        // for. Freeing the memory also unmaps it.
        unsafe {
            self.shared.device.destroy_buffer(self.raw, None);
            self.shared.device.free_memory(self.memory, None);
        }
    }
}

fn memory_type(
    props: &vk::PhysicalDeviceMemoryProperties,
    allowed: u32,
    flags: vk::MemoryPropertyFlags,
) -> Option<u32> {
    (0..props.memory_type_count).find(|&i| {
        allowed & (1 << i) != 0
            && props.memory_types[i as usize]
                .property_flags
                .contains(flags)
    })
}

/// Copies bytes between buffers with a one-off command buffer, and waits.
fn transfer(
    shared: &Arc<Shared>,
    src: vk::Buffer,
    src_offset: u64,
    dst: vk::Buffer,
    dst_offset: u64,
    size: u64,
) -> Result<()> {
    let region = [vk::BufferCopy {
        src_offset,
        dst_offset,
        size,
    }];
    crate::batch::one_off(shared, |device, cmd| {
        // SAFETY: `cmd` is recording; both buffers are alive for the whole call and the
        // ranges were checked by the caller.
        unsafe { device.cmd_copy_buffer(cmd, src, dst, &region) };
    })
}
