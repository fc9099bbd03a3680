//! An open device: its context and in-order queue, buffers in its memory, and programs built
//! from OpenCL C sources. Every handle is released when its owner drops; each owner keeps the
//! library open (an `Arc` of the entry points) for as long as it lives.

use std::ffi::{CString, c_void};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use crate::api::{self, Api, Handle};
use crate::device::{self, DeviceInfo};
use crate::error::ClError;

/// The library and the device's context and queue, shared by everything made on them.
struct Shared {
    api: Api,
    device: Handle,
    context: Handle,
    queue: Handle,
}

// SAFETY: OpenCL 1.2 makes every API call thread-safe but `clSetKernelArg`, which takes a
// kernel, not these handles; the context, queue and device may be used from any thread.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: every call made on these handles is thread-safe.
unsafe impl Sync for Shared {}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the queue and context were created by this library and are released once,
        // after every buffer, program and kernel (which hold this `Shared`) is gone.
        unsafe {
            (self.api.clReleaseCommandQueue)(self.queue);
            (self.api.clReleaseContext)(self.context);
        }
    }
}

/// One OpenCL device with a context and an in-order command queue.
pub struct Gpu {
    shared: Arc<Shared>,
    info: DeviceInfo,
}

impl Gpu {
    /// Opens device `index` (as [`device::enumerate`] numbers them) of the OpenCL library at
    /// `library` (else `TERN_OPENCL_LIB`, else the usual names).
    pub fn open(library: Option<&Path>, index: usize) -> Result<Gpu, ClError> {
        let api = Api::open(library)?;
        let mut devices = device::devices(&api)?;
        let count = devices.len();
        if index >= count {
            return Err(ClError::NoSuchDevice { index, count });
        }
        let found = devices.swap_remove(index);
        let mut status = 0;
        // SAFETY: one valid device handle of this library; no properties or callback.
        let context = unsafe {
            (api.clCreateContext)(
                ptr::null(),
                1,
                &found.id,
                ptr::null(),
                ptr::null_mut(),
                &mut status,
            )
        };
        api::check("clCreateContext", status)?;
        // SAFETY: the context was just made for this device; an in-order queue, no profiling.
        let queue = unsafe { (api.clCreateCommandQueue)(context, found.id, 0, &mut status) };
        if let Err(e) = api::check("clCreateCommandQueue", status) {
            // SAFETY: the context was created above and nothing else holds it.
            unsafe { (api.clReleaseContext)(context) };
            return Err(e);
        }
        Ok(Gpu {
            shared: Arc::new(Shared {
                api,
                device: found.id,
                context,
                queue,
            }),
            info: found.info,
        })
    }

    /// What the device is and can do.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// A buffer of `bytes` bytes of device memory (contents undefined until written).
    pub fn buffer(&self, bytes: usize) -> Result<Buffer, ClError> {
        let s = &self.shared;
        let mut status = 0;
        // SAFETY: a plain read-write buffer of this context, no host pointer.
        let mem = unsafe {
            (s.api.clCreateBuffer)(
                s.context,
                api::MEM_READ_WRITE,
                bytes.max(1),
                ptr::null_mut(),
                &mut status,
            )
        };
        api::check("clCreateBuffer", status)?;
        Ok(Buffer {
            shared: Arc::clone(s),
            mem,
            bytes,
        })
    }

