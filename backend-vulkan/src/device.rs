//! Finding a Vulkan device and opening a compute queue on it.
//!
//! The loader library is opened at run time ([`ash::Entry::load`]), so Tern builds and runs
//! where Vulkan is absent and offers this backend only when a device answers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ash::vk;

use crate::error::{Context as _, Result, VkError};

/// What kind of processor a device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A GPU with its own memory, reached over a bus.
    Discrete,
    /// A GPU that shares the host's memory.
    Integrated,
    /// A GPU presented by a hypervisor to a virtual machine.
    Virtual,
    /// A software implementation such as Mesa's lavapipe.
    Cpu,
    /// Any other type the driver reports.
    Other,
}

/// One physical device and the capabilities the kernels care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its index in [`enumerate`]'s list, which [`Gpu::open`](crate::Gpu::open) takes.
    pub index: usize,
    /// The device's name as its driver reports it.
    pub name: String,
    /// What kind of processor it is; `--backend auto` takes GPUs only.
    pub kind: DeviceKind,
    /// (major, minor, patch) of the Vulkan API the device supports.
    pub api_version: (u32, u32, u32),
    /// Whether shaders can do f16 arithmetic, which
    /// [`Precision::F16`](crate::Precision::F16) needs.
    pub shader_float16: bool,
    /// Whether shaders can do 8-bit integer arithmetic.
    pub shader_int8: bool,
    /// 16-bit values in storage buffers.
    pub storage_16bit: bool,
    /// 8-bit values in storage buffers.
    pub storage_8bit: bool,
    /// Invocations per subgroup (Vulkan 1.1 devices only).
    pub subgroup_size: Option<u32>,
    /// Whether one of its queue families runs compute work.
    pub has_compute_queue: bool,
    /// The largest storage buffer a shader can address, in bytes.
    pub max_storage_buffer_range: u32,
}

/// The loader and an instance; destroys the instance when dropped.
pub(crate) struct Instance {
    // Keeps the loader library open while the instance lives.
    _entry: ash::Entry,
    pub(crate) raw: ash::Instance,
    /// The API version the instance was created with.
    api: u32,
}

impl Instance {
    pub(crate) fn new() -> Result<Instance> {
        // SAFETY: loading the system's Vulkan loader runs its library initialisers; this is
        // the documented way to use a run-time loaded loader, and the entry is kept alive for
        // as long as any object made from it (it is a field of `Instance`).
        let entry = unsafe { ash::Entry::load() }.map_err(|e| VkError::NoLoader(e.to_string()))?;
        // SAFETY: a valid entry; the call has no preconditions.
        let loader_api = unsafe { entry.try_enumerate_instance_version() }
            .during("vkEnumerateInstanceVersion")?
            .unwrap_or(vk::API_VERSION_1_0);
        let api = if loader_api >= vk::API_VERSION_1_1 {
            vk::API_VERSION_1_2.min(loader_api)
        } else {
            vk::API_VERSION_1_0
        };
        let app = vk::ApplicationInfo::default()
            .application_name(c"tern")
            .engine_name(c"tern")
            .api_version(api);
        let info = vk::InstanceCreateInfo::default().application_info(&app);
        // SAFETY: `info` and `app` are valid, fully initialised structures that outlive the
        // call; no extensions or layers are requested.
        let raw = match unsafe { entry.create_instance(&info, None) } {
            Ok(raw) => raw,
            Err(vk::Result::ERROR_INCOMPATIBLE_DRIVER) => {
                return Err(VkError::NoDevice(
                    "the Vulkan loader found no driver (ICD)".into(),
                ));
            }
            Err(e) => return Err(VkError::from_call("vkCreateInstance", e)),
        };
        Ok(Instance {
            _entry: entry,
            raw,
            api,
        })
    }

    pub(crate) fn physical_devices(&self) -> Result<Vec<vk::PhysicalDevice>> {
        // SAFETY: the instance is valid for the lifetime of `self`.
        let devices = match unsafe { self.raw.enumerate_physical_devices() } {
            Ok(d) => d,
            Err(vk::Result::ERROR_INITIALIZATION_FAILED) => Vec::new(),
            Err(e) => return Err(VkError::from_call("vkEnumeratePhysicalDevices", e)),
        };
        if devices.is_empty() {
            return Err(VkError::NoDevice(
                "the Vulkan driver reports no physical device".into(),
            ));
        }
        Ok(devices)
    }

