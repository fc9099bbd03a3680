//! The words a device executor exchanges with the host each step, in one buffer: what
//! changes from step to step (the first position, the token ids, the RoPE table) and the
//! logits it reads back. Kernels read the inputs from this buffer rather than from arguments
//! fixed when a step is recorded, so one recording serves every step of its shape.

use alloc::vec::Vec;

use crate::model::ModelConfig;
use crate::numerics::rope::rope_angles;

/// Where a step's inputs and results sit in the exchange buffer, in 32-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepIo {
    /// Most tokens a step may have.
    pub max_tokens: usize,
    /// Most logit rows a step may return.
    pub max_logit_rows: usize,
    /// Word 0 holds the step's first position; the token ids start at this word.
    pub tokens: usize,
    /// The RoPE (cos, sin) pairs of every token, from this (even) word on, as the kernels
    /// read pairs.
    pub rope: usize,
    /// The logits, from this word on.
    pub logits: usize,
    /// Words in all.
    pub words: usize,
}

impl StepIo {
    /// The layout for steps of up to `max_tokens` tokens and `max_logit_rows` logit rows of
    /// `c`'s model, or `None` when its size overflows.
    pub fn new(c: &ModelConfig, max_tokens: usize, max_logit_rows: usize) -> Option<StepIo> {
        let tokens = 1;
        let rope = max_tokens.checked_add(tokens + 1)? / 2 * 2;
        let logits = rope.checked_add(max_tokens.checked_mul(c.rope_dim / 2 * 2)?)?;
        let words = logits.checked_add(max_logit_rows.checked_mul(c.n_vocab)?)?;
        Some(StepIo {
            max_tokens,
            max_logit_rows,
            tokens,
            rope,
            logits,
            words,
        })
    }

    /// The input words of a step of `tokens` at positions `pos..` (word 0 up to the RoPE
    /// table's end) into `out`, which is cleared first; `pairs` is scratch of `rope_dim / 2`
    /// pairs. `None` when `pos` does not fit 32 bits or the step is larger than the layout.
    pub fn inputs(
        &self,
        c: &ModelConfig,
        pos: usize,
        tokens: &[u32],
        pairs: &mut [(f32, f32)],
        out: &mut Vec<u32>,
    ) -> Option<()> {
        if tokens.len() > self.max_tokens || pairs.len() != c.rope_dim / 2 {
            return None;
        }
        out.clear();
        out.push(u32::try_from(pos).ok()?);
        out.extend_from_slice(tokens);
        out.resize(self.rope, 0);
        for t in 0..tokens.len() {
            rope_angles(c, pos + t, pairs);
            out.extend(pairs.iter().flat_map(|&(c, s)| [c.to_bits(), s.to_bits()]));
        }
        Some(())
    }
}

/// Floats of attention's score scratch for steps of `n_tokens` tokens over `n_ctx`
/// positions: one `n_ctx`-long row per (token, head).
pub fn scores_len(c: &ModelConfig, n_tokens: usize, n_ctx: usize) -> Option<usize> {
    n_tokens.checked_mul(c.n_head)?.checked_mul(n_ctx)
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
    fn the_rope_table_starts_on_an_even_word_and_regions_stay_apart() {
        let c = config();
        for tokens in 1..6 {
            let l = StepIo::new(&c, tokens, 2).unwrap();
            assert_eq!(l.rope % 2, 0);
            assert!(l.tokens + tokens <= l.rope);
            assert_eq!(l.logits, l.rope + tokens * 4);
            assert_eq!(l.words, l.logits + 2 * 7);
        }
        assert_eq!(StepIo::new(&c, usize::MAX, 1), None);
    }

    #[test]
    fn inputs_hold_the_position_the_tokens_and_the_angles() {
        let c = config();
        let io = StepIo::new(&c, 3, 1).unwrap();
        let mut pairs = [(0.0, 0.0); 2];
        let mut words = Vec::new();
        io.inputs(&c, 5, &[4, 2], &mut pairs, &mut words).unwrap();
        assert_eq!(words.len(), io.rope + 2 * 4);
        assert_eq!(&words[..3], &[5, 4, 2]);
        let mut want = [(0.0, 0.0); 2];
        rope_angles(&c, 6, &mut want);
        assert_eq!(words[io.rope + 4], want[0].0.to_bits());
        assert_eq!(words[io.rope + 7], want[1].1.to_bits());
        assert_eq!(
            io.inputs(&c, 0, &[1, 2, 3, 4], &mut pairs, &mut words),
            None
        );
        assert_eq!(
            io.inputs(&c, usize::MAX, &[1], &mut pairs, &mut words),
            None
        );
    }
}
