//! The OpenCL 1.2 entry points Tern calls, resolved from a library opened at run time: the
//! ICD loader (`libOpenCL.so.1`) where one is installed, or a vendor's library directly
//! (`libmali.so`, `libPVROCL.so`) on boards that ship no loader. Nothing links against
//! OpenCL, so Tern builds without an SDK and runs where OpenCL is absent.

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};

use crate::error::ClError;

/// `cl_int`: every call's status; 0 is success.
pub(crate) type Int = i32;
/// An opaque OpenCL object (`cl_platform_id`, `cl_device_id`, `cl_context`, ...).
pub(crate) type Handle = *mut c_void;

pub(crate) const SUCCESS: Int = 0;
pub(crate) const DEVICE_NOT_FOUND: Int = -1;
pub(crate) const MEM_OBJECT_ALLOCATION_FAILURE: Int = -4;
pub(crate) const OUT_OF_RESOURCES: Int = -5;

pub(crate) const PLATFORM_NAME: u32 = 0x0902;
pub(crate) const DEVICE_TYPE_ALL: u64 = 0xFFFF_FFFF;
pub(crate) const DEVICE_TYPE: u32 = 0x1000;
pub(crate) const DEVICE_MAX_COMPUTE_UNITS: u32 = 0x1002;
pub(crate) const DEVICE_MAX_WORK_GROUP_SIZE: u32 = 0x1004;
pub(crate) const DEVICE_MAX_MEM_ALLOC_SIZE: u32 = 0x1010;
pub(crate) const DEVICE_SINGLE_FP_CONFIG: u32 = 0x101B;
pub(crate) const FP_DENORM: u64 = 1;
pub(crate) const FP_FMA: u64 = 0x20;
pub(crate) const DEVICE_GLOBAL_MEM_SIZE: u32 = 0x101F;
pub(crate) const DEVICE_LOCAL_MEM_SIZE: u32 = 0x1023;
pub(crate) const DEVICE_NAME: u32 = 0x102B;
pub(crate) const DEVICE_DRIVER_VERSION: u32 = 0x102D;
pub(crate) const DEVICE_VERSION: u32 = 0x102F;
pub(crate) const DEVICE_EXTENSIONS: u32 = 0x1030;
pub(crate) const DEVICE_OPENCL_C_VERSION: u32 = 0x103D;
pub(crate) const PROGRAM_BINARY_SIZES: u32 = 0x1165;
pub(crate) const PROGRAM_BINARIES: u32 = 0x1166;
/// OpenCL 3.0: every extension with its `cl_version`, as `cl_name_version` records.
pub(crate) const DEVICE_EXTENSIONS_WITH_VERSION: u32 = 0x1060;
/// `cl_khr_command_buffer`: what a command buffer can do (a bitfield of `cl_ulong`).
pub(crate) const DEVICE_COMMAND_BUFFER_CAPABILITIES_KHR: u32 = 0x12A9;
pub(crate) const COMMAND_BUFFER_CAPABILITY_SIMULTANEOUS_USE_KHR: u64 = 1 << 2;
/// `cl_khr_command_buffer`: the queue properties a command buffer's queue must have.
pub(crate) const DEVICE_COMMAND_BUFFER_REQUIRED_QUEUE_PROPERTIES_KHR: u32 = 0x12AA;
/// `cl_khr_command_buffer`: the creation property that carries the flags below.
pub(crate) const COMMAND_BUFFER_FLAGS_KHR: u64 = 0x1293;
/// A command buffer that may be enqueued again while a run of it is still pending (offered
/// where the capability above is reported).
pub(crate) const COMMAND_BUFFER_SIMULTANEOUS_USE_KHR: u64 = 1;
pub(crate) const PROGRAM_BUILD_LOG: u32 = 0x1183;
pub(crate) const MEM_READ_WRITE: u64 = 1;

/// Names tried, in order, when no library is named: the ICD loader, then the vendor
/// libraries of boards that ship none.
pub const LIBRARY_NAMES: [&str; 4] = [
    "libOpenCL.so.1",
    "libOpenCL.so",
    "libmali.so",
    "libPVROCL.so",
];

/// The environment variable naming the OpenCL library to open, where no path is given.
pub const LIBRARY_ENV: &str = "TERN_OPENCL_LIB";

macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// The entry points, and the library that holds them (kept open while they are used).
        #[allow(non_snake_case)]
        pub(crate) struct Api {
            $(pub(crate) $name: unsafe extern "C" fn($($arg),*) -> $ret,)*
            /// Where the library was found, for messages.
            pub(crate) path: PathBuf,
            _library: libloading::Library,
        }

        impl Api {
            /// Resolves every entry point from `library`, found at `path`.
            fn resolve(library: libloading::Library, path: PathBuf) -> Result<Api, ClError> {
                Ok(Api {
                    $($name: {
                        let symbol = concat!(stringify!($name), "\0").as_bytes();
                        // SAFETY: the symbol is an OpenCL 1.2 entry point, whose C signature
                        // the field's type spells; the function pointer is copied out and used
                        // only while `_library`, stored beside it, keeps the library loaded.
                        unsafe {
                            *library
                                .get::<unsafe extern "C" fn($($arg),*) -> $ret>(symbol)
                                .map_err(|_| ClError::MissingSymbol {
                                    library: path.clone(),
                                    symbol: stringify!($name),
                                })?
                        }
                    },)*
                    path,
                    _library: library,
                })
            }
        }
    };
}

api! {
    clGetPlatformIDs: fn(u32, *mut Handle, *mut u32) -> Int;
    clGetPlatformInfo: fn(Handle, u32, usize, *mut c_void, *mut usize) -> Int;
    clGetDeviceIDs: fn(Handle, u64, u32, *mut Handle, *mut u32) -> Int;
    clGetDeviceInfo: fn(Handle, u32, usize, *mut c_void, *mut usize) -> Int;
    clCreateContext: fn(*const isize, u32, *const Handle, *const c_void, *mut c_void, *mut Int) -> Handle;
    clCreateCommandQueue: fn(Handle, Handle, u64, *mut Int) -> Handle;
    clCreateBuffer: fn(Handle, u64, usize, *mut c_void, *mut Int) -> Handle;
    clCreateProgramWithSource: fn(Handle, u32, *const *const c_char, *const usize, *mut Int) -> Handle;
    clBuildProgram: fn(Handle, u32, *const Handle, *const c_char, *const c_void, *mut c_void) -> Int;
    clGetProgramBuildInfo: fn(Handle, Handle, u32, usize, *mut c_void, *mut usize) -> Int;
    clCreateKernel: fn(Handle, *const c_char, *mut Int) -> Handle;
    clSetKernelArg: fn(Handle, u32, usize, *const c_void) -> Int;
    clEnqueueNDRangeKernel: fn(Handle, Handle, u32, *const usize, *const usize, *const usize, u32, *const Handle, *mut Handle) -> Int;
    clEnqueueWriteBuffer: fn(Handle, Handle, u32, usize, usize, *const c_void, u32, *const Handle, *mut Handle) -> Int;
    clEnqueueReadBuffer: fn(Handle, Handle, u32, usize, usize, *mut c_void, u32, *const Handle, *mut Handle) -> Int;
    clFinish: fn(Handle) -> Int;
    clReleaseMemObject: fn(Handle) -> Int;
    clReleaseKernel: fn(Handle) -> Int;
    clReleaseProgram: fn(Handle) -> Int;
    clReleaseCommandQueue: fn(Handle) -> Int;
    clReleaseContext: fn(Handle) -> Int;
    clCreateProgramWithBinary: fn(Handle, u32, *const Handle, *const usize, *const *const u8, *mut Int, *mut Int) -> Handle;
    clGetProgramInfo: fn(Handle, u32, usize, *mut c_void, *mut usize) -> Int;
    clGetExtensionFunctionAddressForPlatform: fn(Handle, *const c_char) -> *mut c_void;
}

impl Api {
    /// Opens the OpenCL library at `path`; without one, the library `TERN_OPENCL_LIB` names;
    /// without that, the first of [`LIBRARY_NAMES`] the system's loader finds.
    pub(crate) fn open(path: Option<&Path>) -> Result<Api, ClError> {
        let from_env = std::env::var_os(LIBRARY_ENV).filter(|v| !v.is_empty());
        if let Some(path) = path.map(Path::to_path_buf).or(from_env.map(PathBuf::from)) {
            // SAFETY: opening a library runs its initialisers; an OpenCL library (loader or
            // vendor driver) is meant to be opened this way by any process.
            return match unsafe { libloading::Library::new(&path) } {
                Ok(library) => Api::resolve(library, path),
                Err(e) => Err(ClError::NoLibrary {
                    tried: path.display().to_string(),
                    reason: e.to_string(),
                }),
            };
        }
        let mut reason = String::new();
        for name in LIBRARY_NAMES {
            // SAFETY: as above.
            match unsafe { libloading::Library::new(name) } {
                Ok(library) => return Api::resolve(library, name.into()),
                Err(e) => reason = e.to_string(),
            }
        }
        Err(ClError::NoLibrary {
            tried: LIBRARY_NAMES.join(", "),
            reason,
        })
    }
}

/// `Ok(())` for success, else the call's error.
pub(crate) fn check(call: &'static str, status: Int) -> Result<(), ClError> {
    match status {
        SUCCESS => Ok(()),
        code => Err(ClError::Call { call, code }),
    }
}
