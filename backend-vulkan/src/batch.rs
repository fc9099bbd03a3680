//! Recording kernels into a command buffer, and submitting it.
//!
//! A [`Batch`] records dispatches in order, with a barrier after each so every kernel sees
//! the writes of the ones before it. Once recorded it can be submitted any number of times:
//! it holds every buffer it binds, so none can be freed under a recording kept for replay.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ash::vk;

use crate::device::Shared;
use crate::error::{Context as _, Result, VkError};
use crate::kernel::Kernel;
use crate::memory::{Allocation, Buffer};

/// Descriptor sets per pool; a batch adds pools as it needs them.
const SETS_PER_POOL: u32 = 64;
/// Storage-buffer descriptors per set at most (the widest kernel binds five).
const MAX_BINDINGS: u32 = 8;
/// How long a submission may run before the wait gives up, in nanoseconds.
const WAIT_NS: u64 = 120_000_000_000;

/// A command buffer being recorded, or recorded and ready to submit.
pub struct Batch {
    shared: Arc<Shared>,
    cmd: vk::CommandBuffer,
    pools: Vec<vk::DescriptorPool>,
    sets_left: u32,
    kernels: Vec<Arc<Kernel>>,
    /// Every buffer a dispatch binds, kept alive for as long as the recording.
    buffers: Vec<Arc<Allocation>>,
    dispatches: usize,
    ended: bool,
}

impl Batch {
    pub(crate) fn new(shared: &Arc<Shared>) -> Result<Batch> {
        let batch = Self::begin(shared)?;
        shared.recordings.fetch_add(1, Ordering::Relaxed);
        Ok(batch)
    }

    fn begin(shared: &Arc<Shared>) -> Result<Batch> {
        let cmd = allocate_command_buffer(shared)?;
        let batch = Batch {
            shared: Arc::clone(shared),
            cmd,
            pools: Vec::new(),
            sets_left: 0,
            kernels: Vec::new(),
            buffers: Vec::new(),
            dispatches: 0,
            ended: false,
        };
        let begin = vk::CommandBufferBeginInfo::default();
        // SAFETY: a freshly allocated primary command buffer in the initial state.
        unsafe { shared.device.begin_command_buffer(cmd, &begin) }
            .during("vkBeginCommandBuffer")?;
        Ok(batch)
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.dispatches
    }

    fn descriptor_set(&mut self, kernel: &Kernel) -> Result<vk::DescriptorSet> {
        let device = &self.shared.device;
        if self.sets_left == 0 {
            let sizes = [vk::DescriptorPoolSize {
                ty: vk::DescriptorType::STORAGE_BUFFER,
                descriptor_count: SETS_PER_POOL * MAX_BINDINGS,
            }];
            let info = vk::DescriptorPoolCreateInfo::default()
                .max_sets(SETS_PER_POOL)
                .pool_sizes(&sizes);
            // SAFETY: valid device and create info.
            let pool = unsafe { device.create_descriptor_pool(&info, None) }
                .during("vkCreateDescriptorPool")?;
            self.pools.push(pool);
            self.sets_left = SETS_PER_POOL;
        }
        let pool = *self.pools.last().expect("a pool was just ensured");
        let layouts = [kernel.set_layout];
        let info = vk::DescriptorSetAllocateInfo::default()
            .descriptor_pool(pool)
            .set_layouts(&layouts);
        // SAFETY: the pool has room for one more set of at most MAX_BINDINGS buffers.
        let sets =
            unsafe { device.allocate_descriptor_sets(&info) }.during("vkAllocateDescriptorSets")?;
        self.sets_left -= 1;
        Ok(sets[0])
    }

