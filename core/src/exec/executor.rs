//! The contract between the host and every backend at the granularity of a whole step: a
//! model whose weights a backend prepared once ([`Executor`]), sessions opened on it
//! ([`ExecutorSession`]), each running a plan step for given tokens and positions and handing
//! back the logits. CPU and GPU backends alike implement it, so the host holds a
//! `Box<dyn Executor>` and never asks which backend it has (ggml's `ggml_backend_i`, where a
//! whole graph is the unit of work, is the same idea).
//!
//! Where a session's KV cache lives is the one thing the host must know, because the host
//! owns the memory tiers (a cache that spills to flash, embedding rows read from flash):
//! an executor whose [`Residence`] is [`Residence::Host`] computes in the process's memory and
//! takes the caller's KV cache and embedding rows with each step; one that is
//! [`Residence::Device`] keeps its cache and activations in its own memory.

use alloc::boxed::Box;
use core::fmt;

use super::{EmbeddingRows, StepError};
use crate::backend::Parallel;
use crate::kv::{KvCache, KvType, KvTypes};
use crate::model::{ModelConfig, WeightView};
use crate::plan::{Plan, PlanError};

/// Where an executor's sessions keep their KV cache and activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residence {
    /// In the process's memory: each step takes the caller's KV cache ([`HostIo`]), which
    /// may keep part of itself on flash.
    Host,
    /// In a device's memory: sessions own their cache; the host's tiers do not apply.
    Device,
}

/// A model's weights by where they live, in bytes (the embedding table apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WeightMemory {
    /// Repacked by the backend into memory the process owns.
    pub dram: u64,
    /// Read in place from the mapped model file.
    pub mapped: u64,
    /// Repacked weights mapped from a packed-weight cache file.
    pub cached: u64,
    /// In a device's memory (the embedding table included).
    pub device: u64,
    /// The embedding table as the model file stores it (0 where it is on a device).
    pub embeddings: u64,
}

/// A session's memory, in bytes, where the executor holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionBytes {
    /// The KV cache in a device's memory (a host cache is the caller's to count).
    pub kv_device: u64,
    /// Activations and scratch of the largest step so far.
    pub arena: u64,
}

/// What a session is opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// Positions the session holds.
    pub n_ctx: usize,
    /// Most tokens of a step that wants only the last row's logits; larger steps, and steps
    /// that want every row's logits, grow the session's memory when they come.
    pub n_batch: usize,
    /// Key and value types of a KV cache the executor keeps itself.
    pub kv_types: KvTypes,
}

/// The caller's memory that a [`Residence::Host`] executor's step computes with.
pub struct HostIo<'a> {
    /// The session's KV cache.
    pub kv: &'a mut dyn KvCache,
    /// Embedding rows from outside the model (a table on flash); `None` reads the model's.
    pub embeddings: Option<&'a mut dyn EmbeddingRows>,
}

/// One step: `plan` run on `tokens` at positions `pos..pos + tokens.len()`.
pub struct Step<'a> {
    /// The step's plan (made for the executor's model configuration).
    pub plan: &'a Plan,
    /// Token ids, one per plan row.
    pub tokens: &'a [u32],
    /// Position of the first token.
    pub pos: usize,
    /// The caller's KV cache and rows; required by [`Residence::Host`] executors, ignored
    /// by others.
    pub host: Option<HostIo<'a>>,
    /// Threads a CPU executor may split the step's work over.
    pub parallel: &'a dyn Parallel,
}

/// Why an executor could not load a model, open a session or run a step.
#[derive(Debug)]
pub enum ExecError {
    /// The step does not fit the plan, the model or the context, or its inputs failed.
    Step(StepError),
    /// No plan can be made for the session's shape.
    Plan(PlanError),
    /// A [`Residence::Host`] executor was stepped without the caller's KV cache.
    NoHostKv,
    /// Memory for `what` could not be had.
    OutOfMemory {
        /// What the memory was for.
        what: &'static str,
        /// How much was asked for.
        bytes: usize,
    },
    /// The backend keeps its own KV cache and cannot store it in the types asked for.
    KvTypes {
        /// The backend's name as users know it.
        backend: &'static str,
        /// The types asked for.
        asked: KvTypes,
        /// The types it stores keys and values in.
        supported: &'static [KvType],
    },
    /// The backend's device or driver failed; `backend` names it ("Vulkan").
    Device {
        /// The backend's name as users know it.
        backend: &'static str,
        /// The device's error, kept typed for callers that inspect it.
        source: Box<dyn core::error::Error + Send + Sync>,
    },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Step(e) => e.fmt(f),
            ExecError::Plan(e) => e.fmt(f),
            ExecError::NoHostKv => {
                f.write_str("the executor computes in host memory and was given no KV cache")
            }
            ExecError::OutOfMemory { what, bytes } => {
                write!(f, "cannot allocate {bytes} bytes for the {what}")
            }
            ExecError::KvTypes {
                backend,
                asked,
                supported,
            } => {
                write!(
                    f,
                    "the {backend} backend keeps keys and values of one type, "
                )?;
                for (i, t) in supported.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " or " };
                    write!(f, "{sep}{t}")?;
                }
                write!(f, "; {asked} (keys/values) was asked for")
            }
            ExecError::Device { backend, source } => write!(f, "{backend}: {source}"),
        }
    }
}

impl core::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ExecError::Step(e) => Some(e),
            ExecError::Device { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

impl From<StepError> for ExecError {
    fn from(e: StepError) -> Self {
        ExecError::Step(e)
    }
}

/// A model whose weights one backend has prepared, from which sessions are opened. Shared by
/// sessions on several threads; each session is used by one thread at a time.
pub trait Executor: Send + Sync {
    /// The backend and how it computes, for messages: "cpu (x86-avx2)", "vulkan (llvmpipe)".
    fn describe(&self) -> &str;

    /// The model's configuration.
    fn config(&self) -> &ModelConfig;

    /// Where sessions keep their KV cache and activations.
    fn residence(&self) -> Residence;

    /// The weights by where they live.
    fn weight_memory(&self) -> WeightMemory;

    /// The embedding table as the model file stores it, for a caller that serves embedding
    /// rows from another tier ([`HostIo::embeddings`]); `None` where the executor keeps its
    /// own copy.
    fn embedding_table(&self) -> Option<WeightView<'_>>;

    /// A fresh session: an empty KV cache (on a device) and step memory for `spec`.
    fn open_session(&self, spec: SessionSpec) -> Result<Box<dyn ExecutorSession + '_>, ExecError>;
}

/// One conversation's step memory (and, on a device, its KV cache).
pub trait ExecutorSession: Send {
    /// Runs `step` and returns the logits: one row per token, or the last token's only, as
    /// the plan says. Positions past those already stored are overwritten, so a caller may
    /// rewind by stepping at an earlier position.
    fn step(&mut self, step: Step<'_>) -> Result<&mut [f32], ExecError>;

    /// The memory this session holds.
    fn memory(&self) -> SessionBytes;
}