    pub(crate) fn info(&self, index: usize, pdev: vk::PhysicalDevice) -> DeviceInfo {
        // SAFETY: `pdev` came from this instance's enumeration.
        let props = unsafe { self.raw.get_physical_device_properties(pdev) };
        let name = props
            .device_name_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from("(unnamed)"));
        let kind = match props.device_type {
            vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
            vk::PhysicalDeviceType::CPU => DeviceKind::Cpu,
            _ => DeviceKind::Other,
        };
        let v = props.api_version;
        let mut info = DeviceInfo {
            index,
            name,
            kind,
            api_version: (
                vk::api_version_major(v),
                vk::api_version_minor(v),
                vk::api_version_patch(v),
            ),
            shader_float16: false,
            shader_int8: false,
            storage_16bit: false,
            storage_8bit: false,
            subgroup_size: None,
            has_compute_queue: compute_family(&self.raw, pdev).is_some(),
            max_storage_buffer_range: props.limits.max_storage_buffer_range,
        };
        // Features2 and properties2 are core in 1.1; the 1.2 structures only where both the
        // instance and the device speak 1.2, so that every chained structure is known.
        let usable = v.min(self.api);
        if usable >= vk::API_VERSION_1_1 {
            let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
            let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut subgroup);
            // SAFETY: the chain holds one structure of Vulkan 1.1, which both the instance
            // and the device support; all outlive the call.
            unsafe { self.raw.get_physical_device_properties2(pdev, &mut props2) };
            info.subgroup_size = Some(subgroup.subgroup_size);
            let mut s16 = vk::PhysicalDevice16BitStorageFeatures::default();
            let mut s8 = vk::PhysicalDevice8BitStorageFeatures::default();
            let mut f16i8 = vk::PhysicalDeviceShaderFloat16Int8Features::default();
            let mut features = vk::PhysicalDeviceFeatures2::default().push_next(&mut s16);
            if usable >= vk::API_VERSION_1_2 {
                features = features.push_next(&mut s8).push_next(&mut f16i8);
            }
            // SAFETY: every chained structure belongs to an API version both sides support
            // (checked above); all outlive the call.
            unsafe { self.raw.get_physical_device_features2(pdev, &mut features) };
            info.storage_16bit = s16.storage_buffer16_bit_access == vk::TRUE;
            info.storage_8bit = s8.storage_buffer8_bit_access == vk::TRUE;
            info.shader_float16 = f16i8.shader_float16 == vk::TRUE;
            info.shader_int8 = f16i8.shader_int8 == vk::TRUE;
        }
        info
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: every device made from this instance is destroyed before (the device owner
        // holds the instance and drops it last), and nothing uses `raw` after this.
        unsafe { self.raw.destroy_instance(None) };
    }
}

/// The first queue family that runs compute work.
fn compute_family(instance: &ash::Instance, pdev: vk::PhysicalDevice) -> Option<u32> {
    // SAFETY: `pdev` came from this instance's enumeration.
    let families = unsafe { instance.get_physical_device_queue_family_properties(pdev) };
    families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE) && f.queue_count > 0)
        .and_then(|i| u32::try_from(i).ok())
}

/// Every Vulkan device on this machine, or why there is none.
pub fn enumerate() -> Result<Vec<DeviceInfo>> {
    let instance = Instance::new()?;
    let devices = instance.physical_devices()?;
    Ok(devices
        .into_iter()
        .enumerate()
        .map(|(i, d)| instance.info(i, d))
        .collect())
}

/// An open logical device with one compute queue; shared by buffers, kernels and batches,
/// which keep it alive.
pub(crate) struct Shared {
    pub(crate) device: ash::Device,
    pub(crate) queue: Mutex<vk::Queue>,
    pub(crate) command_pool: Mutex<vk::CommandPool>,
    pub(crate) memory: vk::PhysicalDeviceMemoryProperties,
    pub(crate) limits: vk::PhysicalDeviceLimits,
    /// Device memory allocations made so far (buffers and staging).
    pub(crate) allocations: AtomicUsize,
    /// Command buffers recorded so far.
    pub(crate) recordings: AtomicUsize,
    // Dropped after the device (fields drop after `Drop::drop`).
    pub(crate) _instance: Instance,
}

