//! The backends this build has, and the one place that puts a model on one. Every backend
//! meets core's step contract ([`Executor`]); the rest of the engine holds the executor it
//! is given and never asks which backend it is. Adding a backend is its crate and an arm in
//! [`load`]; a GPU API is a [`GpuApi`] with its loader and its device listing, each with a
//! twin for builds without its cargo feature.

use tern_core::backend::Backend;
use tern_core::backend::reference::Reference;
use tern_core::cpu::{Cpu, CpuKernels};
use tern_core::exec::{ExecError, Executor, PlanExecutor};
use tern_core::gguf::Gguf;
use tern_core::model::{Model, ModelConfig};

use super::backing::Backing;
use super::pack_cache::{self, CacheStatus};
use super::{BackendKind, EngineOptions};

/// The CPU backend's microkernels: x86's SIMD kernels, the level chosen at run time.
#[cfg(all(target_arch = "x86_64", feature = "x86"))]
pub type HostKernels = tern_backend_x86::X86Kernels;
/// The CPU backend's microkernels: aarch64's SIMD kernels, the level chosen at run time.
#[cfg(all(target_arch = "aarch64", feature = "neon"))]
pub type HostKernels = tern_backend_neon::NeonKernels;
/// The CPU backend's microkernels: the scalar definitions (no SIMD crate in this build).
#[cfg(not(any(
    all(target_arch = "x86_64", feature = "x86"),
    all(target_arch = "aarch64", feature = "neon")
)))]
pub type HostKernels = tern_core::cpu::ScalarKernels;

fn host_kernels() -> HostKernels {
    #[cfg(all(target_arch = "x86_64", feature = "x86"))]
    return tern_backend_x86::X86Kernels::detect();
    #[cfg(all(target_arch = "aarch64", feature = "neon"))]
    return tern_backend_neon::NeonKernels::detect();
    #[cfg(not(any(
        all(target_arch = "x86_64", feature = "x86"),
        all(target_arch = "aarch64", feature = "neon")
    )))]
    return tern_core::cpu::ScalarKernels;
}

/// A model on the backend chosen, and how the choice went.
pub(crate) struct Chosen<'a> {
    pub executor: Box<dyn Executor + 'a>,
    /// What became of the packed-weight cache (CPU backend given a cache directory).
    pub cache_status: Option<CacheStatus>,
    /// Why `--backend auto` runs on the CPU.
    pub backend_note: Option<String>,
}

/// Why no backend took the model.
pub(crate) enum LoadFailure {
    /// The model does not fit the backend (a missing tensor, a format without a kernel).
    Model(String),
    /// The backend cannot run here (no device, no driver, out of device memory).
    Backend(ExecError),
}

/// Puts `gguf` on the backend `options` ask for. `needs_cpu` names an option that only the
/// CPU backends serve (`--backend auto` then takes the CPU). File bytes that a backend
/// copied (repacked, uploaded) are released to the OS through `backing`.
pub(crate) fn load<'a>(
    options: &EngineOptions,
    needs_cpu: Option<&'static str>,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    backing: &'a Backing,
) -> Result<Chosen<'a>, LoadFailure> {
    let chosen = |executor, cache_status| Chosen {
        executor,
        cache_status,
        backend_note: None,
    };
    match options.backend {
        BackendKind::Cpu => load_cpu(options, gguf, config, backing).map(|(e, s)| chosen(e, s)),
        BackendKind::Reference => {
            let model = Model::load(gguf, config, Vec::with_capacity(config.n_layer), |v, r| {
                Reference.prepare(v, r)
            })
            .map_err(|e| LoadFailure::Model(e.to_string()))?;
            let executor = PlanExecutor::new(Reference, model, "reference".into());
            Ok(chosen(Box::new(executor), None))
        }
        BackendKind::Vulkan => load_gpu(GpuApi::Vulkan, false, options, gguf, config, backing)
            .map(|e| chosen(e, None))
            .map_err(LoadFailure::Backend),
        BackendKind::OpenCl => load_gpu(GpuApi::OpenCl, false, options, gguf, config, backing)
            .map(|e| chosen(e, None))
            .map_err(LoadFailure::Backend),
        BackendKind::Auto => {
            let why = match needs_cpu {
                Some(option) => format!("{option} needs a CPU backend"),
                None => {
                    let mut why = Vec::new();
                    for api in GpuApi::ALL {
                        match load_gpu(api, true, options, gguf, config, backing) {
                            Ok(executor) => return Ok(chosen(executor, None)),
                            Err(e) => why.push(e.to_string()),
                        }
                    }
                    why.join("; ")
                }
            };
            let (executor, cache_status) = load_cpu(options, gguf, config, backing)?;
            Ok(Chosen {
                executor,
                cache_status,
                backend_note: Some(format!("{why}; running on the CPU")),
            })
        }
    }
}

