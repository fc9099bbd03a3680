//! The devices an OpenCL library offers, numbered across its platforms, with what each can do.

use std::ffi::c_void;
use std::fmt;
use std::path::Path;
use std::ptr;
use std::sync::{Mutex, PoisonError};

use crate::api::{self, Api, Handle};
use crate::command_buffer::{self, CommandBufferSupport, Entries};
use crate::error::ClError;

/// What kind of device a platform reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A GPU (Mali, Adreno, PowerVR, ...).
    Gpu,
    /// A CPU implementation (PoCL, rusticl on llvmpipe): right for tests, not for speed.
    Cpu,
    /// An accelerator or a custom device.
    Other,
}

/// The optional extensions kernels may use, each with a fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// `cl_khr_fp16`: half arithmetic.
    pub fp16: bool,
    /// `cl_khr_subgroups`, `cl_intel_subgroups` or a `cl_qcom_` subgroup extension.
    pub subgroups: bool,
    /// A 4 x 8-bit integer dot product (`cl_khr_integer_dot_product`, or
    /// `cl_arm_integer_dot_product_int8`), which the fast matmuls use.
    pub integer_dot: Option<IntegerDot>,
    /// `cl_khr_command_buffer`: a step recorded once and replayed (listed; whether Tern uses
    /// it is [`DeviceInfo::command_buffers`]).
    pub command_buffer: bool,
}

impl Extensions {
    /// The extensions named in a device's space-separated extension string.
    pub fn parse(list: &str) -> Extensions {
        let has = |pred: &dyn Fn(&str) -> bool| list.split_whitespace().any(pred);
        Extensions {
            fp16: has(&|e| e == "cl_khr_fp16"),
            subgroups: has(&|e| {
                e == "cl_khr_subgroups"
                    || e == "cl_intel_subgroups"
                    || (e.starts_with("cl_qcom_")
                        && (e.contains("subgroup") || e.contains("sub_group")))
            }),
            integer_dot: if has(&|e| e == "cl_khr_integer_dot_product") {
                Some(IntegerDot::Khr)
            } else if has(&|e| e == "cl_arm_integer_dot_product_int8") {
                Some(IntegerDot::Arm)
            } else {
                None
            },
            command_buffer: has(&|e| e == "cl_khr_command_buffer"),
        }
    }
}

/// Which integer dot product a device offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegerDot {
    /// `cl_khr_integer_dot_product`: `dot(char4, char4)`.
    Khr,
    /// `cl_arm_integer_dot_product_int8`: `arm_dot(char4, char4)` (Mali).
    Arm,
}

/// One device, as [`enumerate`] numbers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its index across every platform, which `--device` and [`crate::Gpu::open`] take.
    pub index: usize,
    /// The platform's name ("Portable Computing Language", "rusticl", "ARM Platform").
    pub platform: String,
    /// The device's name.
    pub name: String,
    /// What kind of device it is.
    pub kind: DeviceKind,
    /// The OpenCL version it supports ("OpenCL 1.2 ...").
    pub version: String,
    /// The OpenCL C version its compiler takes ("OpenCL C 1.2 ...").
    pub c_version: String,
    /// The driver's version, part of the key of cached program binaries.
    pub driver_version: String,
    /// Parallel compute units.
    pub compute_units: u32,
    /// Most work-items in one work-group.
    pub max_work_group_size: usize,
    /// Bytes of global memory.
    pub global_memory: u64,
    /// Bytes of the largest single buffer.
    pub max_buffer: u64,
    /// Bytes of local (work-group shared) memory.
    pub local_memory: u64,
    /// The optional extensions it has.
    pub extensions: Extensions,
    /// Whether `fma` runs in hardware and f32 arithmetic keeps subnormals (CL_FP_FMA and
    /// CL_FP_DENORM): the kernels then call `fma` directly; elsewhere they build it from
    /// plain multiplies and adds, which a software `fma` (libclc's) would not match.
    pub hardware_fma: bool,
    /// Whether batches are recorded into command buffers (`cl_khr_command_buffer` in a
    /// revision whose entry points Tern calls correctly), or why not.
    pub command_buffers: CommandBufferSupport,
}

#[cfg(test)]
impl DeviceInfo {
    /// A GPU with hardware fma, no optional extension and tiny limits, for unit tests.
    pub(crate) fn for_tests() -> DeviceInfo {
        DeviceInfo {
            index: 0,
            platform: "p".into(),
            name: "d".into(),
            kind: DeviceKind::Gpu,
            version: "OpenCL 1.2".into(),
            c_version: "OpenCL C 1.2".into(),
            driver_version: "1".into(),
            compute_units: 1,
            max_work_group_size: 64,
            global_memory: 1,
            max_buffer: 1,
            local_memory: 1,
            extensions: Extensions::default(),
            hardware_fma: true,
            command_buffers: crate::command_buffer::CommandBufferSupport::Absent,
        }
    }
}

/// A device of the library, with its handle (valid for as long as the library is open).
pub(crate) struct Found {
    pub info: DeviceInfo,
    pub id: Handle,
    /// The command-buffer entry points, where they are used.
    pub command_buffers: Option<Entries>,
}

