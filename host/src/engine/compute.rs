//! The model as the chosen backend prepared it, and the one place that runs a step on it.

use tern_core::arena::Arena;
use tern_core::backend::Parallel;
use tern_core::backend::reference::Reference;
use tern_core::cpu::{Cpu, CpuKernels, CpuWeight};
use tern_core::exec::{Runner, StepError};
use tern_core::gguf::Gguf;
use tern_core::kv::KvCache;
use tern_core::model::{LayerWeights, Model, ModelConfig, WeightView};
use tern_core::plan::Plan;

use super::BackendKind;

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

/// A model loaded for one backend. Weights borrow the model file's bytes (`'static` here:
/// the engine keeps the bytes alive for as long as this lives).
pub(crate) enum Compute {
    Reference(Model<WeightView<'static>, Layers<WeightView<'static>>>),
    Cpu {
        backend: Cpu<HostKernels>,
        model: Model<CpuWeight<'static>, Layers<CpuWeight<'static>>>,
    },
}

impl Compute {
    /// Prepares every weight of `gguf` for `kind`; `release(bytes)` is told of file bytes
    /// that were copied into a packed layout and will not be read again (except, for a tied
    /// head, as embedding rows, which fault back in).
    pub(crate) fn load(
        kind: BackendKind,
        gguf: &Gguf<'static>,
        config: ModelConfig,
        release: impl Fn(&[u8]),
    ) -> Result<Compute, String> {
        Ok(match kind {
            BackendKind::Reference => {
                let model = Model::load(
                    gguf,
                    config,
                    Vec::with_capacity(config.n_layer),
                    |view, role| tern_core::backend::Backend::prepare(&Reference, view, role),
                )
                .map_err(|e| e.to_string())?;
                Compute::Reference(model)
            }
            BackendKind::Cpu => {
                let backend = Cpu::new(host_kernels());
                let model = Model::load(
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
                .map_err(|e| e.to_string())?;
                Compute::Cpu { backend, model }
            }
        })
    }

    pub(crate) fn config(&self) -> &ModelConfig {
        match self {
            Compute::Reference(model) => &model.config,
            Compute::Cpu { model, .. } => &model.config,
        }
    }

    /// The backend and, for the CPU, its instruction set: "reference", "cpu (x86-avx2)".
    pub(crate) fn describe(&self) -> String {
        match self {
            Compute::Reference(_) => "reference".into(),
            Compute::Cpu { backend, .. } => format!("cpu ({})", backend.kernels.name()),
        }
    }

    /// Runs one step; see [`Runner::step`].
    pub(crate) fn step<'a>(
        &self,
        plan: &Plan,
        kv: &mut dyn KvCache,
        arena: Arena<'a>,
        tokens: &[u32],
        pos: usize,
        parallel: &dyn Parallel,
    ) -> Result<&'a mut [f32], StepError> {
        match self {
            Compute::Reference(model) => Runner {
                backend: &Reference,
                model,
                parallel,
            }
            .step(plan, kv, arena, tokens, pos),
            Compute::Cpu { backend, model } => Runner {
                backend,
                model,
                parallel,
            }
            .step(plan, kv, arena, tokens, pos),
        }
    }
}
