//! [`PlanExecutor`]: the [`Executor`] of every backend that runs core's plan op by op in the
//! process's memory (the reference backend and the CPU driver), through [`Runner`].

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::Runner;
use super::executor::{
    ExecError, Executor, ExecutorSession, HostIo, Residence, SessionBytes, SessionSpec, Step,
    WeightMemory,
};
use crate::arena::Arena;
use crate::backend::{Backend, Holding};
use crate::model::{LayerWeights, Model, ModelConfig, WeightId, WeightView};
use crate::plan::{LogitRows, Plan};

/// A model prepared by a per-op [`Backend`], with a description for messages.
pub struct PlanExecutor<'w, B: Backend<'w>> {
    backend: B,
    model: Model<B::Weight, Vec<LayerWeights<B::Weight>>>,
    description: String,
}

impl<'w, B: Backend<'w>> PlanExecutor<'w, B> {
    /// `model`'s weights prepared by `backend`; `description` names both for messages
    /// ("cpu (x86-avx2)").
    pub fn new(
        backend: B,
        model: Model<B::Weight, Vec<LayerWeights<B::Weight>>>,
        description: String,
    ) -> Self {
        PlanExecutor {
            backend,
            model,
            description,
        }
    }

    /// The backend that computes.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The prepared model.
    pub fn model(&self) -> &Model<B::Weight, Vec<LayerWeights<B::Weight>>> {
        &self.model
    }
}

impl<'w, B> Executor for PlanExecutor<'w, B>
where
    B: Backend<'w> + Send + Sync,
    B::Weight: Send + Sync,
{
    fn describe(&self) -> &str {
        &self.description
    }

    fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    fn residence(&self) -> Residence {
        Residence::Host
    }

    fn weight_memory(&self) -> WeightMemory {
        let b = &self.backend;
        let mut weights = self.model.weights();
        let mut m = WeightMemory::default();
        let Some(table) = weights.next().map(|w| b.stored(w)) else {
            return m;
        };
        m.embeddings = table.data.len() as u64;
        for w in weights {
            match b.holding(w) {
                // A tied head read in place is the embedding table again.
                Holding::File if b.stored(w).data.as_ptr() == table.data.as_ptr() => {}
                Holding::File => m.mapped += b.stored(w).data.len() as u64,
                Holding::Dram(bytes) => m.dram += bytes,
                Holding::Cached(bytes) => m.cached += bytes,
            }
        }
        m
    }

    fn embedding_table(&self) -> Option<WeightView<'_>> {
        let table = self.model.weight(WeightId::Embedding)?;
        Some(self.backend.stored(table))
    }

    fn open_session(&self, spec: SessionSpec) -> Result<Box<dyn ExecutorSession + '_>, ExecError> {
        // The largest step of generation: a full batch, the last row's logits. Every row's
        // logits (teacher forcing) grow the arena when asked for: a batch of 512 rows of a
        // 150k vocabulary would be 300 MiB held for good.
        let n_batch = spec.n_batch.clamp(1, spec.n_ctx.max(1));
        let plan = Plan::new(&self.model.config, n_batch, spec.n_ctx, LogitRows::Last)
            .map_err(ExecError::Plan)?;
        Ok(Box::new(PlanSession {
            executor: self,
            arena: zeroed_arena(plan.arena_bytes() + Arena::ALIGN)?,
        }))
    }
}

/// A session of a [`PlanExecutor`]: the activation arena of its largest step so far.
struct PlanSession<'e, 'w, B: Backend<'w>> {
    executor: &'e PlanExecutor<'w, B>,
    arena: Vec<u8>,
}

impl<'w, B> ExecutorSession for PlanSession<'_, 'w, B>
where
    B: Backend<'w> + Send + Sync,
    B::Weight: Send + Sync,
{
    fn step(&mut self, step: Step<'_>) -> Result<&mut [f32], ExecError> {
        let needed = step.plan.arena_bytes() + Arena::ALIGN;
        if self.arena.len() < needed {
            self.arena = zeroed_arena(needed)?;
        }
        let Some(HostIo { kv, embeddings }) = step.host else {
            return Err(ExecError::NoHostKv);
        };
        // A reborrow, so the rows' trait object may live shorter than the weights' `'w`.
        let embeddings = embeddings.map(|rows| &mut *rows as &mut dyn super::EmbeddingRows);
        let e = self.executor;
        let logits = Runner {
            backend: &e.backend,
            model: &e.model,
            parallel: step.parallel,
            embeddings,
        }
        .step(
            step.plan,
            kv,
            Arena::new(&mut self.arena),
            step.tokens,
            step.pos,
        )?;
        Ok(logits)
    }

    fn memory(&self) -> SessionBytes {
        SessionBytes {
            kv_device: 0,
            arena: self.arena.len() as u64,
        }
    }
}

/// `bytes` zeroed bytes for activations, or the error that names them.
fn zeroed_arena(bytes: usize) -> Result<Vec<u8>, ExecError> {
    let out_of_memory = ExecError::OutOfMemory {
        what: "activation arena",
        bytes,
    };
    let mut arena = Vec::new();
    arena.try_reserve_exact(bytes).map_err(|_| out_of_memory)?;
    arena.resize(bytes, 0);
    Ok(arena)
}