    /// Copies `data` to the start of `buffer`, waiting until the copy is done.
    pub fn write_f32(&self, buffer: &Buffer, data: &[f32]) -> Result<(), ClError> {
        let bytes = size_of_val(data);
        buffer.fits("write", bytes)?;
        let s = &self.shared;
        // SAFETY: a blocking write of `bytes` bytes from `data`, which lives through the call,
        // into a buffer of at least that size.
        api::check("clEnqueueWriteBuffer", unsafe {
            (s.api.clEnqueueWriteBuffer)(
                s.queue,
                buffer.mem,
                1,
                0,
                bytes,
                data.as_ptr().cast(),
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    /// Copies the start of `buffer` into `out`, after every command enqueued before.
    pub fn read_f32(&self, buffer: &Buffer, out: &mut [f32]) -> Result<(), ClError> {
        let bytes = size_of_val(out);
        buffer.fits("read", bytes)?;
        let s = &self.shared;
        // SAFETY: a blocking read of `bytes` bytes into `out`, which lives through the call,
        // from a buffer of at least that size.
        api::check("clEnqueueReadBuffer", unsafe {
            (s.api.clEnqueueReadBuffer)(
                s.queue,
                buffer.mem,
                1,
                0,
                bytes,
                out.as_mut_ptr().cast(),
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    /// Builds `source` (named `name` in errors) for this device with the compiler options
    /// `options`; a build that fails gives the first line of the driver's log.
    pub fn program(
        &self,
        name: &'static str,
        source: &str,
        options: &str,
    ) -> Result<Program, ClError> {
        let s = &self.shared;
        let (text, len) = (source.as_ptr().cast(), source.len());
        let mut status = 0;
        // SAFETY: one source string of `len` bytes, alive through the call.
        let program =
            unsafe { (s.api.clCreateProgramWithSource)(s.context, 1, &text, &len, &mut status) };
        api::check("clCreateProgramWithSource", status)?;
        let program = Program {
            shared: Arc::clone(s),
            program,
        };
        let options = CString::new(options).map_err(|_| ClError::Shape {
            op: "program build",
            why: "compiler options hold a NUL byte".into(),
        })?;
        // SAFETY: builds the program for this context's one device, synchronously.
        let status = unsafe {
            (s.api.clBuildProgram)(
                program.program,
                1,
                &s.device,
                options.as_ptr(),
                ptr::null(),
                ptr::null_mut(),
            )
        };
        if status != api::SUCCESS {
            let log = program.build_log();
            let first = log
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no build log");
            return Err(ClError::Build {
                program: name,
                log: format!("{} ({})", first.trim(), crate::error::code_name(status)),
            });
        }
        Ok(program)
    }

    /// Runs `kernel` over `global` work-items (a multiple of `local`, when given) and returns
    /// without waiting: the queue is in order, so later reads see its results.
    pub fn run(&self, kernel: &Kernel, global: usize, local: Option<usize>) -> Result<(), ClError> {
        let s = &self.shared;
        let local_ptr = local.as_ref().map_or(ptr::null(), |l| l as *const usize);
        // SAFETY: a one-dimensional range over a kernel of this context whose arguments were
        // all set (`Kernel::arg_*`), without events.
        api::check("clEnqueueNDRangeKernel", unsafe {
            (s.api.clEnqueueNDRangeKernel)(
                s.queue,
                kernel.kernel,
                1,
                ptr::null(),
                &global,
                local_ptr,
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    /// Waits for every enqueued command to finish.
    pub fn finish(&self) -> Result<(), ClError> {
        // SAFETY: the queue is this device's.
        api::check("clFinish", unsafe {
            (self.shared.api.clFinish)(self.shared.queue)
        })
    }
}

/// Device memory, released when dropped.
pub struct Buffer {
    shared: Arc<Shared>,
    mem: Handle,
    bytes: usize,
}

impl Buffer {
    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn fits(&self, op: &'static str, bytes: usize) -> Result<(), ClError> {
        match bytes <= self.bytes {
            true => Ok(()),
            false => Err(ClError::Shape {
                op,
                why: format!("{bytes} bytes into a buffer of {}", self.bytes),
            }),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: the buffer was created by this context and is released once.
        unsafe { (self.shared.api.clReleaseMemObject)(self.mem) };
    }
}

/// A program built for the device, from which kernels are made.
pub struct Program {
    shared: Arc<Shared>,
    program: Handle,
}

impl Program {
    /// The kernel `name` of this program.
    pub fn kernel(&self, name: &str) -> Result<Kernel, ClError> {
        let s = &self.shared;
        let c_name = CString::new(name).map_err(|_| ClError::Shape {
            op: "kernel",
            why: "a kernel name holds a NUL byte".into(),
        })?;
        let mut status = 0;
        // SAFETY: a built program of this context and a NUL-terminated name.
        let kernel = unsafe { (s.api.clCreateKernel)(self.program, c_name.as_ptr(), &mut status) };
        api::check("clCreateKernel", status)?;
        Ok(Kernel {
            shared: Arc::clone(s),
            kernel,
        })
    }

    /// The driver's build log for this program (empty where it has none).
    fn build_log(&self) -> String {
        let s = &self.shared;
        let query = |size, value: *mut c_void, size_ret| {
            // SAFETY: `value` has room for `size` bytes (or is null with size 0).
            unsafe {
                (s.api.clGetProgramBuildInfo)(
                    self.program,
                    s.device,
                    api::PROGRAM_BUILD_LOG,
                    size,
                    value,
                    size_ret,
                )
            }
        };
        device::string(query).unwrap_or_default()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by this context and is released once.
        unsafe { (self.shared.api.clReleaseProgram)(self.program) };
    }
}

/// A kernel with its arguments, set one by one before it is run.
pub struct Kernel {
    shared: Arc<Shared>,
    kernel: Handle,
}

impl Kernel {
    /// Sets argument `index` to `buffer`.
    pub fn arg_buffer(&self, index: u32, buffer: &Buffer) -> Result<(), ClError> {
        self.arg(index, &buffer.mem)
    }

    /// Sets argument `index` to the 32-bit unsigned `value`.
    pub fn arg_u32(&self, index: u32, value: u32) -> Result<(), ClError> {
        self.arg(index, &value)
    }

    fn arg<T>(&self, index: u32, value: &T) -> Result<(), ClError> {
        // SAFETY: OpenCL copies the `size_of::<T>()` bytes at `value` during the call; a
        // `cl_mem` argument is passed as a pointer to the handle, as the API wants.
        api::check("clSetKernelArg", unsafe {
            (self.shared.api.clSetKernelArg)(
                self.kernel,
                index,
                size_of::<T>(),
                (value as *const T).cast(),
            )
        })
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: the kernel was created by this context and is released once.
        unsafe { (self.shared.api.clReleaseKernel)(self.kernel) };
    }
}