/// Every device of every platform of the OpenCL library at `library` (else the one
/// `TERN_OPENCL_LIB` names, else the first of [`crate::LIBRARY_NAMES`] found), in platform
/// order.
pub fn enumerate(library: Option<&Path>) -> Result<Vec<DeviceInfo>, ClError> {
    let api = Api::open(library)?;
    Ok(devices(&api)?.into_iter().map(|d| d.info).collect())
}

/// The devices of `api`'s platforms.
pub(crate) fn devices(api: &Api) -> Result<Vec<Found>, ClError> {
    // One enumeration at a time in a process: PoCL 3.1 reports no device to a thread that
    // asks while another is enumerating (seen in this crate's tests, which run in parallel).
    static ENUMERATION: Mutex<()> = Mutex::new(());
    let _one_at_a_time = ENUMERATION.lock().unwrap_or_else(PoisonError::into_inner);
    let mut n_platforms = 0u32;
    // SAFETY: asks only for the count, into a local.
    let status = unsafe { (api.clGetPlatformIDs)(0, ptr::null_mut(), &mut n_platforms) };
    if status == -1001 || n_platforms == 0 {
        return Err(ClError::NoDevice(format!(
            "the OpenCL library {} found no platform (no driver installed)",
            api.path.display()
        )));
    }
    api::check("clGetPlatformIDs", status)?;
    let mut platforms = vec![ptr::null_mut(); n_platforms as usize];
    // SAFETY: `platforms` has room for the `n_platforms` handles asked for.
    api::check("clGetPlatformIDs", unsafe {
        (api.clGetPlatformIDs)(n_platforms, platforms.as_mut_ptr(), ptr::null_mut())
    })?;
    let mut found = Vec::new();
    for platform in platforms {
        let platform_name = string(|size, value, size_ret| {
            // SAFETY: `value` has room for `size` bytes (or is null with size 0).
            unsafe { (api.clGetPlatformInfo)(platform, api::PLATFORM_NAME, size, value, size_ret) }
        })?;
        let mut n = 0u32;
        // SAFETY: asks only for the count, into a local.
        let status = unsafe {
            (api.clGetDeviceIDs)(platform, api::DEVICE_TYPE_ALL, 0, ptr::null_mut(), &mut n)
        };
        if status == api::DEVICE_NOT_FOUND || n == 0 {
            continue;
        }
        api::check("clGetDeviceIDs", status)?;
        let mut ids = vec![ptr::null_mut(); n as usize];
        // SAFETY: `ids` has room for the `n` handles asked for.
        api::check("clGetDeviceIDs", unsafe {
            (api.clGetDeviceIDs)(
                platform,
                api::DEVICE_TYPE_ALL,
                n,
                ids.as_mut_ptr(),
                ptr::null_mut(),
            )
        })?;
        for id in ids {
            let mut info = describe(api, id, found.len(), platform_name.clone())?;
            let (support, command_buffers) = command_buffer::probe(
                api,
                platform,
                id,
                &info.version,
                info.extensions.command_buffer,
            );
            info.command_buffers = support;
            found.push(Found {
                info,
                id,
                command_buffers,
            });
        }
    }
    if found.is_empty() {
        return Err(ClError::NoDevice(format!(
            "no platform of {} has a device",
            api.path.display()
        )));
    }
    Ok(found)
}

/// What device `id` is and can do.
fn describe(api: &Api, id: Handle, index: usize, platform: String) -> Result<DeviceInfo, ClError> {
    let info = |param| {
        move |size, value, size_ret| {
            // SAFETY: `value` has room for `size` bytes (or is null with size 0).
            unsafe { (api.clGetDeviceInfo)(id, param, size, value, size_ret) }
        }
    };
    let kind = match scalar::<u64>(info(api::DEVICE_TYPE))? {
        t if t & 4 != 0 => DeviceKind::Gpu,
        t if t & 2 != 0 => DeviceKind::Cpu,
        _ => DeviceKind::Other,
    };
    let fp_config = scalar::<u64>(info(api::DEVICE_SINGLE_FP_CONFIG))?;
    Ok(DeviceInfo {
        index,
        platform,
        name: string(info(api::DEVICE_NAME))?,
        kind,
        version: string(info(api::DEVICE_VERSION))?,
        c_version: string(info(api::DEVICE_OPENCL_C_VERSION))?,
        driver_version: string(info(api::DEVICE_DRIVER_VERSION))?,
        compute_units: scalar::<u32>(info(api::DEVICE_MAX_COMPUTE_UNITS))?,
        max_work_group_size: scalar::<usize>(info(api::DEVICE_MAX_WORK_GROUP_SIZE))?,
        global_memory: scalar::<u64>(info(api::DEVICE_GLOBAL_MEM_SIZE))?,
        max_buffer: scalar::<u64>(info(api::DEVICE_MAX_MEM_ALLOC_SIZE))?,
        local_memory: scalar::<u64>(info(api::DEVICE_LOCAL_MEM_SIZE))?,
        extensions: Extensions::parse(&string(info(api::DEVICE_EXTENSIONS))?),
        hardware_fma: fp_config & (api::FP_FMA | api::FP_DENORM) == api::FP_FMA | api::FP_DENORM,
        command_buffers: CommandBufferSupport::Absent,
    })
}