    /// Records `kernel` over `groups` workgroups with `buffers` at bindings 0.. and `push`
    /// as its push constants, then a barrier.
    pub(crate) fn dispatch(
        &mut self,
        kernel: &Arc<Kernel>,
        buffers: &[&Buffer],
        push: &[u32],
        groups: [u32; 3],
    ) -> Result<()> {
        if self.ended {
            return Err(VkError::shape(
                kernel.name,
                "the batch was already submitted; record a new one",
            ));
        }
        if buffers.len() != kernel.bindings as usize || push.len() != kernel.push_words as usize {
            return Err(VkError::shape(
                kernel.name,
                format!(
                    "{} buffers and {} push words given, the kernel takes {} and {}",
                    buffers.len(),
                    push.len(),
                    kernel.bindings,
                    kernel.push_words
                ),
            ));
        }
        let max = self.shared.limits.max_compute_work_group_count;
        if groups.iter().zip(max).any(|(&g, m)| g > m) {
            return Err(VkError::shape(
                kernel.name,
                format!("{groups:?} workgroups exceed the device's {max:?}"),
            ));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        for b in buffers {
            if !Arc::ptr_eq(&b.alloc.shared, &self.shared) {
                return Err(VkError::shape(kernel.name, "a buffer of another device"));
            }
        }
        let set = self.descriptor_set(kernel)?;
        let infos: Vec<[vk::DescriptorBufferInfo; 1]> = buffers
            .iter()
            .map(|b| {
                [vk::DescriptorBufferInfo::default()
                    .buffer(b.alloc.raw)
                    .range(vk::WHOLE_SIZE)]
            })
            .collect();
        let writes: Vec<vk::WriteDescriptorSet> = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                vk::WriteDescriptorSet::default()
                    .dst_set(set)
                    .dst_binding(i as u32)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .buffer_info(info)
            })
            .collect();
        let push_bytes: Vec<u8> = push.iter().flat_map(|w| w.to_le_bytes()).collect();
        let device = &self.shared.device;
        let barrier = [vk::MemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(
                vk::AccessFlags::SHADER_READ
                    | vk::AccessFlags::SHADER_WRITE
                    | vk::AccessFlags::TRANSFER_READ,
            )];
        // SAFETY: the set was allocated with the kernel's layout and every write names a
        // live buffer of this device; the command buffer is recording; the push constants
        // match the layout's single range in size; group counts are within the limits.
        unsafe {
            device.update_descriptor_sets(&writes, &[]);
            device.cmd_bind_pipeline(self.cmd, vk::PipelineBindPoint::COMPUTE, kernel.pipeline);
            device.cmd_bind_descriptor_sets(
                self.cmd,
                vk::PipelineBindPoint::COMPUTE,
                kernel.layout,
                0,
                &[set],
                &[],
            );
            if !push_bytes.is_empty() {
                device.cmd_push_constants(
                    self.cmd,
                    kernel.layout,
                    vk::ShaderStageFlags::COMPUTE,
                    0,
                    &push_bytes,
                );
            }
            device.cmd_dispatch(self.cmd, groups[0], groups[1], groups[2]);
            device.cmd_pipeline_barrier(
                self.cmd,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
                vk::DependencyFlags::empty(),
                &barrier,
                &[],
                &[],
            );
        }
        if !self.kernels.iter().any(|k| Arc::ptr_eq(k, kernel)) {
            self.kernels.push(Arc::clone(kernel));
        }
        for b in buffers {
            if !self.buffers.iter().any(|a| Arc::ptr_eq(a, &b.alloc)) {
                self.buffers.push(Arc::clone(&b.alloc));
            }
        }
        self.dispatches += 1;
        Ok(())
    }

    /// Ends recording (once), submits, and waits for the device to finish.
    pub(crate) fn submit(&mut self) -> Result<()> {
        if !self.ended {
            // SAFETY: the command buffer is recording.
            unsafe { self.shared.device.end_command_buffer(self.cmd) }
                .during("vkEndCommandBuffer")?;
            self.ended = true;
        }
        submit_and_wait(&self.shared, self.cmd)
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let device = &self.shared.device;
        let pool = self
            .shared
            .command_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // SAFETY: every submission of this command buffer was waited for, so neither it nor
        // its descriptor sets are in use; the command pool is locked while freeing.
        unsafe {
            device.free_command_buffers(*pool, &[self.cmd]);
            for &p in &self.pools {
                device.destroy_descriptor_pool(p, None);
            }
        }
    }
}

fn allocate_command_buffer(shared: &Shared) -> Result<vk::CommandBuffer> {
    let pool = shared
        .command_pool
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let info = vk::CommandBufferAllocateInfo::default()
        .command_pool(*pool)
        .level(vk::CommandBufferLevel::PRIMARY)
        .command_buffer_count(1);
    // SAFETY: the pool is valid and locked (pools are externally synchronized).
    let cmds = unsafe { shared.device.allocate_command_buffers(&info) }
        .during("vkAllocateCommandBuffers")?;
    Ok(cmds[0])
}

fn submit_and_wait(shared: &Shared, cmd: vk::CommandBuffer) -> Result<()> {
    let device = &shared.device;
    // SAFETY: a valid device and default create info.
    let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
        .during("vkCreateFence")?;
    let cmds = [cmd];
    let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
    let result = {
        let queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `cmd` is fully recorded and not pending (every submission is waited for
        // before the next); the queue is locked (queues are externally synchronized).
        unsafe { device.queue_submit(*queue, &submit, fence) }.during("vkQueueSubmit")
    };
    let result = result.and_then(|()| {
        // SAFETY: the fence was created above and is signalled by the submission.
        match unsafe { device.wait_for_fences(&[fence], true, WAIT_NS) } {
            Ok(()) => Ok(()),
            Err(vk::Result::TIMEOUT) => {
                Err(VkError::DeviceLost("a submission that never finished"))
            }
            Err(e) => Err(VkError::from_call("vkWaitForFences", e)),
        }
    });
    if result.is_ok() {
        // SAFETY: the fence is signalled, so no queue operation uses it.
        unsafe { device.destroy_fence(fence, None) };
    } else {
        // The submission may still reference the fence: wait for the device to settle.
        // SAFETY: as above once the device is idle (or lost, where nothing runs).
        unsafe {
            let _ = device.device_wait_idle();
            device.destroy_fence(fence, None);
        }
    }
    result
}

/// Records `record` into a fresh command buffer, submits it and waits.
pub(crate) fn one_off(
    shared: &Arc<Shared>,
    record: impl FnOnce(&ash::Device, vk::CommandBuffer),
) -> Result<()> {
    let mut batch = Batch::begin(shared)?;
    record(&shared.device, batch.cmd);
    batch.submit()
}
