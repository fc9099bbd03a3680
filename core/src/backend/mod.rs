//! What a backend is: a set of ops over f32 activations and weights in the backend's own
//! prepared form, plus the thread abstraction the ops may use.
//!
//! Core drives the plan ([`crate::exec`]) and calls a backend op by op; the backend decides
//! how each weight is laid out (at [`Backend::prepare`]) and how each op computes. The
//! [`reference`](mod@reference) backend reads weights as the file stores them and is the oracle that every
//! other backend is tested against.

pub mod reference;
#[cfg(feature = "spin")]
pub mod spin_pool;

use core::fmt;

use crate::DType;
use crate::kv::KvCache;
use crate::model::{ModelConfig, WeightRole, WeightView};

/// Runs `n_tasks` independent tasks, possibly on several threads. Host provides a pool;
/// firmware can provide its own; [`Sequential`] runs them in order on the caller's thread.
pub trait Parallel: Sync {
    /// Threads that tasks may run on (1 for sequential).
    fn n_threads(&self) -> usize;

    /// Calls `task(i)` once for each `i` in `0..n_tasks` and returns when all are done. When
    /// `n_tasks == n_threads()`, task `i` runs on thread `i`, so work sized for a thread's
    /// [`speed`](Parallel::speed) lands on that thread.
    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync));

    /// Relative speed of thread `thread` (any positive unit, compared between threads only).
    /// Work is split across threads in proportion to it, so a big core gets more rows than a
    /// little one; equal speeds give an even split.
    fn speed(&self, thread: usize) -> f32 {
        let _ = thread;
        1.0
    }
}

/// Runs every task on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Parallel for Sequential {
    fn n_threads(&self) -> usize {
        1
    }

    fn run(&self, n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..n_tasks).for_each(task);
    }
}

/// Why a backend cannot take a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrepareError {
    /// The backend has no kernel for this format in this role.
    UnsupportedType {
        /// The weight's format.
        dtype: DType,
        /// What the model uses the weight for.
        role: WeightRole,
    },
    /// Memory for a repacked copy could not be had.
    OutOfMemory {
        /// Size of the repacked copy asked for.
        bytes: usize,
    },
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrepareError::UnsupportedType { dtype, role } => {
                write!(f, "no kernel for {dtype} weights used as {role:?}")
            }
            PrepareError::OutOfMemory { bytes } => {
                write!(f, "out of memory preparing {bytes} bytes of weights")
            }
        }
    }
}

/// Where a prepared weight's bytes live, for memory reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// Read in place from the model file's bytes.
    File,
    /// Repacked into this many bytes of memory the process owns.
    Dram(u64),
    /// Repacked, this many bytes read in place from a mapped packed-weight cache file.
    Cached(u64),
}

/// Per-step facts that RoPE and attention need.
#[derive(Clone, Copy, Debug)]
pub struct Positions {
    /// Position of the step's first token; token `t` of the step sits at `first + t`.
    pub first: usize,
}

/// A compute backend. `'w` is the lifetime of the model file's bytes, which prepared weights
/// may borrow (the reference backend keeps views into the mapped file).
///
/// Row-wise ops take buffers of whole token rows; shapes are guaranteed by the plan and the
/// model loader, so an op may assume them.
pub trait Backend<'w> {
    /// A weight in this backend's layout.
    type Weight;

    /// A short name for messages and benchmarks.
    fn name(&self) -> &'static str;

    /// Turns a weight as stored in the file into this backend's layout.
    fn prepare(&self, view: WeightView<'w>, role: WeightRole)
    -> Result<Self::Weight, PrepareError>;

    /// The weight as the model file stores it.
    fn stored(&self, weight: &Self::Weight) -> WeightView<'w>;

    /// Where the prepared weight's bytes live.
    fn holding(&self, weight: &Self::Weight) -> Holding;

    /// `out[t]` = row `tokens[t]` of the embedding table. Token ids are below `n_vocab`.
    fn embed(&self, table: &Self::Weight, tokens: &[u32], out: &mut [f32]);

    /// Row-wise RMS normalisation of `x` (rows of `weight`'s length) into `out`.
    fn rms_norm(&self, x: &[f32], weight: &Self::Weight, eps: f32, out: &mut [f32]);

    /// `out[t]` = W `x[t]` for every row `t` of `x` (`cols` wide) into `out` (`rows` wide).
    /// `scratch` holds at least `cols + 16` floats per row of `x`, for the backend's own use
    /// (e.g. the activations quantized for integer kernels).
    fn matmul(
        &self,
        weight: &Self::Weight,
        x: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
        par: &dyn Parallel,
    );

    /// Adds `bias` to every row of `x`.
    fn add_bias(&self, x: &mut [f32], bias: &Self::Weight);

    /// RMS-normalises each `head_dim`-wide head of every row of `x` in place, times `weight`.
    fn head_norm(&self, x: &mut [f32], weight: &Self::Weight, eps: f32);

    /// Rotates the `n_heads` heads of each row of `x` by RoPE at the row's position.
    fn rope(
        &self,
        x: &mut [f32],
        n_heads: usize,
        config: &ModelConfig,
        at: Positions,
        par: &dyn Parallel,
    );

    /// Causal grouped-query attention of the query rows `q` against positions
    /// `0..=at.first + t` of `layer` in `kv`, into `out`. `scores` has room for `n_ctx` floats.
    /// A backend may split the work over `par`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &[f32],
        kv: &dyn KvCache,
        layer: usize,
        config: &ModelConfig,
        at: Positions,
        scores: &mut [f32],
        out: &mut [f32],
        par: &dyn Parallel,
    );

    /// `gate` = silu(`gate`) * `up`, element-wise.
    fn swiglu(&self, gate: &mut [f32], up: &[f32], par: &dyn Parallel);

    /// `x` += `y`, element-wise.
    fn add(&self, x: &mut [f32], y: &[f32]);
}