impl Shared {
    pub(crate) fn open(index: usize) -> Result<(Shared, DeviceInfo)> {
        let instance = Instance::new()?;
        let devices = instance.physical_devices()?;
        let count = devices.len();
        let pdev = *devices
            .get(index)
            .ok_or(VkError::NoSuchDevice { index, count })?;
        let info = instance.info(index, pdev);
        let family = compute_family(&instance.raw, pdev).ok_or_else(|| {
            VkError::NoDevice(format!(
                "device {index} ({}) has no compute queue",
                info.name
            ))
        })?;
        let priorities = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&priorities)];
        // f16 arithmetic for the kernels that offer it, where the device has it (reported
        // only for Vulkan 1.2 devices, where the structure is core).
        let mut float16 =
            vk::PhysicalDeviceShaderFloat16Int8Features::default().shader_float16(true);
        let mut create = vk::DeviceCreateInfo::default().queue_create_infos(&queues);
        if info.shader_float16 {
            create = create.push_next(&mut float16);
        }
        // SAFETY: `pdev` belongs to `instance`; the create info and everything it points to
        // outlive the call; the one feature that may be enabled is one the device reported,
        // through a structure of its (and the instance's) API version; no extensions.
        let device =
            unsafe { instance.raw.create_device(pdev, &create, None) }.during("vkCreateDevice")?;
        // SAFETY: queue 0 of `family` was requested in `create`.
        let queue = unsafe { device.get_device_queue(family, 0) };
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: a valid device and create info.
        let pool = match unsafe { device.create_command_pool(&pool_info, None) } {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: nothing was created from the device yet.
                unsafe { device.destroy_device(None) };
                return Err(VkError::from_call("vkCreateCommandPool", e));
            }
        };
        // SAFETY: `pdev` belongs to `instance`.
        let memory = unsafe { instance.raw.get_physical_device_memory_properties(pdev) };
        // SAFETY: as above.
        let limits = unsafe { instance.raw.get_physical_device_properties(pdev) }.limits;
        Ok((
            Shared {
                device,
                queue: Mutex::new(queue),
                command_pool: Mutex::new(pool),
                memory,
                limits,
                allocations: AtomicUsize::new(0),
                recordings: AtomicUsize::new(0),
                _instance: instance,
            },
            info,
        ))
    }

    pub(crate) fn count_allocation(&self) {
        self.allocations.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let pool = *self
            .command_pool
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        // SAFETY: every buffer, kernel and batch holds an `Arc<Shared>`, so when this runs
        // none is left; waiting for idle first means no submitted work still runs.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.device.destroy_command_pool(pool, None);
            self.device.destroy_device(None);
        }
    }
}

/// One line for a device listing (`tern devices`): index, name, kind, API version, largest
/// storage buffer and the optional features faster kernels may use.
impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor, patch) = self.api_version;
        let mut features = Vec::new();
        for (has, name) in [
            (self.shader_float16, "shaderFloat16"),
            (self.shader_int8, "shaderInt8"),
            (self.storage_16bit, "16-bit storage"),
            (self.storage_8bit, "8-bit storage"),
        ] {
            if has {
                features.push(name.to_string());
            }
        }
        if let Some(n) = self.subgroup_size {
            features.push(format!("subgroups of {n}"));
        }
        let kind = match self.kind {
            DeviceKind::Discrete => "discrete GPU",
            DeviceKind::Integrated => "integrated GPU",
            DeviceKind::Virtual => "virtual GPU",
            DeviceKind::Cpu => "CPU implementation (not picked by --backend auto)",
            DeviceKind::Other => "other",
        };
        let compute = if self.has_compute_queue {
            ""
        } else {
            ", no compute queue"
        };
        write!(
            f,
            "{}: {} ({kind}{compute}), Vulkan {major}.{minor}.{patch}, largest storage buffer \
             {} MiB; {}",
            self.index,
            self.name,
            self.max_storage_buffer_range >> 20,
            if features.is_empty() {
                "no optional features".to_string()
            } else {
                features.join(", ")
            }
        )
    }
}
