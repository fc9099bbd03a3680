//! An open device: its context and in-order queue, buffers in its memory, and programs built
//! from OpenCL C sources. Every handle is released when its owner drops; each owner keeps the
//! library open (an `Arc` of the entry points) for as long as it lives.

use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::api::{self, Api, Handle};
use crate::command_buffer::{self, Entries};
use crate::device::{self, DeviceInfo};
use crate::error::ClError;
use crate::program_cache::{Cached, ProgramCache, ProgramKey};
use crate::programs::Source;

/// The library and the device's context and queue, shared by everything made on them.
pub(crate) struct Shared {
    pub(crate) api: Api,
    pub(crate) device: Handle,
    pub(crate) context: Handle,
    pub(crate) queue: Handle,
    /// The command-buffer entry points, where the device's may be used.
    pub(crate) command_buffers: Option<Entries>,
    /// Buffers created on this device so far, for tests that count allocations.
    allocations: AtomicUsize,
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
    pub(crate) shared: Arc<Shared>,
    info: DeviceInfo,
    /// The kernel programs built so far, each once.
    programs: Mutex<HashMap<Source, Arc<Program>>>,
    /// Where compiled programs are kept between runs, if anywhere.
    program_cache: Option<ProgramCache>,
    /// Programs compiled from source, and programs loaded from the cache.
    compiled: AtomicUsize,
    from_cache: AtomicUsize,
    /// Whether batches are recorded into command buffers when finalized.
    pub(crate) recording: bool,
    /// Command buffers recorded so far, for tests that count them.
    pub(crate) recorded: AtomicUsize,
}

