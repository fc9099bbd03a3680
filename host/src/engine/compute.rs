//! The model as the chosen backend prepared it, and the one place that runs a step on it.

use tern_core::arena::Arena;
use tern_core::backend::Parallel;
use tern_core::backend::reference::Reference;
use tern_core::cpu::{Cpu, CpuKernels, CpuWeight};
use tern_core::exec::{EmbeddingRows, Runner, StepError};
use tern_core::gguf::Gguf;
use tern_core::kv::KvCache;
use tern_core::model::{LayerWeights, Model, ModelConfig, WeightId, WeightView};
use tern_core::plan::Plan;

use std::path::Path;

use tern_storage::pack_cache::PackCache;

use super::BackendKind;
use super::pack_cache::{self, CacheStatus};
use crate::memory::EngineMemory;

/// The microkernels of this build's CPU backend: x86's or aarch64's SIMD kernels (the
/// instruction set chosen at run time) where compiled in, else the scalar definitions.
#[cfg(all(target_arch = "x86_64", feature = "x86"))]
pub type HostKernels = tern_backend_x86::X86Kernels;
#[cfg(all(target_arch = "aarch64", feature = "neon"))]
pub type HostKernels = tern_backend_neon::NeonKernels;
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

type Layers<W> = Vec<LayerWeights<W>>;

/// The CPU backend's model, its weights borrowing the model file (and the packed-weight
/// cache) for as long as the engine lives.
pub(crate) type CpuModel = Model<CpuWeight<'static>, Layers<CpuWeight<'static>>>;

/// A model loaded for one backend. Weights borrow the model file's bytes (`'static` here:
/// the engine keeps the bytes alive for as long as this lives).
pub(crate) enum Compute {
    Reference(Model<WeightView<'static>, Layers<WeightView<'static>>>),
    Cpu {
        backend: Cpu<HostKernels>,
        model: CpuModel,
    },
    /// Weights in a Vulkan device's memory; sessions step on the device.
    #[cfg(feature = "vulkan")]
    Vulkan(tern_backend_vulkan::DeviceModel),
}

/// A loaded model with, for the CPU backend given a cache directory, the packed-weight cache
/// its weights borrow and what became of the cache.
pub(crate) struct Loaded {
    pub compute: Compute,
    pub cache: Option<PackCache>,
    pub cache_status: Option<CacheStatus>,
    /// Why `--backend auto` chose the CPU.
    pub backend_note: Option<String>,
}

/// What the backend choice needs besides the model.
pub(crate) struct LoadOptions<'a> {
    pub kind: BackendKind,
    /// The Vulkan device asked for.
    pub device: Option<usize>,
    /// f16 matmuls on the device (see [`super::EngineOptions::gpu_f16`]).
    #[cfg(feature = "vulkan")]
    pub gpu_f16: bool,
    /// Why only a CPU backend can serve the other options, if so (for `auto`).
    pub needs_cpu: Option<&'static str>,
    pub pack_cache: Option<&'a Path>,
}

impl Compute {
    /// Prepares every weight of `gguf` for `kind`; `release(bytes)` is told of file bytes
    /// that were copied into a packed layout and will not be read again (except, for a tied
    /// head, as embedding rows, which fault back in). With `pack_cache`, the CPU backend's
    /// packed weights come from (or go to) a cache file in that directory.
    pub(crate) fn load(
        options: LoadOptions<'_>,
        gguf: &Gguf<'static>,
        config: ModelConfig,
        release: impl Fn(&[u8]),
    ) -> Result<Loaded, String> {
        let mut backend_note = None;
        let kind = match options.kind {
            BackendKind::Auto => match auto_device(&options) {
                Ok(index) => (BackendKind::Vulkan, Some(index)),
                Err(why) => {
                    backend_note = Some(format!("{why}; running on the CPU"));
                    (BackendKind::Cpu, None)
                }
            },
            kind => (kind, options.device),
        };
        let pack_cache = options.pack_cache;
        let backend = match kind {
            #[cfg(feature = "vulkan")]
            (BackendKind::Vulkan, device) => {
                let model = match super::vulkan::load(device, options.gpu_f16, gguf, config) {
                    Ok(model) => model,
                    // Auto found a GPU, but it cannot take the model: the CPU can.
                    Err(why) if options.kind == BackendKind::Auto => {
                        backend_note = Some(format!("{why}; running on the CPU"));
                        return Self::load(
                            LoadOptions {
                                kind: BackendKind::Cpu,
                                ..options
                            },
                            gguf,
                            config,
                            release,
                        )
                        .map(|loaded| Loaded {
                            backend_note,
                            ..loaded
                        });
                    }
                    Err(why) => return Err(why),
                };
                // Every weight now lives in device memory: the file's pages can go.
                release(gguf.bytes());
                return Ok(Loaded {
                    compute: Compute::Vulkan(model),
                    cache: None,
                    cache_status: None,
                    backend_note,
                });
            }
            #[cfg(not(feature = "vulkan"))]
            (BackendKind::Vulkan, _) => {
                return Err(
                    "this build of Tern has no Vulkan backend (cargo feature `vulkan`)".into(),
                );
            }
            (BackendKind::Reference, _) => {
                let model = Model::load(
                    gguf,
                    config,
                    Vec::with_capacity(config.n_layer),
                    |view, role| tern_core::backend::Backend::prepare(&Reference, view, role),
                )
                .map_err(|e| e.to_string())?;
                return Ok(Loaded {
                    compute: Compute::Reference(model),
                    cache: None,
                    cache_status: None,
                    backend_note,
                });
            }
            (BackendKind::Cpu | BackendKind::Auto, _) => Cpu::new(host_kernels()),
        };
        let pack = || {
            Model::load(
                gguf,
                config,
                Vec::with_capacity(config.n_layer),
                |view, role| {
                    let weight = tern_core::backend::Backend::prepare(&backend, view, role)?;
                    if weight.packed.is_some() {
                        release(view.data);
                    }
                    Ok::<_, tern_core::backend::PrepareError>(weight)
                },
            )
            .map_err(|e| e.to_string())
        };
        let (model, cache, cache_status) = match pack_cache {
            Some(dir) => {
                let key = pack_cache::key(&backend, gguf);
                // Hashing the file for the key read all of it; what is still needed
                // (embedding rows, norms, weights to pack) faults back in.
                release(gguf.bytes());
                let (model, cache, status) =
                    pack_cache::load(&backend, gguf, config, (dir, key), pack)?;
                (model, cache, Some(status))
            }
            None => (pack()?, None, None),
        };
        Ok(Loaded {
            compute: Compute::Cpu { backend, model },
            cache,
            cache_status,
            backend_note,
        })
    }

