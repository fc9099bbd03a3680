//! Running steps. [`Runner`] runs a plan on a per-op backend: for each op, the arena views of
//! its buffers and the model's weights go to the backend op; it is the only place that knows
//! both the plan and a backend, and it allocates nothing. [`executor`] is the contract at the
//! granularity of a whole step that every backend meets, CPU and GPU alike, and
//! [`PlanExecutor`] meets it for the per-op backends.

#[cfg(feature = "alloc")]
pub mod device;
#[cfg(feature = "alloc")]
pub mod executor;
#[cfg(feature = "alloc")]
mod plan_executor;

#[cfg(feature = "alloc")]
pub use executor::{
    ExecError, Executor, ExecutorSession, HostIo, Residence, SessionBytes, SessionSpec, Step,
    WeightMemory,
};
#[cfg(feature = "alloc")]
pub use plan_executor::PlanExecutor;

use core::fmt;

use crate::arena::{Arena, ArenaError};
use crate::backend::{Backend, Parallel, Positions};
use crate::kv::{KvCache, KvError};
use crate::model::{LayerStore, Model, ModelConfig, WeightId};
use crate::plan::{Buf, Op, Plan};

/// Why a step could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The number of tokens differs from the plan's.
    TokenCount {
        /// Tokens the plan was made for.
        plan: usize,
        /// Tokens the step was given.
        got: usize,
    },
    /// A token id is not in the vocabulary.
    BadToken {
        /// The token id.
        token: u32,
        /// Tokens in the vocabulary; valid ids are below it.
        n_vocab: usize,
    },
    /// The step would run past the context the plan or the cache was made for.
    ContextFull {
        /// Position of the step's first token.
        pos: usize,
        /// Tokens in the step.
        n_tokens: usize,
        /// Positions available: the smaller of the plan's and the cache's context.
        n_ctx: usize,
    },
    /// The KV cache does not match the model.
    KvShape,
    /// The plan was made for another model configuration.
    PlanMismatch,
    /// The arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes the plan's arena needs.
        needed: usize,
        /// Usable bytes of the arena given.
        capacity: usize,
    },
    /// A buffer of the plan could not be lent from the arena (misaligned, out of bounds or
    /// overlapping views).
    Arena(ArenaError),
    /// The KV cache refused a write (a position past its end, a row of the wrong width) or
    /// failed to move rows to or from its flash tier.
    Kv(KvError),
    /// The plan refers to a weight the model lacks (a plan made for another model).
    MissingWeight(WeightId),
    /// The runner's [`EmbeddingRows`] could not produce a row.
    Embed(EmbedError),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::TokenCount { plan, got } => {
                write!(f, "step has {got} tokens, its plan {plan}")
            }
            StepError::BadToken { token, n_vocab } => {
                write!(f, "token id {token} is outside the vocabulary of {n_vocab}")
            }
            StepError::ContextFull {
                pos,
                n_tokens,
                n_ctx,
            } => write!(
                f,
                "{n_tokens} tokens at position {pos} exceed the context of {n_ctx} tokens"
            ),
            StepError::KvShape => f.write_str("the KV cache's shape does not match the model"),
            StepError::PlanMismatch => f.write_str("the plan was made for another model"),
            StepError::ArenaTooSmall { needed, capacity } => write!(
                f,
                "the arena holds {capacity} bytes, the step needs {needed}"
            ),
            StepError::Arena(e) => write!(f, "arena: {e:?}"),
            StepError::Kv(e) => write!(f, "KV cache: {e}"),
            StepError::MissingWeight(id) => write!(f, "model lacks weight {id:?}"),
            StepError::Embed(e) => write!(
                f,
                "reading the embedding row of token {} failed; the row source keeps the cause",
                e.token
            ),
        }
    }
}

impl core::error::Error for StepError {}

/// Embedding rows kept outside the model's weights, such as a table on flash read one row per
/// token so that it never occupies DRAM. A source decodes rows exactly as the backend's
/// `embed` would, so where the rows come from never changes a result.
pub trait EmbeddingRows {
    /// `out[t]` = row `tokens[t]` of the table, as f32. Token ids are below `n_vocab`.
    fn embed(&mut self, tokens: &[u32], out: &mut [f32]) -> Result<(), EmbedError>;
}

/// An [`EmbeddingRows`] source failed to produce the row of `token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbedError {
    /// The token whose row could not be produced; the source keeps the cause.
    pub token: u32,
}

/// Everything a step runs with, borrowed for its duration.
pub struct Runner<'r, 'w, B: Backend<'w>, L> {
    /// The per-op backend that computes each op.
    pub backend: &'r B,
    /// The weights and configuration the plan was made for.
    pub model: &'r Model<B::Weight, L>,
    /// Threads the backend may split an op's work over.
    pub parallel: &'r dyn Parallel,
    /// Where embedding rows come from; `None` reads the model's own table.
    pub embeddings: Option<&'r mut dyn EmbeddingRows>,
}