impl Gpu {
    /// Opens device `index` (as [`device::enumerate`] numbers them) of the OpenCL library at
    /// `library` (else `TERN_OPENCL_LIB`, else the usual names). Batches are recorded into
    /// command buffers where the device's may be used, unless
    /// [`crate::NO_COMMAND_BUFFER_ENV`] is set.
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
                command_buffers: found.command_buffers,
                allocations: AtomicUsize::new(0),
            }),
            info: found.info,
            programs: Mutex::new(HashMap::new()),
            program_cache: None,
            compiled: AtomicUsize::new(0),
            from_cache: AtomicUsize::new(0),
            recording: found.command_buffers.is_some() && !command_buffer::off_by_env(),
            recorded: AtomicUsize::new(0),
        })
    }

    /// Keeps compiled programs in `dir` (created when first written) and builds from what
    /// it holds; `None` compiles every program from source.
    pub fn with_program_cache(mut self, dir: Option<&Path>) -> Gpu {
        self.program_cache = dir.map(ProgramCache::new);
        self
    }

    /// Programs compiled from source so far, and programs loaded from the program cache.
    pub fn program_builds(&self) -> (usize, usize) {
        (
            self.compiled.load(Ordering::Relaxed),
            self.from_cache.load(Ordering::Relaxed),
        )
    }

    /// What the device is and can do.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Buffers created on this device so far (a step that allocates shows here).
    pub fn allocations(&self) -> usize {
        self.shared.allocations.load(Ordering::Relaxed)
    }

    /// A buffer of `bytes` bytes of device memory (contents undefined until written).
    pub fn buffer(&self, bytes: usize) -> Result<Buffer, ClError> {
        let s = &self.shared;
        if bytes as u64 > self.info.max_buffer {
            return Err(self.out_of_memory(bytes));
        }
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
        if status == api::MEM_OBJECT_ALLOCATION_FAILURE || status == api::OUT_OF_RESOURCES {
            return Err(self.out_of_memory(bytes));
        }
        api::check("clCreateBuffer", status)?;
        s.allocations.fetch_add(1, Ordering::Relaxed);
        Ok(Buffer {
            mem: Arc::new(Mem {
                shared: Arc::clone(s),
                handle: mem,
            }),
            bytes,
        })
    }

    fn out_of_memory(&self, bytes: usize) -> ClError {
        ClError::OutOfMemory {
            memory: format!(
                "OpenCL device (largest buffer {} MiB)",
                self.info.max_buffer >> 20
            ),
            bytes,
        }
    }

    /// A buffer holding a copy of `data`.
    pub fn buffer_from(&self, data: &[u8]) -> Result<Buffer, ClError> {
        let buffer = self.buffer(data.len())?;
        self.write(&buffer, 0, data)?;
        Ok(buffer)
    }

    /// Copies `data` into `buffer` from byte `offset` on, waiting until the copy is done.
    pub fn write(&self, buffer: &Buffer, offset: usize, data: &[u8]) -> Result<(), ClError> {
        buffer.fits("write", offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        // SAFETY: a blocking write of `data.len()` bytes from `data`, which lives through the
        // call, into a buffer that holds `offset + data.len()` bytes (checked above).
        api::check("clEnqueueWriteBuffer", unsafe {
            (s.api.clEnqueueWriteBuffer)(
                s.queue,
                buffer.mem.handle,
                1,
                offset,
                data.len(),
                data.as_ptr().cast(),
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    /// Copies bytes `offset..offset + out.len()` of `buffer` into `out`, after every command
    /// enqueued before.
    pub fn read(&self, buffer: &Buffer, offset: usize, out: &mut [u8]) -> Result<(), ClError> {
        buffer.fits("read", offset, out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        let s = &self.shared;
        // SAFETY: a blocking read of `out.len()` bytes into `out`, which lives through the
        // call, from a buffer that holds `offset + out.len()` bytes (checked above).
        api::check("clEnqueueReadBuffer", unsafe {
            (s.api.clEnqueueReadBuffer)(
                s.queue,
                buffer.mem.handle,
                1,
                offset,
                out.len(),
                out.as_mut_ptr().cast(),
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        })
    }

    /// Copies `data` to the start of `buffer`, waiting until the copy is done.
    pub fn write_f32(&self, buffer: &Buffer, data: &[f32]) -> Result<(), ClError> {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(buffer, 0, &bytes)
    }

    /// Copies the start of `buffer` into `out`, after every command enqueued before.
    pub fn read_f32(&self, buffer: &Buffer, out: &mut [f32]) -> Result<(), ClError> {
        let mut bytes = vec![0u8; size_of_val(out)];
        self.read(buffer, 0, &mut bytes)?;
        for (v, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
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

    /// A fresh kernel object of `source`'s program, built on first use.
    pub(crate) fn kernel(&self, source: Source) -> Result<Kernel, ClError> {
        self.built(source)?.kernel(source.entry())
    }

    /// `source`'s program, built on first use and kept.
    pub(crate) fn built(&self, source: Source) -> Result<Arc<Program>, ClError> {
        let mut programs = self.programs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = programs.get(&source) {
            return Ok(Arc::clone(p));
        }
        let text = source.text();
        let (with, without) = (
            source.options(&self.info, true),
            source.options(&self.info, false),
        );
        let program = match self.cached_program(source.name(), &text, &with) {
            // A driver that lists an extension but cannot build the variant using it gets
            // the variant without, which computes the same bits.
            Err(ClError::Build { .. }) if with != without => {
                self.cached_program(source.name(), &text, &without)?
            }
            built => built?,
        };
        let program = Arc::new(program);
        programs.insert(source, Arc::clone(&program));
        Ok(program)
    }

    /// `text` built with `options`: from the program cache where it holds a binary the
    /// driver accepts, else compiled and stored there. A cache that cannot be written costs
    /// only the next start's compile, so write failures are not errors.
    fn cached_program(
        &self,
        name: &'static str,
        text: &str,
        options: &str,
    ) -> Result<Program, ClError> {
        let Some(cache) = &self.program_cache else {
            self.compiled.fetch_add(1, Ordering::Relaxed);
            return self.program(name, text, options);
        };
        let key = ProgramKey::new(&self.info, text, options);
        if let Cached::Binary(binary) = cache.read(key) {
            if let Ok(program) = self.program_from_binary(&binary, options) {
                self.from_cache.fetch_add(1, Ordering::Relaxed);
                return Ok(program);
            }
        }
        let program = self.program(name, text, options)?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Ok(binary) = program.binary() {
            let _ = cache.write(key, &binary);
        }
        Ok(program)
    }

    /// A program from a binary this device's driver made, built (linked) with `options`.
    fn program_from_binary(&self, binary: &[u8], options: &str) -> Result<Program, ClError> {
        let s = &self.shared;
        let (ptr, len) = (binary.as_ptr(), binary.len());
        let (mut binary_status, mut status) = (0, 0);
        // SAFETY: one binary of `len` bytes for this context's one device, alive through
        // the call; the driver validates it and reports a bad one in the statuses.
        let program = unsafe {
            (s.api.clCreateProgramWithBinary)(
                s.context,
                1,
                &s.device,
                &len,
                &ptr,
                &mut binary_status,
                &mut status,
            )
        };
        api::check("clCreateProgramWithBinary", status)?;
        let program = Program {
            shared: Arc::clone(s),
            program,
        };
        api::check("clCreateProgramWithBinary", binary_status)?;
        let options = CString::new(options).map_err(|_| ClError::shape("program build", "NUL"))?;
        // SAFETY: builds the program for this context's one device, synchronously.
        api::check("clBuildProgram", unsafe {
            (s.api.clBuildProgram)(
                program.program,
                1,
                &s.device,
                options.as_ptr(),
                ptr::null(),
                ptr::null_mut(),
            )
        })?;
        Ok(program)
    }

    /// Runs `kernel` over a `global` range of work-items in work-groups of `local` (each
    /// `global` dimension a multiple of its `local`) and returns without waiting: the queue is
    /// in order, so later commands see its results.
    pub fn run(
        &self,
        kernel: &Kernel,
        global: [usize; 3],
        local: [usize; 3],
    ) -> Result<(), ClError> {
        let s = &self.shared;
        // SAFETY: a three-dimensional range over a kernel of this context whose arguments
        // were all set (`Kernel::arg_*`), without events; both arrays outlive the call.
        api::check("clEnqueueNDRangeKernel", unsafe {
            (s.api.clEnqueueNDRangeKernel)(
                s.queue,
                kernel.kernel,
                3,
                ptr::null(),
                global.as_ptr(),
                local.as_ptr(),
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

/// A device memory object, released when the last [`Buffer`] naming it drops.
struct Mem {
    shared: Arc<Shared>,
    handle: Handle,
}

// SAFETY: a memory object may be used and released from any thread (OpenCL 1.2 makes
// every call but `clSetKernelArg` thread-safe).
unsafe impl Send for Mem {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mem {}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: the buffer was created by this context and is released once, when no
        // buffer or recorded kernel refers to it any more.
        unsafe { (self.shared.api.clReleaseMemObject)(self.handle) };
    }
}

/// Device memory. Clones name the same memory, which lives until the last clone drops, so
/// a recorded step keeps every buffer its kernels read.
#[derive(Clone)]
pub struct Buffer {
    mem: Arc<Mem>,
    bytes: usize,
}

impl Buffer {
    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Its size in 32-bit words (rounded down).
    pub fn words(&self) -> usize {
        self.bytes / 4
    }

    fn fits(&self, op: &'static str, offset: usize, bytes: usize) -> Result<(), ClError> {
        match offset.checked_add(bytes) {
            Some(end) if end <= self.bytes => Ok(()),
            _ => Err(ClError::Shape {
                op,
                why: format!("{bytes} bytes at {offset} into a buffer of {}", self.bytes),
            }),
        }
    }
}

/// A program built for the device, from which kernels are made.
pub struct Program {
    shared: Arc<Shared>,
    program: Handle,
}

// SAFETY: a built program is only read (kernels are created from it), which OpenCL allows
// from any thread.
unsafe impl Send for Program {}
// SAFETY: as for `Send`.
unsafe impl Sync for Program {}

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
            held: Vec::new(),
        })
    }

    /// The driver's binary of this built program, for the program cache.
    fn binary(&self) -> Result<Vec<u8>, ClError> {
        let s = &self.shared;
        let mut size = 0usize;
        // SAFETY: one device, so one size, written into a local of that type.
        api::check("clGetProgramInfo", unsafe {
            (s.api.clGetProgramInfo)(
                self.program,
                api::PROGRAM_BINARY_SIZES,
                size_of::<usize>(),
                (&raw mut size).cast(),
                ptr::null_mut(),
            )
        })?;
        if size == 0 {
            return Err(ClError::shape("program binary", "the driver gives none"));
        }
        let mut binary = vec![0u8; size];
        let mut at = binary.as_mut_ptr();
        // SAFETY: one pointer per device, to a buffer of the size the driver just gave.
        api::check("clGetProgramInfo", unsafe {
            (s.api.clGetProgramInfo)(
                self.program,
                api::PROGRAM_BINARIES,
                size_of::<*mut u8>(),
                (&raw mut at).cast(),
                ptr::null_mut(),
            )
        })?;
        Ok(binary)
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

/// A kernel with its arguments, set one by one before it is run. It keeps every buffer
/// it was given, so it can be run again later.
pub struct Kernel {
    shared: Arc<Shared>,
    pub(crate) kernel: Handle,
    held: Vec<Buffer>,
}

// SAFETY: a kernel object is used by one owner at a time (`&mut self` to set arguments);
// OpenCL allows enqueueing it from any thread.
unsafe impl Send for Kernel {}
// SAFETY: shared references only enqueue the kernel, which is thread-safe.
unsafe impl Sync for Kernel {}

impl Kernel {
    /// Sets argument `index` to `buffer`, which the kernel keeps alive.
    pub fn arg_buffer(&mut self, index: u32, buffer: &Buffer) -> Result<(), ClError> {
        self.arg(index, &buffer.mem.handle)?;
        self.held.push(buffer.clone());
        Ok(())
    }

    /// Sets argument `index` to the 32-bit unsigned `value`.
    pub fn arg_u32(&mut self, index: u32, value: u32) -> Result<(), ClError> {
        self.arg(index, &value)
    }

    /// Sets argument `index` to the float `value`.
    pub fn arg_f32(&mut self, index: u32, value: f32) -> Result<(), ClError> {
        self.arg(index, &value)
    }

    fn arg<T>(&mut self, index: u32, value: &T) -> Result<(), ClError> {
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