/// The CPU backend with this machine's kernels; with a cache directory, the packed weights
/// come from (or go to) a packed-weight cache file there.
fn load_cpu<'a>(
    options: &EngineOptions,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    backing: &'a Backing,
) -> Result<(Box<dyn Executor + 'a>, Option<CacheStatus>), LoadFailure> {
    let cpu = Cpu::new(host_kernels());
    let description = format!("cpu ({})", cpu.kernels.name());
    let pack = || {
        Model::load(
            gguf,
            config,
            Vec::with_capacity(config.n_layer),
            |view, role| {
                let weight = cpu.prepare(view, role)?;
                if weight.packed.is_some() {
                    // Copied into panels: the file's pages are not read again (but for a tied
                    // head's embedding rows, which fault back in).
                    backing.release(view.data);
                }
                Ok::<_, tern_core::backend::PrepareError>(weight)
            },
        )
        .map_err(|e| e.to_string())
    };
    let (model, status) = match options.pack_cache.as_deref() {
        Some(dir) => {
            let key = pack_cache::key(&cpu, gguf);
            // Hashing the file for the key read all of it; what is still needed (embedding
            // rows, norms, weights to pack) faults back in.
            backing.release(gguf.bytes());
            let (model, status) =
                pack_cache::load(&cpu, gguf, config, (dir, key), &backing.pack_cache, pack)
                    .map_err(LoadFailure::Model)?;
            (model, Some(status))
        }
        None => (pack().map_err(LoadFailure::Model)?, None),
    };
    Ok((Box::new(PlanExecutor::new(cpu, model, description)), status))
}

/// The GPU APIs, each its own backend crate behind a cargo feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GpuApi {
    Vulkan,
    OpenCl,
}

impl GpuApi {
    /// In the order `--backend auto` tries them.
    const ALL: [GpuApi; 2] = [GpuApi::Vulkan, GpuApi::OpenCl];
}

/// The model on `api`'s device (`--device`'s, else the first real GPU, else, unless
/// `gpu_only`, the first device that computes). Every weight then lives in device memory,
/// so the file's pages are released.
fn load_gpu<'a>(
    api: GpuApi,
    gpu_only: bool,
    options: &EngineOptions,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    backing: &'a Backing,
) -> Result<Box<dyn Executor + 'a>, ExecError> {
    let executor = match api {
        GpuApi::Vulkan => load_vulkan(gpu_only, options, gguf, config)?,
        GpuApi::OpenCl => load_opencl(gpu_only, options, gguf, config)?,
    };
    backing.release(gguf.bytes());
    Ok(executor)
}

#[cfg(feature = "vulkan")]
fn load_vulkan<'a>(
    gpu_only: bool,
    options: &EngineOptions,
    gguf: &Gguf<'a>,
    config: ModelConfig,
) -> Result<Box<dyn Executor + 'a>, ExecError> {
    use tern_backend_vulkan::{DeviceChoice, Precision};
    let choice = match (options.device, gpu_only) {
        (Some(i), _) => DeviceChoice::Index(i),
        (None, true) => DeviceChoice::Gpu,
        (None, false) => DeviceChoice::Any,
    };
    let precision = match options.gpu_fast {
        true => Precision::F16,
        false => Precision::Reference,
    };
    Ok(Box::new(tern_backend_vulkan::load(
        choice, precision, gguf, config,
    )?))
}

#[cfg(not(feature = "vulkan"))]
fn load_vulkan<'a>(
    _: bool,
    _: &EngineOptions,
    _: &Gguf<'a>,
    _: ModelConfig,
) -> Result<Box<dyn Executor + 'a>, ExecError> {
    Err(not_built("Vulkan"))
}