impl<'r, 'w, B: Backend<'w>, L: LayerStore<B::Weight>> Runner<'r, 'w, B, L> {
    /// Runs `plan` on `tokens` at positions `pos..pos + tokens.len()` and returns the logits
    /// (one row per token, or the last token's only, as the plan says), which live in the
    /// arena's memory.
    pub fn step<'a>(
        &mut self,
        plan: &Plan,
        kv: &mut dyn KvCache,
        mut arena: Arena<'a>,
        tokens: &[u32],
        pos: usize,
    ) -> Result<&'a mut [f32], StepError> {
        let c = &self.model.config;
        self.check(plan, kv, &arena, tokens, pos)?;
        let at = Positions { first: pos };
        let weight = |id| self.model.weight(id).ok_or(StepError::MissingWeight(id));
        let b = self.backend;
        for op in plan.ops() {
            match op {
                Op::Embed { out } => {
                    let out = arena.f32_mut(plan.span(out)).map_err(StepError::Arena)?;
                    match self.embeddings.as_deref_mut() {
                        Some(rows) => rows.embed(tokens, out).map_err(StepError::Embed)?,
                        None => b.embed(weight(WeightId::Embedding)?, tokens, out),
                    }
                }
                Op::RmsNorm { weight: w, x, out } => {
                    let [x, out] = views(&mut arena, plan, [x, out])?;
                    b.rms_norm(x, weight(w)?, c.rms_eps, out);
                }
                Op::MatMul {
                    weight: w,
                    x,
                    out,
                    last_row_only,
                } => {
                    let width = plan.width(x);
                    let [x, out, scratch] = views(&mut arena, plan, [x, out, Buf::Scratch])?;
                    let x = if last_row_only {
                        &x[x.len() - width..]
                    } else {
                        &x[..]
                    };
                    b.matmul(weight(w)?, x, out, scratch, self.parallel);
                }
                Op::AddBias { weight: w, x } => {
                    let [x] = views(&mut arena, plan, [x])?;
                    b.add_bias(x, weight(w)?);
                }
                Op::HeadNorm { weight: w, x, .. } => {
                    let [x] = views(&mut arena, plan, [x])?;
                    b.head_norm(x, weight(w)?, c.rms_eps);
                }
                Op::Rope { x, heads } => {
                    let [x] = views(&mut arena, plan, [x])?;
                    b.rope(x, heads.count(c), c, at, self.parallel);
                }
                Op::StoreKv { layer, k, v } => {
                    let [k, v] = views(&mut arena, plan, [k, v])?;
                    let w = c.kv_width();
                    for (t, (k, v)) in k.chunks_exact(w).zip(v.chunks_exact(w)).enumerate() {
                        kv.write(layer as usize, pos + t, k, v)
                            .map_err(StepError::Kv)?;
                    }
                }
                Op::Attention { layer, q, out } => {
                    let layer = layer as usize;
                    kv.prepare_layer(layer, pos + tokens.len())
                        .map_err(StepError::Kv)?;
                    let [q, out, scores] = views(&mut arena, plan, [q, out, Buf::Scratch])?;
                    b.attention(q, kv, layer, c, at, scores, out, self.parallel);
                }
                Op::SwiGlu { gate, up } => {
                    let [gate, up] = views(&mut arena, plan, [gate, up])?;
                    b.swiglu(gate, up, self.parallel);
                }
                Op::Add { x, y } => {
                    let [x, y] = views(&mut arena, plan, [x, y])?;
                    b.add(x, y);
                }
            }
        }
        let logits = plan.span(Buf::Logits);
        arena.into_f32_mut(logits).map_err(StepError::Arena)
    }

    fn check(
        &self,
        plan: &Plan,
        kv: &dyn KvCache,
        arena: &Arena<'_>,
        tokens: &[u32],
        pos: usize,
    ) -> Result<(), StepError> {
        let c = &self.model.config;
        check_step(plan, c, tokens, pos, kv.n_ctx())?;
        if kv.n_layer() != c.n_layer || kv.width() != c.kv_width() {
            return Err(StepError::KvShape);
        }
        if arena.capacity() < plan.arena_bytes() {
            return Err(StepError::ArenaTooSmall {
                needed: plan.arena_bytes(),
                capacity: arena.capacity(),
            });
        }
        Ok(())
    }
}

/// What every backend checks before it runs `plan` for a model of `config` on `tokens` at
/// positions `pos..pos + tokens.len()` with room for `n_ctx` positions: the plan is the
/// model's and has this many tokens, every id is in the vocabulary, the step fits the
/// context.
pub fn check_step(
    plan: &Plan,
    config: &ModelConfig,
    tokens: &[u32],
    pos: usize,
    n_ctx: usize,
) -> Result<(), StepError> {
    if tokens.len() != plan.n_tokens() {
        return Err(StepError::TokenCount {
            plan: plan.n_tokens(),
            got: tokens.len(),
        });
    }
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= config.n_vocab) {
        return Err(StepError::BadToken {
            token,
            n_vocab: config.n_vocab,
        });
    }
    if plan.config() != config {
        return Err(StepError::PlanMismatch);
    }
    let n_ctx = plan.n_ctx().min(n_ctx);
    if pos.saturating_add(tokens.len()) > n_ctx {
        return Err(StepError::ContextFull {
            pos,
            n_tokens: tokens.len(),
            n_ctx,
        });
    }
    Ok(())
}

fn views<'a, const N: usize>(
    arena: &'a mut Arena<'_>,
    plan: &Plan,
    bufs: [Buf; N],
) -> Result<[&'a mut [f32]; N], StepError> {
    arena
        .f32_many(bufs.map(|b| plan.span(b)))
        .map_err(StepError::Arena)
}
