//! `cl_khr_command_buffer`: a batch's kernels recorded once into a command buffer and replayed
//! with one enqueue per step, where the driver offers the extension in a revision Tern calls
//! correctly. Elsewhere (or with [`NO_COMMAND_BUFFER_ENV`] set) every kernel is enqueued on
//! its own, as on any OpenCL 1.2 device.
//!
//! # Which revisions are used, and why
//!
//! The extension is provisional and its revisions differ: a wrong prototype would be memory
//! corruption, not an error. Tern calls five entry points, with the prototypes of revision
//! 0.9.0 (the first, OpenCL-Headers of 2021-11-17, and the one PoCL 3.1 implements and
//! reports; the installed headers of 2023-02-06 spell the same):
//!
//! ```c
//! cl_command_buffer_khr clCreateCommandBufferKHR(cl_uint num_queues,
//!     const cl_command_queue *queues, const cl_command_buffer_properties_khr *properties,
//!     cl_int *errcode_ret);
//! cl_int clCommandNDRangeKernelKHR(cl_command_buffer_khr command_buffer,
//!     cl_command_queue command_queue, const cl_ndrange_kernel_command_properties_khr *properties,
//!     cl_kernel kernel, cl_uint work_dim, const size_t *global_work_offset,
//!     const size_t *global_work_size, const size_t *local_work_size,
//!     cl_uint num_sync_points_in_wait_list, const cl_sync_point_khr *sync_point_wait_list,
//!     cl_sync_point_khr *sync_point, cl_mutable_command_khr *mutable_handle);
//! cl_int clFinalizeCommandBufferKHR(cl_command_buffer_khr command_buffer);
//! cl_int clEnqueueCommandBufferKHR(cl_uint num_queues, cl_command_queue *queues,
//!     cl_command_buffer_khr command_buffer, cl_uint num_events_in_wait_list,
//!     const cl_event *event_wait_list, cl_event *event);
//! cl_int clReleaseCommandBufferKHR(cl_command_buffer_khr command_buffer);
//! ```
//!
//! OpenCL-Headers keep these five unchanged through revision 0.9.8 (0.9.5 renamed the
//! properties type of `clCommandNDRangeKernelKHR` to `cl_command_properties_khr`, the same
//! `cl_properties`; the other commands gained a properties argument then, but Tern records
//! none of them). So revisions 0.9.0 to 0.9.8 are used and no other: a later one may change
//! a prototype again. The revision comes from `CL_DEVICE_EXTENSIONS_WITH_VERSION`, which only
//! OpenCL 3.0 devices answer; a device that cannot say its revision is not trusted with the
//! extension. Nor is one whose command buffers need queue properties (out of order,
//! profiling) that Tern's plain in-order queue lacks.
//!
//! Every call is made the way all those revisions accept: one queue at creation, recording
//! with a null `command_queue` (the one queue), no command properties and no mutable handle,
//! replay on the queue of creation (`num_queues` 0). Each kernel waits on the sync point of
//! the one before, so the order holds whatever a revision says of in-order command buffers.

use std::ffi::{CStr, c_void};
use std::fmt;
use std::ptr;
use std::sync::Arc;

use crate::api::{self, Api, Handle, Int};
use crate::error::ClError;
use crate::gpu::{Kernel, Shared};

/// The environment variable that, set to anything but empty or `0`, keeps every device from
/// using command buffers (each kernel is then enqueued on its own): a way around a driver
/// whose command buffers misbehave, and a way to run a whole suite on the fallback. Read
/// when a device is opened; [`crate::Gpu::use_command_buffers`] chooses per device.
pub const NO_COMMAND_BUFFER_ENV: &str = "TERN_OPENCL_NO_COMMAND_BUFFER";

/// The first and last revisions whose entry points match the prototypes Tern calls.
const FIRST: ExtensionRevision = ExtensionRevision::new(0, 9, 0);
const LAST: ExtensionRevision = ExtensionRevision::new(0, 9, 8);