#[cfg(feature = "opencl")]
fn load_opencl<'a>(
    gpu_only: bool,
    options: &EngineOptions,
    gguf: &Gguf<'a>,
    config: ModelConfig,
) -> Result<Box<dyn Executor + 'a>, ExecError> {
    use tern_backend_opencl::{DeviceChoice, Precision};
    let precision = match options.gpu_fast {
        true => Precision::Fast,
        false => Precision::Reference,
    };
    let choice = match (options.device, gpu_only) {
        (Some(i), _) => DeviceChoice::Index(i),
        (None, true) => DeviceChoice::Gpu,
        (None, false) => DeviceChoice::Any,
    };
    let library = options.opencl_library.as_deref();
    let cache = options.program_cache.as_deref();
    Ok(Box::new(tern_backend_opencl::load(
        library, choice, cache, gguf, config, precision,
    )?))
}

#[cfg(not(feature = "opencl"))]
fn load_opencl<'a>(
    _: bool,
    _: &EngineOptions,
    _: &Gguf<'a>,
    _: ModelConfig,
) -> Result<Box<dyn Executor + 'a>, ExecError> {
    Err(not_built("OpenCL"))
}

/// A backend this build was made without; its cargo feature is its name in lower case.
#[cfg(not(all(feature = "vulkan", feature = "opencl")))]
fn not_built(backend: &'static str) -> ExecError {
    let feature = backend.to_lowercase();
    ExecError::Device {
        backend,
        source: format!("this build of Tern has no {backend} backend (cargo feature `{feature}`)")
            .into(),
    }
}

/// The CPU backend as it runs on this machine, for listings beside the GPU devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuDevice {
    /// The microkernels picked at run time for this CPU: `x86-avx512vnni`, `x86-avx2`,
    /// `neon-dotprod`, ..., or `scalar` in a build without the machine's SIMD crate.
    pub kernels: &'static str,
    /// The physical cores this process may use: the default thread count.
    pub physical_cores: usize,
}

impl std::fmt::Display for CpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.physical_cores == 1 { "" } else { "s" };
        write!(
            f,
            "{}, {} physical core{s}",
            self.kernels, self.physical_cores
        )
    }
}

/// The CPU backend's kernels and cores here.
pub fn cpu_device() -> CpuDevice {
    CpuDevice {
        kernels: host_kernels().name(),
        physical_cores: crate::threads::physical_cores(),
    }
}

/// The devices of one GPU API, numbered as `--device` takes them with its `--backend`, or
/// why it has none.
pub struct DeviceList {
    /// The API's name: "Vulkan", "OpenCL".
    pub backend: &'static str,
    /// One line per device, or why there is none (no driver, not built).
    pub devices: Result<Vec<String>, ExecError>,
}

/// The devices of every GPU API, in the order `--backend auto` tries them; OpenCL's come
/// from the library `opencl_library` names (else `TERN_OPENCL_LIB`, else the usual names).
pub fn list_devices(opencl_library: Option<&std::path::Path>) -> Vec<DeviceList> {
    GpuApi::ALL
        .iter()
        .map(|api| match api {
            GpuApi::Vulkan => DeviceList {
                backend: "Vulkan",
                devices: vulkan_devices(),
            },
            GpuApi::OpenCl => DeviceList {
                backend: "OpenCL",
                devices: opencl_devices(opencl_library),
            },
        })
        .collect()
}

#[cfg(feature = "vulkan")]
fn vulkan_devices() -> Result<Vec<String>, ExecError> {
    match tern_backend_vulkan::enumerate()?.as_slice() {
        [] => Err(ExecError::Device {
            backend: tern_backend_vulkan::BACKEND,
            source: "the loader found no device".into(),
        }),
        devices => Ok(devices.iter().map(|d| d.to_string()).collect()),
    }
}

#[cfg(not(feature = "vulkan"))]
fn vulkan_devices() -> Result<Vec<String>, ExecError> {
    Err(not_built("Vulkan"))
}

#[cfg(feature = "opencl")]
fn opencl_devices(library: Option<&std::path::Path>) -> Result<Vec<String>, ExecError> {
    let devices = tern_backend_opencl::enumerate(library)?;
    Ok(devices.iter().map(|d| d.to_string()).collect())
}

#[cfg(not(feature = "opencl"))]
fn opencl_devices(_: Option<&std::path::Path>) -> Result<Vec<String>, ExecError> {
    Err(not_built("OpenCL"))
}
