//! The op vocabulary of a plan and the op sequences of the llama family.

use super::LogitRows;
use crate::model::{LayerTensor, ModelConfig, WeightId};

/// The activation buffers of a step. Each holds `n_tokens` rows (logits: as many rows as
/// the step wants logits for; scratch: one row, see [`Buf::Scratch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// The residual stream.
    Hidden,
    /// The normalised residual, input of the projections.
    Normed,
    /// Query rows, `n_head * head_dim` wide.
    Q,
    /// Key rows, `n_head_kv * head_dim` wide; stored into the cache.
    K,
    /// Value rows, as wide as the keys; stored into the cache.
    V,
    /// Attention output, before the output projection.
    Attn,
    /// Output of a projection back to the residual width.
    Proj,
    /// Feed-forward gate projection, `n_ff` wide; holds the SwiGLU result afterwards.
    Gate,
    /// Feed-forward up projection, `n_ff` wide.
    Up,
    /// The output head's rows, `n_vocab` wide.
    Logits,
    /// Working memory of matmuls (activations quantized for integer kernels) and attention
    /// (a row of scores): room for [`Plan::scratch_len`](super::Plan::scratch_len) floats.
    Scratch,
}

impl Buf {
    /// Number of buffers: the length of [`Buf::ALL`].
    pub const COUNT: usize = 11;
    /// Every buffer, in declaration order (its index is its discriminant).
    pub const ALL: [Buf; Buf::COUNT] = [
        Buf::Hidden,
        Buf::Normed,
        Buf::Q,
        Buf::K,
        Buf::V,
        Buf::Attn,
        Buf::Proj,
        Buf::Gate,
        Buf::Up,
        Buf::Logits,
        Buf::Scratch,
    ];
}

/// Which heads an op works on: the query heads or the key/value heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heads {
    /// The query heads, `n_head` of them.
    Query,
    /// The key/value heads, `n_head_kv` of them.
    KeyValue,
}

impl Heads {
    /// How many heads of this kind the model has.
    pub fn count(self, c: &ModelConfig) -> usize {
        match self {
            Heads::Query => c.n_head,
            Heads::KeyValue => c.n_head_kv,
        }
    }
}

/// One operation of a step. Row-wise ops apply to every token row of their buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `out[t]` = embedding row of token t.
    Embed {
        /// Where the rows go.
        out: Buf,
    },
    /// `out[t]` = RMSNorm(`x[t]`) * weight.
    RmsNorm {
        /// The norm's weight, one element per column of `x`.
        weight: WeightId,
        /// Rows to normalise.
        x: Buf,
        /// Where the normalised rows go.
        out: Buf,
    },
    /// `out[t]` = W `x[t]`; with `last_row_only`, only for the step's last token.
    MatMul {
        /// The matrix: one row per output, one column per input.
        weight: WeightId,
        /// Input rows.
        x: Buf,
        /// Where the output rows go.
        out: Buf,
        /// Multiply only the last row of `x`, into one row of `out`: the output head when
        /// only the last token's logits are wanted.
        last_row_only: bool,
    },
    /// `x[t]` += bias.
    AddBias {
        /// The bias, one element per column of `x`.
        weight: WeightId,
        /// Rows the bias is added to, in place.
        x: Buf,
    },
    /// Each head of `x[t]` = RMSNorm(head) * weight (weight has `head_dim` elements).
    HeadNorm {
        /// The norm's weight, shared by every head.
        weight: WeightId,
        /// Rows whose heads are normalised in place.
        x: Buf,
        /// Whether `x` holds query or key heads, which sets how many there are.
        heads: Heads,
    },
    /// Rotates each head of `x[t]` by its position.
    Rope {
        /// Rows whose heads are rotated in place.
        x: Buf,
        /// Whether `x` holds query or key heads, which sets how many there are.
        heads: Heads,
    },
    /// Appends the step's keys and values to the cache of `layer`.
    StoreKv {
        /// The layer whose cache receives the rows.
        layer: u16,
        /// Key rows, one per token.
        k: Buf,
        /// Value rows, one per token.
        v: Buf,
    },
    /// Causal attention of `q` over the cache of `layer`, into `out`.
    Attention {
        /// The layer whose cache is read.
        layer: u16,
        /// Query rows, one per token.
        q: Buf,
        /// Where the output rows go, as wide as `q`.
        out: Buf,
    },
    /// `gate` = silu(`gate`) * `up`.
    SwiGlu {
        /// Gate rows, overwritten with the result.
        gate: Buf,
        /// Up-projection rows, only read.
        up: Buf,
    },
    /// `x` += `y`.
    Add {
        /// Rows added to in place: the residual stream.
        x: Buf,
        /// Rows added: a block's output projection.
        y: Buf,
    },
}