/// Whether command buffers are off for every device of this process ([`NO_COMMAND_BUFFER_ENV`]).
pub(crate) fn off_by_env() -> bool {
    std::env::var_os(NO_COMMAND_BUFFER_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A revision of an extension, as `CL_DEVICE_EXTENSIONS_WITH_VERSION` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExtensionRevision {
    /// The major version.
    pub major: u32,
    /// The minor version.
    pub minor: u32,
    /// The patch version.
    pub patch: u32,
}

impl ExtensionRevision {
    const fn new(major: u32, minor: u32, patch: u32) -> ExtensionRevision {
        ExtensionRevision {
            major,
            minor,
            patch,
        }
    }

    /// A packed `cl_version`: 10 bits of major, 10 of minor, 12 of patch.
    fn from_cl(version: u32) -> ExtensionRevision {
        ExtensionRevision::new(version >> 22, (version >> 12) & 0x3FF, version & 0xFFF)
    }
}

impl fmt::Display for ExtensionRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether a device's `cl_khr_command_buffer` is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandBufferSupport {
    /// The device lacks the extension.
    Absent,
    /// Batches are recorded into command buffers (unless turned off).
    Usable {
        /// The revision the device implements.
        revision: ExtensionRevision,
    },
    /// The device lists the extension, but Tern does not trust it with its calls.
    Unusable(CommandBufferUnusable),
}

/// Why a device's `cl_khr_command_buffer` is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandBufferUnusable {
    /// The device cannot say which revision it implements (it is not an OpenCL 3.0 device).
    UnknownRevision,
    /// A revision whose prototypes may differ from those Tern calls.
    Revision(ExtensionRevision),
    /// Command buffers need these queue properties (a `cl_command_queue_properties`), which
    /// Tern's in-order queue lacks.
    QueueProperties(u64),
    /// The driver does not answer this query.
    Unanswered(&'static str),
    /// The driver does not return this entry point.
    MissingEntryPoint(&'static str),
}

impl fmt::Display for CommandBufferUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandBufferUnusable::UnknownRevision => write!(f, "revision unknown"),
            CommandBufferUnusable::Revision(r) => write!(f, "revision {r}, not {FIRST} to {LAST}"),
            CommandBufferUnusable::QueueProperties(p) => write!(f, "needs queue properties {p:#x}"),
            CommandBufferUnusable::Unanswered(query) => write!(f, "no answer to {query}"),
            CommandBufferUnusable::MissingEntryPoint(name) => write!(f, "no {name}"),
        }
    }
}

type CreateFn = unsafe extern "C" fn(u32, *const Handle, *const u64, *mut Int) -> Handle;
type RecordKernelFn = unsafe extern "C" fn(
    Handle,
    Handle,
    *const u64,
    Handle,
    u32,
    *const usize,
    *const usize,
    *const usize,
    u32,
    *const u32,
    *mut u32,
    *mut Handle,
) -> Int;
type FinalizeFn = unsafe extern "C" fn(Handle) -> Int;
type EnqueueFn =
    unsafe extern "C" fn(u32, *mut Handle, Handle, u32, *const Handle, *mut Handle) -> Int;
type ReleaseFn = unsafe extern "C" fn(Handle) -> Int;

/// A device's command-buffer entry points (revision 0.9.0's prototypes, see the module
/// documentation), resolved once when it is enumerated, and what its command buffers can do.
#[derive(Clone, Copy)]
pub(crate) struct Entries {
    create: CreateFn,
    record_kernel: RecordKernelFn,
    finalize: FinalizeFn,
    enqueue: EnqueueFn,
    release: ReleaseFn,
    /// Whether a command buffer may be enqueued again while a run of it is pending; without
    /// it a replay waits for the queue to drain first.
    simultaneous_use: bool,
}

/// Whether device `device` of `platform` (of OpenCL version string `version`, listing
/// `cl_khr_command_buffer` or not) has command buffers Tern may use, and their entry points
/// where it has.
pub(crate) fn probe(
    api: &Api,
    platform: Handle,
    device: Handle,
    version: &str,
    listed: bool,
) -> (CommandBufferSupport, Option<Entries>) {
    if !listed {
        return (CommandBufferSupport::Absent, None);
    }
    match usable(api, platform, device, version) {
        Ok((revision, entries)) => (CommandBufferSupport::Usable { revision }, Some(entries)),
        Err(why) => (CommandBufferSupport::Unusable(why), None),
    }
}

