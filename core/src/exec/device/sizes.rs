//! How large a device session's step buffers are, and when a step needs them larger: the
//! activation arena (the plan's), attention's score scratch and the exchange buffer. A
//! session sizes them for its usual step at the start and grows only for a larger step,
//! so a step of a shape seen before allocates nothing.

use crate::exec::device::io::{StepIo, scores_len};
use crate::model::ModelConfig;
use crate::plan::{LogitRows, Plan};

/// The sizes of a session's step buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepSizes {
    /// Bytes of the activation arena.
    pub arena_bytes: usize,
    /// Floats of attention's score scratch.
    pub scores: usize,
    /// The exchange buffer's layout (its size is `io.words` words).
    pub io: StepIo,
}

/// Which buffers a step needs larger than they are; their new sizes are in the
/// [`StepSizes`] that [`StepSizes::grow`] updated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grown {
    /// The activation arena.
    pub arena: bool,
    /// The score scratch.
    pub scores: bool,
    /// The exchange buffer.
    pub io: bool,
}

impl Grown {
    /// Whether any buffer grew (recorded steps then name old buffers and are made again).
    pub fn any(self) -> bool {
        self.arena || self.scores || self.io
    }
}

impl StepSizes {
    /// Sizes for steps of up to `n_batch` tokens over `n_ctx` positions that want the last
    /// token's logits; `None` when a size overflows or the plan cannot be made.
    pub fn new(c: &ModelConfig, n_ctx: usize, n_batch: usize) -> Option<StepSizes> {
        let plan = Plan::new(c, n_batch, n_ctx, LogitRows::Last).ok()?;
        let io = StepIo::new(c, n_batch, 1)?;
        let scores = scores_len(c, n_batch, n_ctx)?;
        scores.checked_mul(4)?;
        io.words.checked_mul(4)?;
        Some(StepSizes {
            arena_bytes: plan.arena_bytes(),
            scores,
            io,
        })
    }

    /// Grows the sizes that `plan` (over `n_ctx` positions) needs larger, and says which;
    /// `None` when a size overflows.
    pub fn grow(&mut self, plan: &Plan, n_ctx: usize) -> Option<Grown> {
        let c = plan.config();
        let n = plan.n_tokens();
        let mut grown = Grown::default();
        if self.arena_bytes < plan.arena_bytes() {
            self.arena_bytes = plan.arena_bytes();
            grown.arena = true;
        }
        let scores = scores_len(c, n, n_ctx)?;
        scores.checked_mul(4)?;
        if self.scores < scores {
            self.scores = scores;
            grown.scores = true;
        }
        let rows = plan.n_logit_rows();
        if n > self.io.max_tokens || rows > self.io.max_logit_rows {
            let io = StepIo::new(
                c,
                n.max(self.io.max_tokens),
                rows.max(self.io.max_logit_rows),
            )?;
            io.words.checked_mul(4)?;
            self.io = io;
            grown.io = true;
        }
        Some(grown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, RopeStyle};

    fn config() -> ModelConfig {
        ModelConfig {
            arch: Arch::Llama,
            n_vocab: 7,
            n_embd: 8,
            n_layer: 1,
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
            n_ff: 16,
            n_ctx_train: 64,
            rms_eps: 1e-5,
            rope_theta: 10000.0,
            rope_freq_scale: 1.0,
            rope_dim: 4,
            rope_style: RopeStyle::AdjacentPairs,
            qkv_bias: false,
            qk_norm: false,
        }
    }

    #[test]
    fn steps_no_larger_than_the_batch_grow_nothing_and_larger_ones_grow_once() {
        let c = config();
        let mut sizes = StepSizes::new(&c, 32, 4).unwrap();
        for n in 1..=4 {
            let plan = Plan::new(&c, n, 32, LogitRows::Last).unwrap();
            assert_eq!(sizes.grow(&plan, 32), Some(Grown::default()), "{n} tokens");
        }
        let every_row = Plan::new(&c, 6, 32, LogitRows::All).unwrap();
        let grown = sizes.grow(&every_row, 32).unwrap();
        assert!(grown.arena && grown.scores && grown.io && grown.any());
        assert_eq!(sizes.io.max_tokens, 6);
        assert_eq!(sizes.io.max_logit_rows, 6);
        assert_eq!(sizes.scores, 6 * c.n_head * 32);
        assert_eq!(sizes.grow(&every_row, 32), Some(Grown::default()));
        assert!(StepSizes::new(&c, 32, usize::MAX).is_none());
    }
}
