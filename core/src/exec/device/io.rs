//! The words a device executor exchanges with the host each step, in one buffer: what
//! changes from step to step (the first position, the token ids, the RoPE table) and the
//! logits it reads back. Kernels read the inputs from this buffer rather than from arguments
//! fixed when a step is recorded, so one recording serves every step of its shape.

use alloc::vec::Vec;

use crate::model::{ModelConfig, WeightId};
use crate::numerics::rope::rope_angles;
use crate::plan::{Buf, Op, Plan};

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

/// `len` 32-bit words from word `offset` on, of the activation arena or of the exchange
/// buffer (each [`DeviceOp`] says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Words {
    /// The first word.
    pub offset: usize,
    /// How many words.
    pub len: usize,
}

/// One op of a step as a device backend records it: the plan's op with its buffers resolved
/// to words of the activation arena (laid out as the plan's arena, so a device runs the very
/// plan the CPU runs), and its inputs and results to words of the exchange buffer
/// ([`StepIo`]). The step's first position is word 0 of the exchange buffer
/// ([`StepIo::POSITION`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    /// Embedding rows of the token ids (exchange `tokens`) into `out`.
    Embed {
        /// The step's token ids, in the exchange buffer.
        tokens: Words,
        /// Where the rows go.
        out: Words,
    },
    /// RMS norm of each row of `x` times `weight`, into `out`.
    RmsNorm {
        /// The norm's weight.
        weight: WeightId,
        /// Rows to normalise.
        x: Words,
        /// Where the rows go.
        out: Words,
    },
    /// `out[t] = W x[t]`; `scratch`, as long as `x`, receives `x` rounded to the weight's
    /// activation format.
    MatMul {
        /// The matrix.
        weight: WeightId,
        /// Input rows (only the last one where the plan wants the last logits only).
        x: Words,
        /// Room for the rounded activations.
        scratch: Words,
        /// Output rows.
        out: Words,
    },
    /// `weight` added to every row of `x`.
    AddBias {
        /// The bias.
        weight: WeightId,
        /// Rows, in place.
        x: Words,
    },
    /// RMS norm of every head of `x` in place.
    HeadNorm {
        /// The norm's weight, one head wide.
        weight: WeightId,
        /// Rows, in place.
        x: Words,
    },
    /// RoPE of `heads` heads per row of `x`, with the (cos, sin) pairs at `table` in the
    /// exchange buffer.
    Rope {
        /// Rows, in place.
        x: Words,
        /// Heads per row.
        heads: usize,
        /// The step's (cos, sin) table, in the exchange buffer.
        table: Words,
    },
    /// Key and value rows into the cache of `layer`, at the step's position.
    StoreKv {
        /// The layer.
        layer: usize,
        /// Key rows.
        k: Words,
        /// Value rows.
        v: Words,
    },
    /// Causal attention of `q` over the cache of `layer`, into `out`.
    Attention {
        /// The layer.
        layer: usize,
        /// Query rows.
        q: Words,
        /// Where the rows go.
        out: Words,
    },
    /// `gate = silu(gate) * up`.
    SwiGlu {
        /// Gate rows, in place.
        gate: Words,
        /// Up rows.
        up: Words,
    },
    /// `x += y`.
    Add {
        /// Rows, in place.
        x: Words,
        /// Rows added.
        y: Words,
    },
    /// The logits (`from`, in the arena) copied to the exchange buffer (`to`), last.
    ReturnLogits {
        /// The logit rows in the arena.
        from: Words,
        /// Their place in the exchange buffer.
        to: Words,
    },
}

impl StepIo {
    /// The exchange buffer's word holding the step's first position.
    pub const POSITION: Words = Words { offset: 0, len: 1 };