fn usable(
    api: &Api,
    platform: Handle,
    device: Handle,
    version: &str,
) -> Result<(ExtensionRevision, Entries), CommandBufferUnusable> {
    let revision = revision(api, device, version).ok_or(CommandBufferUnusable::UnknownRevision)?;
    if !(FIRST..=LAST).contains(&revision) {
        return Err(CommandBufferUnusable::Revision(revision));
    }
    let query = |param, name| {
        let mut value = 0u64;
        // SAFETY: a `cl_bitfield` query into a local of that size.
        let status = unsafe {
            (api.clGetDeviceInfo)(device, param, 8, (&raw mut value).cast(), ptr::null_mut())
        };
        if status == api::SUCCESS {
            Ok(value)
        } else {
            Err(CommandBufferUnusable::Unanswered(name))
        }
    };
    let required = query(
        api::DEVICE_COMMAND_BUFFER_REQUIRED_QUEUE_PROPERTIES_KHR,
        "CL_DEVICE_COMMAND_BUFFER_REQUIRED_QUEUE_PROPERTIES_KHR",
    )?;
    if required != 0 {
        return Err(CommandBufferUnusable::QueueProperties(required));
    }
    let capabilities = query(
        api::DEVICE_COMMAND_BUFFER_CAPABILITIES_KHR,
        "CL_DEVICE_COMMAND_BUFFER_CAPABILITIES_KHR",
    )?;
    let resolve = |name: &'static CStr| {
        // SAFETY: a NUL-terminated name and a platform handle of this library.
        let f = unsafe { (api.clGetExtensionFunctionAddressForPlatform)(platform, name.as_ptr()) };
        if f.is_null() {
            Err(CommandBufferUnusable::MissingEntryPoint(
                name.to_str().unwrap_or("?"),
            ))
        } else {
            Ok(f)
        }
    };
    let create = resolve(c"clCreateCommandBufferKHR")?;
    let record_kernel = resolve(c"clCommandNDRangeKernelKHR")?;
    let finalize = resolve(c"clFinalizeCommandBufferKHR")?;
    let enqueue = resolve(c"clEnqueueCommandBufferKHR")?;
    let release = resolve(c"clReleaseCommandBufferKHR")?;
    // SAFETY: each pointer is the driver's entry point of that name, for a revision (checked
    // above) whose prototype is the type it becomes (see the module documentation); the
    // pointers are used only while the library, kept open by `Shared`, is loaded.
    let entries = unsafe {
        Entries {
            create: std::mem::transmute::<*mut c_void, CreateFn>(create),
            record_kernel: std::mem::transmute::<*mut c_void, RecordKernelFn>(record_kernel),
            finalize: std::mem::transmute::<*mut c_void, FinalizeFn>(finalize),
            enqueue: std::mem::transmute::<*mut c_void, EnqueueFn>(enqueue),
            release: std::mem::transmute::<*mut c_void, ReleaseFn>(release),
            simultaneous_use: capabilities & api::COMMAND_BUFFER_CAPABILITY_SIMULTANEOUS_USE_KHR
                != 0,
        }
    };
    Ok((revision, entries))
}

/// The revision of `cl_khr_command_buffer` `device` implements, where it can say: only an
/// OpenCL 3.0 device answers `CL_DEVICE_EXTENSIONS_WITH_VERSION`.
fn revision(api: &Api, device: Handle, version: &str) -> Option<ExtensionRevision> {
    let major: u32 = version
        .strip_prefix("OpenCL ")?
        .split(['.', ' '])
        .next()?
        .parse()
        .ok()?;
    if major < 3 {
        return None;
    }
    let query = |size, value: *mut c_void, size_ret| {
        // SAFETY: `value` has room for `size` bytes (or is null with size 0).
        unsafe {
            (api.clGetDeviceInfo)(
                device,
                api::DEVICE_EXTENSIONS_WITH_VERSION,
                size,
                value,
                size_ret,
            )
        }
    };
    let mut size = 0usize;
    if query(0, ptr::null_mut(), &mut size) != api::SUCCESS {
        return None;
    }
    let mut bytes = vec![0u8; size];
    if query(size, bytes.as_mut_ptr().cast(), ptr::null_mut()) != api::SUCCESS {
        return None;
    }
    extension_revision(&bytes, "cl_khr_command_buffer")
}