/// A fixed-size value from an info query.
fn scalar<T: Copy + Default>(
    query: impl Fn(usize, *mut c_void, *mut usize) -> api::Int,
) -> Result<T, ClError> {
    let mut value = T::default();
    api::check(
        "clGetDeviceInfo",
        query(size_of::<T>(), (&raw mut value).cast(), ptr::null_mut()),
    )?;
    Ok(value)
}

/// A string from an info query (NUL-terminated by OpenCL; lossy for odd bytes).
pub(crate) fn string(
    query: impl Fn(usize, *mut c_void, *mut usize) -> api::Int,
) -> Result<String, ClError> {
    let mut size = 0usize;
    api::check("clGet*Info", query(0, ptr::null_mut(), &mut size))?;
    let mut bytes = vec![0u8; size];
    api::check(
        "clGet*Info",
        query(size, bytes.as_mut_ptr().cast(), ptr::null_mut()),
    )?;
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(text).trim().to_string())
}

/// One line for a device listing (`tern devices`).
impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::Gpu => "GPU",
            DeviceKind::Cpu => "CPU implementation",
            DeviceKind::Other => "other",
        };
        let e = self.extensions;
        let mut extensions = Vec::new();
        for (has, name) in [
            (e.fp16, "fp16"),
            (e.subgroups, "subgroups"),
            (e.integer_dot.is_some(), "integer dot products"),
        ] {
            if has {
                extensions.push(name.to_string());
            }
        }
        match self.command_buffers {
            CommandBufferSupport::Unusable(why) => {
                extensions.push(format!("command buffers (not used: {why})"));
            }
            _ if e.command_buffer => extensions.push("command buffers".into()),
            _ => {}
        }
        write!(
            f,
            "{}: {} ({kind}, {}), {}, {} compute units, largest buffer {} MiB; {}",
            self.index,
            self.name,
            self.platform,
            self.c_version,
            self.compute_units,
            self.max_buffer >> 20,
            if extensions.is_empty() {
                "no optional extensions".to_string()
            } else {
                extensions.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommandBufferUnusable, ExtensionRevision};

    #[test]
    fn extensions_are_read_from_the_list() {
        let e = Extensions::parse("cl_khr_fp16 cl_arm_integer_dot_product_int8 cl_khr_icd");
        assert!(e.fp16 && !e.subgroups && !e.command_buffer);
        assert_eq!(e.integer_dot, Some(IntegerDot::Arm));
        let e = Extensions::parse("cl_arm_integer_dot_product_accumulate_int8");
        assert_eq!(e.integer_dot, None, "only the plain 4 x 8-bit dot is used");
        let e = Extensions::parse("cl_arm_integer_dot_product_int8 cl_khr_integer_dot_product");
        assert_eq!(e.integer_dot, Some(IntegerDot::Khr));
        let e = Extensions::parse("cl_intel_subgroups  cl_khr_command_buffer\n");
        assert!(e.subgroups && e.command_buffer && !e.fp16 && e.integer_dot.is_none());
        let e = Extensions::parse("cl_qcom_reqd_sub_group_size cl_khr_fp16x");
        assert!(e.subgroups && !e.fp16);
        assert_eq!(Extensions::parse(""), Extensions::default());
    }

    #[test]
    fn the_listing_says_whether_command_buffers_are_used() {
        let mut info = DeviceInfo {
            index: 0,
            platform: "p".into(),
            name: "d".into(),
            kind: DeviceKind::Gpu,
            version: "OpenCL 3.0".into(),
            c_version: "OpenCL C 1.2".into(),
            driver_version: "1".into(),
            compute_units: 1,
            max_work_group_size: 64,
            global_memory: 1 << 30,
            max_buffer: 1 << 28,
            local_memory: 1 << 15,
            extensions: Extensions::parse("cl_khr_command_buffer"),
            hardware_fma: true,
            command_buffers: CommandBufferSupport::Usable {
                revision: ExtensionRevision {
                    major: 0,
                    minor: 9,
                    patch: 0,
                },
            },
        };
        assert!(info.to_string().ends_with("; command buffers"), "{info}");
        info.command_buffers =
            CommandBufferSupport::Unusable(CommandBufferUnusable::Revision(ExtensionRevision {
                major: 0,
                minor: 9,
                patch: 9,
            }));
        assert!(
            info.to_string()
                .ends_with("; command buffers (not used: revision 0.9.9, not 0.9.0 to 0.9.8)"),
            "{info}"
        );
        info.command_buffers =
            CommandBufferSupport::Unusable(CommandBufferUnusable::UnknownRevision);
        assert!(
            info.to_string().contains("(not used: revision unknown)"),
            "{info}"
        );
        info.extensions = Extensions::default();
        info.command_buffers = CommandBufferSupport::Absent;
        assert!(
            info.to_string().ends_with("; no optional extensions"),
            "{info}"
        );
    }
}