    /// `plan`'s ops as a device records them, ending with the copy of the logits to this
    /// layout's place for them. `None` when the plan is larger than the layout (more tokens
    /// or logit rows than it was made for).
    pub fn ops<'p>(&self, plan: &'p Plan) -> Option<impl Iterator<Item = DeviceOp> + 'p> {
        let c = *plan.config();
        let n = plan.n_tokens();
        if n > self.max_tokens || plan.n_logit_rows() > self.max_logit_rows {
            return None;
        }
        let act = move |buf: Buf| {
            let span = plan.span(buf);
            Words {
                offset: span.offset / 4,
                len: span.len,
            }
        };
        let tokens = Words {
            offset: self.tokens,
            len: n,
        };
        let table = Words {
            offset: self.rope,
            len: n * (c.rope_dim / 2) * 2,
        };
        let logits = act(Buf::Logits);
        let to = Words {
            offset: self.logits,
            len: logits.len,
        };
        let ops = plan.ops().map(move |op| match op {
            Op::Embed { out } => DeviceOp::Embed {
                tokens,
                out: act(out),
            },
            Op::RmsNorm { weight, x, out } => DeviceOp::RmsNorm {
                weight,
                x: act(x),
                out: act(out),
            },
            Op::MatMul {
                weight,
                x,
                out,
                last_row_only,
            } => {
                let mut x_words = act(x);
                if last_row_only {
                    let width = plan.width(x);
                    x_words = Words {
                        offset: x_words.offset + x_words.len - width,
                        len: width,
                    };
                }
                let scratch = Words {
                    offset: act(Buf::Scratch).offset,
                    len: x_words.len,
                };
                DeviceOp::MatMul {
                    weight,
                    x: x_words,
                    scratch,
                    out: act(out),
                }
            }
            Op::AddBias { weight, x } => DeviceOp::AddBias { weight, x: act(x) },
            Op::HeadNorm { weight, x, .. } => DeviceOp::HeadNorm { weight, x: act(x) },
            Op::Rope { x, heads } => DeviceOp::Rope {
                x: act(x),
                heads: heads.count(&c),
                table,
            },
            Op::StoreKv { layer, k, v } => DeviceOp::StoreKv {
                layer: layer as usize,
                k: act(k),
                v: act(v),
            },
            Op::Attention { layer, q, out } => DeviceOp::Attention {
                layer: layer as usize,
                q: act(q),
                out: act(out),
            },
            Op::SwiGlu { gate, up } => DeviceOp::SwiGlu {
                gate: act(gate),
                up: act(up),
            },
            Op::Add { x, y } => DeviceOp::Add {
                x: act(x),
                y: act(y),
            },
        });
        Some(ops.chain(core::iter::once(DeviceOp::ReturnLogits {
            from: logits,
            to,
        })))
    }
}

/// The `(cos, sin)` table a device's RoPE kernel reads for rows at positions `first..first +
/// n_tokens`, flattened: `rope_dim / 2` pairs per row, from the reference's own angles (a
/// GPU's `sin`/`cos` are far less exact). A step's table is written by [`StepIo::inputs`];
/// this builds one alone, for tests of the kernel.
pub fn rope_table(c: &ModelConfig, first: usize, n_tokens: usize) -> Vec<f32> {
    let mut pairs = alloc::vec![(0f32, 0f32); c.rope_dim / 2];
    let mut out = Vec::with_capacity(n_tokens * pairs.len() * 2);
    for t in 0..n_tokens {
        rope_angles(c, first + t, &mut pairs);
        out.extend(pairs.iter().flat_map(|&(c, s)| [c, s]));
    }
    out
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
    fn device_ops_follow_the_plan_and_end_with_the_logits() {
        use crate::plan::LogitRows;
        let c = config();
        let plan = Plan::new(&c, 3, 16, LogitRows::Last).unwrap();
        let io = StepIo::new(&c, 3, 1).unwrap();
        let ops: Vec<DeviceOp> = io.ops(&plan).unwrap().collect();
        assert_eq!(ops.len(), plan.ops().count() + 1);
        assert!(
            matches!(ops[0], DeviceOp::Embed { tokens, .. } if tokens == Words { offset: 1, len: 3 })
        );
        let logits = plan.span(Buf::Logits);
        assert_eq!(
            ops.last(),
            Some(&DeviceOp::ReturnLogits {
                from: Words {
                    offset: logits.offset / 4,
                    len: c.n_vocab
                },
                to: Words {
                    offset: io.logits,
                    len: c.n_vocab
                },
            })
        );
        // The output head multiplies only the last row, its scratch as long as that row.
        let head = ops
            .iter()
            .rev()
            .find_map(|op| match op {
                DeviceOp::MatMul { x, scratch, .. } => Some((*x, *scratch)),
                _ => None,
            })
            .unwrap();
        let hidden = plan.span(Buf::Normed);
        assert_eq!(head.0.len, c.n_embd);
        assert_eq!(head.0.offset + head.0.len, hidden.offset / 4 + hidden.len);
        assert_eq!(head.1.len, c.n_embd);
        for op in &ops {
            if let DeviceOp::Rope { table, heads, .. } = op {
                assert_eq!(
                    *table,
                    Words {
                        offset: io.rope,
                        len: 3 * 4
                    }
                );
                assert!(*heads == c.n_head || *heads == c.n_head_kv);
            }
        }
        // A plan larger than the layout has no ops.
        assert!(StepIo::new(&c, 2, 1).unwrap().ops(&plan).is_none());
        let every_row = Plan::new(&c, 3, 16, LogitRows::All).unwrap();
        assert!(io.ops(&every_row).is_none());
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