/// The revision of extension `name` in `cl_name_version` records (a `cl_version`, then a
/// NUL-padded name of 64 bytes).
fn extension_revision(records: &[u8], name: &str) -> Option<ExtensionRevision> {
    const RECORD: usize = 4 + 64;
    if records.len() % RECORD != 0 {
        return None;
    }
    records.chunks_exact(RECORD).find_map(|r| {
        let (version, text) = r.split_at(4);
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        (text == name.as_bytes()).then(|| {
            ExtensionRevision::from_cl(u32::from_ne_bytes([
                version[0], version[1], version[2], version[3],
            ]))
        })
    })
}

/// A finalized command buffer of a batch's kernels, released when dropped.
pub(crate) struct CommandBuffer {
    shared: Arc<Shared>,
    entries: Entries,
    handle: Handle,
}

// SAFETY: OpenCL makes enqueueing and releasing a command buffer thread-safe; recording
// happens before the value exists, so no thread can see it half made.
unsafe impl Send for CommandBuffer {}
// SAFETY: shared references only enqueue it.
unsafe impl Sync for CommandBuffer {}

impl CommandBuffer {
    /// Records `kernels` (each with its arguments set, over its global and local ranges), in
    /// order, on `shared`'s queue, and finalizes the command buffer. The kernels and the
    /// buffers they name must outlive it.
    pub(crate) fn record<'k>(
        shared: &Arc<Shared>,
        entries: Entries,
        kernels: impl Iterator<Item = (&'k Kernel, [usize; 3], [usize; 3])>,
    ) -> Result<CommandBuffer, ClError> {
        let simultaneous = [
            api::COMMAND_BUFFER_FLAGS_KHR,
            api::COMMAND_BUFFER_SIMULTANEOUS_USE_KHR,
            0,
        ];
        let properties = if entries.simultaneous_use {
            simultaneous.as_ptr()
        } else {
            ptr::null()
        };
        let mut status = 0;
        // SAFETY: one queue of this library, a zero-terminated property list (or none) that
        // outlives the call, and a status out-parameter.
        let handle = unsafe { (entries.create)(1, &shared.queue, properties, &mut status) };
        api::check("clCreateCommandBufferKHR", status)?;
        let buffer = CommandBuffer {
            shared: Arc::clone(shared),
            entries,
            handle,
        };
        let mut previous: Option<u32> = None;
        for (kernel, global, local) in kernels {
            let mut sync_point = 0u32;
            let (n_wait, wait) = match &previous {
                Some(p) => (1, p as *const u32),
                None => (0, ptr::null()),
            };
            // SAFETY: a command buffer in the recording state, the one queue (null), no
            // properties, a kernel of this context with every argument set, three-element
            // ranges and a wait list of `n_wait` sync points that outlive the call, and no
            // mutable handle.
            api::check("clCommandNDRangeKernelKHR", unsafe {
                (entries.record_kernel)(
                    handle,
                    ptr::null_mut(),
                    ptr::null(),
                    kernel.kernel,
                    3,
                    ptr::null(),
                    global.as_ptr(),
                    local.as_ptr(),
                    n_wait,
                    wait,
                    &mut sync_point,
                    ptr::null_mut(),
                )
            })?;
            previous = Some(sync_point);
        }
        // SAFETY: the command buffer is in the recording state.
        api::check("clFinalizeCommandBufferKHR", unsafe {
            (entries.finalize)(handle)
        })?;
        Ok(buffer)
    }

