//! What can go wrong between Tern and an OpenCL library, each case with what and where.

use std::path::PathBuf;

/// An OpenCL backend failure.
#[derive(Debug, thiserror::Error)]
pub enum ClError {
    /// No OpenCL library could be opened.
    #[error("no OpenCL library ({tried}: {reason}); install an OpenCL driver or name its library")]
    NoLibrary {
        /// The paths or names tried.
        tried: String,
        /// What the system's loader said about the last one.
        reason: String,
    },
    /// The library lacks an OpenCL 1.2 entry point (it is not an OpenCL library, or too old).
    #[error("`{}` has no `{symbol}`: not an OpenCL 1.2 library", library.display())]
    MissingSymbol {
        /// The library opened.
        library: PathBuf,
        /// The entry point missing.
        symbol: &'static str,
    },
    /// The library found no platform with a device.
    #[error("no OpenCL device: {0}")]
    NoDevice(String),
    /// `--backend auto` wants a GPU and the library offers only CPU implementations (PoCL,
    /// rusticl on llvmpipe), which the CPU backend beats; the names of those there are.
    #[error("no OpenCL GPU (only {}, a CPU implementation)", .0.join(", "))]
    NoGpu(Vec<String>),
    /// A device index past the last device.
    #[error("no OpenCL device with index {index} ({count} found)")]
    NoSuchDevice {
        /// The index asked for.
        index: usize,
        /// How many devices there are.
        count: usize,
    },
    /// A kernel source did not build on the device; the first line of the build log.
    #[error("OpenCL program `{program}` failed to build: {log}")]
    Build {
        /// The kernel source's name.
        program: &'static str,
        /// The first line of the driver's build log.
        log: String,
    },
    /// A call failed with an OpenCL status code.
    #[error("OpenCL call {call} failed: {} ({code})", code_name(*code))]
    Call {
        /// The entry point.
        call: &'static str,
        /// The status it returned.
        code: i32,
    },
    /// A buffer could not be allocated.
    #[error("out of {memory} memory: a buffer of {bytes} bytes did not fit")]
    OutOfMemory {
        /// Which memory: "OpenCL device" (and the device's largest buffer) or "host".
        memory: String,
        /// The size asked for.
        bytes: usize,
    },
    /// An op the backend has no kernel for.
    #[error("OpenCL has no kernel for {op} on {what}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// What it was asked to do.
        what: String,
    },
    /// Sizes that do not fit a buffer or a kernel's indexing.
    #[error("bad shape for {op}: {why}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What did not fit.
        why: String,
    },
}

/// The name of an OpenCL status code, as the headers spell it.
pub fn code_name(code: i32) -> &'static str {
    match code {
        -1 => "CL_DEVICE_NOT_FOUND",
        -2 => "CL_DEVICE_NOT_AVAILABLE",
        -3 => "CL_COMPILER_NOT_AVAILABLE",
        -4 => "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        -5 => "CL_OUT_OF_RESOURCES",
        -6 => "CL_OUT_OF_HOST_MEMORY",
        -11 => "CL_BUILD_PROGRAM_FAILURE",
        -30 => "CL_INVALID_VALUE",
        -33 => "CL_INVALID_DEVICE",
        -34 => "CL_INVALID_CONTEXT",
        -36 => "CL_INVALID_COMMAND_QUEUE",
        -38 => "CL_INVALID_MEM_OBJECT",
        -46 => "CL_INVALID_KERNEL_NAME",
        -48 => "CL_INVALID_KERNEL",
        -49 => "CL_INVALID_ARG_INDEX",
        -50 => "CL_INVALID_ARG_VALUE",
        -51 => "CL_INVALID_ARG_SIZE",
        -52 => "CL_INVALID_KERNEL_ARGS",
        -54 => "CL_INVALID_WORK_GROUP_SIZE",
        -61 => "CL_INVALID_BUFFER_SIZE",
        -1001 => "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)",
        _ => "an OpenCL error",
    }
}

impl ClError {
    /// A shape error of `op`.
    pub(crate) fn shape(op: &'static str, why: impl Into<String>) -> ClError {
        ClError::Shape {
            op,
            why: why.into(),
        }
    }
}
