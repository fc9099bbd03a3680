//! Compute pipelines built from SPIR-V: every kernel binds `bindings` whole storage buffers
//! and takes its offsets and sizes as 32-bit push constants.

use std::sync::Arc;

use ash::vk;

use crate::device::Shared;
use crate::error::{Result, VkError};

/// One compute pipeline and the layouts it was built with.
pub struct Kernel {
    shared: Arc<Shared>,
    pub(crate) name: &'static str,
    module: vk::ShaderModule,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) bindings: u32,
    /// Push-constant words the shader declares.
    pub(crate) push_words: u32,
}

/// The SPIR-V words of `bytes`, checked for length and magic number.
fn spirv_words(name: &'static str, bytes: &[u8]) -> Result<Vec<u32>> {
    if bytes.len() % 4 != 0 || bytes.len() < 20 {
        return Err(VkError::BadSpirv(name));
    }
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if words[0] != 0x0723_0203 {
        return Err(VkError::BadSpirv(name));
    }
    Ok(words)
}

impl Kernel {
    pub(crate) fn new(
        shared: &Arc<Shared>,
        name: &'static str,
        spirv: &[u8],
        bindings: u32,
        push_words: u32,
    ) -> Result<Kernel> {
        let words = spirv_words(name, spirv)?;
        if push_words * 4 > shared.limits.max_push_constants_size {
            return Err(VkError::Unsupported {
                op: name,
                what: format!(
                    "{} bytes of push constants (the device allows {})",
                    push_words * 4,
                    shared.limits.max_push_constants_size
                ),
            });
        }
        let device = &shared.device;
        let fail = |result| VkError::Pipeline {
            shader: name,
            result,
        };
        let module_info = vk::ShaderModuleCreateInfo::default().code(&words);
        // SAFETY: `words` is SPIR-V with its magic number checked; the driver validates the
        // rest and reports failure as an error.
        let module = unsafe { device.create_shader_module(&module_info, None) }.map_err(fail)?;
        let mut kernel = Kernel {
            shared: Arc::clone(shared),
            name,
            module,
            set_layout: vk::DescriptorSetLayout::null(),
            layout: vk::PipelineLayout::null(),
            pipeline: vk::Pipeline::null(),
            bindings,
            push_words,
        };
        // From here `kernel`'s Drop destroys whatever was created if a step fails.
        let slots: Vec<_> = (0..bindings)
            .map(|b| {
                vk::DescriptorSetLayoutBinding::default()
                    .binding(b)
                    .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                    .descriptor_count(1)
                    .stage_flags(vk::ShaderStageFlags::COMPUTE)
            })
            .collect();
        let set_info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&slots);
        // SAFETY: valid device and create info whose array outlives the call.
        kernel.set_layout =
            unsafe { device.create_descriptor_set_layout(&set_info, None) }.map_err(fail)?;
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .offset(0)
            .size(push_words * 4)];
        let set_layouts = [kernel.set_layout];
        let mut layout_info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
        if push_words > 0 {
            layout_info = layout_info.push_constant_ranges(&ranges);
        }
        // SAFETY: valid device, set layout just created, arrays outlive the call.
        kernel.layout =
            unsafe { device.create_pipeline_layout(&layout_info, None) }.map_err(fail)?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        let info = [vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(kernel.layout)];
        // SAFETY: module and layout are valid and match the shader's declared interface
        // (bindings and push constants are given by the shader's table in `shaders`).
        let pipelines =
            unsafe { device.create_compute_pipelines(vk::PipelineCache::null(), &info, None) }
                .map_err(|(_, e)| fail(e))?;
        kernel.pipeline = pipelines[0];
        Ok(kernel)
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let device = &self.shared.device;
        // SAFETY: batches hold an `Arc<Kernel>` for each kernel they recorded, so none is in
        // use; destroying null handles is allowed.
        unsafe {
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_pipeline_layout(self.layout, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
            device.destroy_shader_module(self.module, None);
        }
    }
}