    /// Whether it runs on `shared`'s queue.
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Enqueues one run of every recorded kernel, without waiting. Where the device cannot
    /// run a command buffer that is still pending, first waits for the queue to drain.
    pub(crate) fn enqueue(&self) -> Result<(), ClError> {
        let s = &self.shared;
        if !self.entries.simultaneous_use {
            // SAFETY: the queue is this device's.
            api::check("clFinish", unsafe { (s.api.clFinish)(s.queue) })?;
        }
        // SAFETY: a finalized command buffer, run on the queue it was made for (none named),
        // with no events.
        api::check("clEnqueueCommandBufferKHR", unsafe {
            (self.entries.enqueue)(
                0,
                ptr::null_mut(),
                self.handle,
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }
}

impl Drop for CommandBuffer {
    fn drop(&mut self) {
        // SAFETY: the command buffer was created by this library and is released once; a run
        // still pending keeps it alive in the driver until it completes.
        unsafe { (self.entries.release)(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Gpu};

    fn record(version: u32, name: &str) -> Vec<u8> {
        let mut r = version.to_ne_bytes().to_vec();
        let mut text = [0u8; 64];
        text[..name.len()].copy_from_slice(name.as_bytes());
        r.extend(text);
        r
    }

    #[test]
    fn the_revision_is_read_from_the_name_version_records() {
        let mut records = record(0x40_0000, "cl_khr_icd");
        records.extend(record(0x9000, "cl_khr_command_buffer"));
        records.extend(record(0x9000, "cl_khr_command_buffer_mutable_dispatch"));
        assert_eq!(
            extension_revision(&records, "cl_khr_command_buffer"),
            Some(ExtensionRevision::new(0, 9, 0))
        );
        assert_eq!(extension_revision(&records, "cl_khr_fp16"), None);
        assert_eq!(extension_revision(&records[..67], "cl_khr_icd"), None);
        let v = (1 << 22) | (2 << 12) | 3;
        assert_eq!(
            ExtensionRevision::from_cl(v),
            ExtensionRevision::new(1, 2, 3)
        );
    }

    #[test]
    fn only_the_revisions_with_the_prototypes_called_are_supported() {
        for (major, minor, patch, ok) in [
            (0, 9, 0, true),
            (0, 9, 8, true),
            (0, 9, 9, false),
            (0, 8, 9, false),
            (1, 0, 0, false),
        ] {
            let r = ExtensionRevision::new(major, minor, patch);
            assert_eq!((FIRST..=LAST).contains(&r), ok, "{r}");
        }
    }

    /// Every replay runs the kernels again, whether the device lets a pending command buffer
    /// be enqueued again or a replay first waits for the queue to drain.
    #[test]
    fn each_replay_runs_again_with_or_without_simultaneous_use() {
        let required =
            std::env::var_os("TERN_OPENCL_TESTS").is_some_and(|v| !v.is_empty() && v != "0");
        for simultaneous_use in [true, false] {
            let mut gpu = match Gpu::open(None, 0) {
                Ok(g) => g,
                Err(e) if required => panic!("TERN_OPENCL_TESTS is set but: {e}"),
                Err(_) => return,
            };
            let shared = Arc::get_mut(&mut gpu.shared).expect("nothing made on it yet");
            let Some(entries) = shared.command_buffers.as_mut() else {
                return;
            };
            entries.simultaneous_use = simultaneous_use;
            assert!(gpu.use_command_buffers(true));
            let n = 300;
            let x = gpu.buffer(4 * n).unwrap();
            let y = gpu.buffer(4 * n).unwrap();
            gpu.write_f32(&x, &vec![1.0; n]).unwrap();
            gpu.write_f32(&y, &vec![0.5; n]).unwrap();
            let mut batch = Batch::new();
            gpu.add(&mut batch, x.view(0, n).unwrap(), y.view(0, n).unwrap())
                .unwrap();
            gpu.finalize(&mut batch).unwrap();
            assert!(batch.in_command_buffer());
            for _ in 0..3 {
                gpu.submit(&batch).unwrap();
            }
            let mut got = vec![0f32; n];
            gpu.read_f32(&x, &mut got).unwrap();
            assert!(got.iter().all(|&v| v == 2.5), "{simultaneous_use}: {got:?}");
            assert_eq!(gpu.command_buffers_recorded(), 1);
        }
    }
}