    /// The weights by tier: repacked in DRAM, read in place from the model file, or mapped
    /// from a packed-weight cache.
    pub(crate) fn memory(&self) -> EngineMemory {
        let mut m = EngineMemory::default();
        match self {
            Compute::Reference(model) => {
                let mut weights = model.weights();
                let embedding = weights.next().map_or(&[][..], |w| w.data);
                m.embeddings = embedding.len() as u64;
                // A tied head is the embedding table again.
                m.weights_mapped = weights
                    .filter(|w| w.data.as_ptr() != embedding.as_ptr())
                    .map(|w| w.data.len() as u64)
                    .sum();
            }
            Compute::Cpu { model, .. } => {
                let mut weights = model.weights();
                if let Some(embedding) = weights.next() {
                    m.embeddings = embedding.view.data.len() as u64;
                }
                for w in weights {
                    let bytes = w.packed.as_ref().map_or(0, |p| p.bytes().len() as u64);
                    match &w.packed {
                        Some(p) if p.is_owned() => m.weights_dram += bytes,
                        Some(_) => m.weights_cached += bytes,
                        None => m.weights_mapped += w.view.data.len() as u64,
                    }
                }
            }
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(model) => m.weights_device = model.weight_bytes(),
        }
        m
    }

    /// The embedding table as the model file stores it.
    pub(crate) fn embedding_table(&self) -> Option<WeightView<'static>> {
        match self {
            Compute::Reference(model) => model.weight(WeightId::Embedding).copied(),
            Compute::Cpu { model, .. } => model.weight(WeightId::Embedding).map(|w| w.view),
            // The device keeps its own copy.
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_) => None,
        }
    }

    pub(crate) fn config(&self) -> &ModelConfig {
        match self {
            Compute::Reference(model) => &model.config,
            Compute::Cpu { model, .. } => &model.config,
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(model) => model.config(),
        }
    }

    /// The backend and, for the CPU, its instruction set: "reference", "cpu (x86-avx2)".
    pub(crate) fn describe(&self) -> String {
        match self {
            Compute::Reference(_) => "reference".into(),
            Compute::Cpu { backend, .. } => format!("cpu ({})", backend.kernels.name()),
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(model) => {
                let math = if model.f16_matrices() {
                    ", f16 matmuls"
                } else {
                    ""
                };
                format!("vulkan ({}{math})", model.gpu().info().name)
            }
        }
    }

    /// Runs one step on a CPU backend; see [`Runner::step`]. Embedding rows come from
    /// `embeddings` when given. A device model's sessions step on the device instead
    /// (`tern_backend_vulkan::DeviceSession`); handed one here, this refuses the plan.
    pub(crate) fn step<'a, 's>(
        &'s self,
        plan: &Plan,
        (kv, embeddings): (&mut dyn KvCache, Option<&'s mut (dyn EmbeddingRows + 's)>),
        arena: Arena<'a>,
        tokens: &[u32],
        pos: usize,
        parallel: &'s dyn Parallel,
    ) -> Result<&'a mut [f32], StepError> {
        match self {
            Compute::Reference(model) => Runner {
                backend: &Reference,
                model,
                parallel,
                embeddings,
            }
            .step(plan, kv, arena, tokens, pos),
            Compute::Cpu { backend, model } => Runner {
                backend,
                model,
                parallel,
                embeddings,
            }
            .step(plan, kv, arena, tokens, pos),
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_) => Err(StepError::PlanMismatch),
        }
    }

    /// Whether weights live in a device's memory (and sessions step there).
    pub(crate) fn on_device(&self) -> bool {
        #[cfg(feature = "vulkan")]
        return self.device_model().is_some();
        #[cfg(not(feature = "vulkan"))]
        return false;
    }

    /// The model on a Vulkan device, if that is where it was loaded.
    #[cfg(feature = "vulkan")]
    pub(crate) fn device_model(&self) -> Option<&tern_backend_vulkan::DeviceModel> {
        match self {
            Compute::Vulkan(model) => Some(model),
            _ => None,
        }
    }
}

/// The device `--backend auto` takes, or why it takes the CPU.
fn auto_device(options: &LoadOptions<'_>) -> Result<usize, String> {
    if let Some(why) = options.needs_cpu {
        return Err(format!("{why} needs a CPU backend"));
    }
    #[cfg(feature = "vulkan")]
    return super::vulkan::real_gpu(options.device);
    #[cfg(not(feature = "vulkan"))]
    return Err("this build of Tern has no Vulkan backend".into());
}
