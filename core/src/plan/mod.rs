//! The plan of one step: the ordered ops of a forward pass over `n_tokens` new tokens, and
//! where in the arena each activation lives.
//!
//! A plan is built once per step shape (one for each prefill chunk size, one for decode) and
//! holds no per-op storage: [`Plan::ops`] generates the sequence from the configuration, so
//! the same plan serves a 2-layer fixture and a 128-layer model without allocating.

mod ops;

pub use ops::{Buf, Heads, Op};

use core::fmt;

use crate::arena::{ArenaError, Lifetime, Span, plan_offsets};
use crate::model::ModelConfig;

/// Which positions of a step need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitRows {
    /// Only the last token's (generation).
    Last,
    /// Every token's (teacher-forced evaluation).
    All,
}

/// Why a plan could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// A step needs at least one token, and no more than the context holds.
    BadTokenCount {
        /// Tokens asked for.
        n_tokens: usize,
        /// Positions the context holds.
        n_ctx: usize,
    },
    /// The activations of this step do not fit in the address space.
    TooLarge,
    /// The arena offsets could not be planned.
    Arena(ArenaError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::BadTokenCount { n_tokens, n_ctx } => write!(
                f,
                "a step of {n_tokens} tokens does not fit a context of {n_ctx}"
            ),
            PlanError::TooLarge => f.write_str("the activations of this step are too large"),
            PlanError::Arena(e) => write!(f, "arena planning failed: {e:?}"),
        }
    }
}

/// The ops and the arena layout of one forward step.
#[derive(Clone, Debug)]
pub struct Plan {
    config: ModelConfig,
    n_tokens: usize,
    n_ctx: usize,
    logit_rows: LogitRows,
    spans: [Span; Buf::COUNT],
    arena_bytes: usize,
}

impl Plan {
    /// Plans a step of `n_tokens` tokens in a context of `n_ctx` positions.
    pub fn new(
        config: &ModelConfig,
        n_tokens: usize,
        n_ctx: usize,
        logit_rows: LogitRows,
    ) -> Result<Plan, PlanError> {
        if n_tokens == 0 || n_tokens > n_ctx {
            return Err(PlanError::BadTokenCount { n_tokens, n_ctx });
        }
        let mut plan = Plan {
            config: *config,
            n_tokens,
            n_ctx,
            logit_rows,
            spans: [Span { offset: 0, len: 0 }; Buf::COUNT],
            arena_bytes: 0,
        };
        let mut lifetimes = [Lifetime {
            bytes: 0,
            first_use: usize::MAX,
            last_use: 0,
        }; Buf::COUNT];
        for buf in Buf::ALL {
            let len = plan.buf_len(buf).ok_or(PlanError::TooLarge)?;
            lifetimes[buf as usize].bytes = len.checked_mul(4).ok_or(PlanError::TooLarge)?;
            plan.spans[buf as usize].len = len;
        }
        for (i, op) in plan.ops().enumerate() {
            for buf in op.buffers().into_iter().flatten() {
                let life = &mut lifetimes[buf as usize];
                life.first_use = life.first_use.min(i);
                life.last_use = life.last_use.max(i);
            }
        }
        for life in &mut lifetimes {
            if life.first_use == usize::MAX {
                // Never used in this plan (e.g. no layers): give it an empty, harmless slot.
                *life = Lifetime {
                    bytes: 0,
                    first_use: 0,
                    last_use: 0,
                };
            }
        }
        let mut offsets = [0usize; Buf::COUNT];
        plan.arena_bytes = plan_offsets(&lifetimes, crate::arena::Arena::ALIGN, &mut offsets)
            .map_err(PlanError::Arena)?;
        for (span, offset) in plan.spans.iter_mut().zip(offsets) {
            span.offset = offset;
        }
        Ok(plan)
    }

    /// The configuration the plan was made for; a step checks the model's against it.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Tokens per step: every step run with this plan has exactly this many.
    pub fn n_tokens(&self) -> usize {
        self.n_tokens
    }

    /// Positions the plan's context holds; steps must end at or before it.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Which token rows get logits.
    pub fn logit_rows(&self) -> LogitRows {
        self.logit_rows
    }

    /// Rows of logits this step produces.
    pub fn n_logit_rows(&self) -> usize {
        match self.logit_rows {
            LogitRows::Last => 1,
            LogitRows::All => self.n_tokens,
        }
    }

    /// Bytes of arena this step needs (offsets from a 64-byte-aligned base).
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Where `buf` lives in the arena.
    pub fn span(&self, buf: Buf) -> Span {
        self.spans[buf as usize]
    }

    /// Floats of [`Buf::Scratch`]: a row of `n_ctx` attention scores, or per token a
    /// matmul input row plus 16 floats (a copy of the row, or its quantized form: at most
    /// 1.75 bytes per element plus alignment), whichever is more.
    pub fn scratch_len(&self) -> usize {
        let c = &self.config;
        let widest_input = c.n_embd.max(c.q_width()).max(c.n_ff);
        let per_token = widest_input.saturating_add(16);
        self.n_ctx.max(self.n_tokens.saturating_mul(per_token))
    }

    /// Elements per token row of `buf` (the scratch has one row).
    pub fn width(&self, buf: Buf) -> usize {
        let c = &self.config;
        match buf {
            Buf::Hidden | Buf::Normed | Buf::Proj => c.n_embd,
            Buf::Q | Buf::Attn => c.q_width(),
            Buf::K | Buf::V => c.kv_width(),
            Buf::Gate | Buf::Up => c.n_ff,
            Buf::Logits => c.n_vocab,
            Buf::Scratch => self.scratch_len(),
        }
    }

    fn buf_len(&self, buf: Buf) -> Option<usize> {
        let rows = match buf {
            Buf::Logits => self.n_logit_rows(),
            Buf::Scratch => 1,
            _ => self.n_tokens,
        };
        rows.checked_mul(self.width(buf))
    }

    /// The ops of this step, in order.
    pub fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        let layer_ops = ops::layer_template(&self.config);
        let layers = (0..self.config.n_layer).flat_map(move |layer| {
            let layer = layer as u16;
            layer_ops
                .clone()
                .into_iter()
                .map(move |op| op.in_layer(layer))
        });
        core::iter::once(Op::Embed { out: Buf::Hidden })
            .chain(layers)
            .chain(ops::head(self.logit_rows))
    }
}