impl Op {
    /// The buffers this op touches (for lifetimes).
    pub fn buffers(&self) -> [Option<Buf>; 3] {
        match *self {
            Op::Embed { out } => [Some(out), None, None],
            Op::RmsNorm { x, out, .. } => [Some(x), Some(out), None],
            Op::MatMul { x, out, .. } => [Some(x), Some(out), Some(Buf::Scratch)],
            Op::AddBias { x, .. } | Op::HeadNorm { x, .. } | Op::Rope { x, .. } => {
                [Some(x), None, None]
            }
            Op::StoreKv { k, v, .. } => [Some(k), Some(v), None],
            Op::Attention { q, out, .. } => [Some(q), Some(out), Some(Buf::Scratch)],
            Op::SwiGlu { gate, up } => [Some(gate), Some(up), None],
            Op::Add { x, y } => [Some(x), Some(y), None],
        }
    }

    /// This template op, moved to layer `layer`.
    pub(super) fn in_layer(self, layer: u16) -> Op {
        let w = |id: WeightId| match id {
            WeightId::Layer(_, t) => WeightId::Layer(layer, t),
            other => other,
        };
        match self {
            Op::RmsNorm { weight, x, out } => Op::RmsNorm {
                weight: w(weight),
                x,
                out,
            },
            Op::MatMul {
                weight,
                x,
                out,
                last_row_only,
            } => Op::MatMul {
                weight: w(weight),
                x,
                out,
                last_row_only,
            },
            Op::AddBias { weight, x } => Op::AddBias {
                weight: w(weight),
                x,
            },
            Op::HeadNorm { weight, x, heads } => Op::HeadNorm {
                weight: w(weight),
                x,
                heads,
            },
            Op::StoreKv { k, v, .. } => Op::StoreKv { layer, k, v },
            Op::Attention { q, out, .. } => Op::Attention { layer, q, out },
            other => other,
        }
    }
}

/// Up to this many ops make one transformer block.
const MAX_LAYER_OPS: usize = 24;

/// The ops of one transformer block (layer 0; [`Op::in_layer`] moves them).
pub(super) fn layer_template(c: &ModelConfig) -> heapless::Vec<Op, MAX_LAYER_OPS> {
    let t = |t: LayerTensor| WeightId::Layer(0, t);
    let matmul = |tensor, x, out| Op::MatMul {
        weight: t(tensor),
        x,
        out,
        last_row_only: false,
    };
    let mut ops = heapless::Vec::new();
    let mut push = |op| {
        // The template below has at most 20 ops, fewer than the capacity.
        let _ = ops.push(op);
    };
    push(Op::RmsNorm {
        weight: t(LayerTensor::AttnNorm),
        x: Buf::Hidden,
        out: Buf::Normed,
    });
    for (proj, bias, out) in [
        (LayerTensor::Q, LayerTensor::QBias, Buf::Q),
        (LayerTensor::K, LayerTensor::KBias, Buf::K),
        (LayerTensor::V, LayerTensor::VBias, Buf::V),
    ] {
        push(matmul(proj, Buf::Normed, out));
        if c.qkv_bias {
            push(Op::AddBias {
                weight: t(bias),
                x: out,
            });
        }
    }
    if c.qk_norm {
        push(Op::HeadNorm {
            weight: t(LayerTensor::QNorm),
            x: Buf::Q,
            heads: Heads::Query,
        });
        push(Op::HeadNorm {
            weight: t(LayerTensor::KNorm),
            x: Buf::K,
            heads: Heads::KeyValue,
        });
    }
    push(Op::Rope {
        x: Buf::Q,
        heads: Heads::Query,
    });
    push(Op::Rope {
        x: Buf::K,
        heads: Heads::KeyValue,
    });
    push(Op::StoreKv {
        layer: 0,
        k: Buf::K,
        v: Buf::V,
    });
    push(Op::Attention {
        layer: 0,
        q: Buf::Q,
        out: Buf::Attn,
    });
    push(matmul(LayerTensor::Output, Buf::Attn, Buf::Proj));
    push(Op::Add {
        x: Buf::Hidden,
        y: Buf::Proj,
    });
    push(Op::RmsNorm {
        weight: t(LayerTensor::FfnNorm),
        x: Buf::Hidden,
        out: Buf::Normed,
    });
    push(matmul(LayerTensor::Gate, Buf::Normed, Buf::Gate));
    push(matmul(LayerTensor::Up, Buf::Normed, Buf::Up));
    push(Op::SwiGlu {
        gate: Buf::Gate,
        up: Buf::Up,
    });
    push(matmul(LayerTensor::Down, Buf::Gate, Buf::Proj));
    push(Op::Add {
        x: Buf::Hidden,
        y: Buf::Proj,
    });
    ops
}

/// The final norm and the output head.
pub(super) fn head(rows: LogitRows) -> [Op; 2] {
    [
        Op::RmsNorm {
            weight: WeightId::OutputNorm,
            x: Buf::Hidden,
            out: Buf::Normed,
        },
        Op::MatMul {
            weight: WeightId::OutputHead,
            x: Buf::Normed,
            out: Buf::Logits,
            last_row_only: rows == LogitRows::Last,
        },
    ]
}
