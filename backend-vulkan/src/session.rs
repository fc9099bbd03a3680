//! One conversation on the device: its KV cache and step memory in device memory, and core's
//! plan of each step shape recorded into a command buffer once and replayed.
//!
//! What changes from step to step (the first position, the token ids, the RoPE table) lives
//! in one host-visible buffer the kernels read, so a recording serves every step of its
//! shape: decode replays one recording for every token, and a step allocates no device
//! memory once its shape has been seen. The activations keep the arena layout core planned
//! for the CPU ([`Plan::span`]), so the device runs the very plan the CPU backends run.

use tern_core::exec::device::{DeviceOp, StepIo, StepSizes, Words};
use tern_core::exec::{StepError, check_step};
use tern_core::model::WeightId;
use tern_core::plan::{LogitRows, Plan};
use tern_core::region::Region;

use crate::batch::Batch;
use crate::error::{Result, VkError};
use crate::memory::Buffer;
use crate::model::DeviceModel;
use crate::ops::{AttentionShape, DeviceKv, DeviceWeight, KvFormat};

/// Why a step on the device failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceStepError {
    /// The request does not fit the plan, the model or the context.
    #[error("{0}")]
    Step(StepError),
    /// The device, its driver or a kernel's shape check failed.
    #[error(transparent)]
    Device(#[from] VkError),
}

/// A step shape's recording.
struct Recording {
    n_tokens: usize,
    rows: LogitRows,
    batch: Batch,
}

/// A KV cache and step memory on the device, and the recordings of the steps run so far.
pub struct DeviceSession<'m> {
    model: &'m DeviceModel,
    kv: DeviceKv,
    /// Every step's activations, at the offsets of its plan's arena.
    acts: Buffer,
    /// Attention's scores: `n_ctx` floats per (token, head) of the largest step.
    scores: Buffer,
    /// Inputs and results, mapped by the host (see [`StepIo`]).
    io: Buffer,
    /// The step buffers' sizes, the exchange buffer's layout among them.
    sizes: StepSizes,
    recordings: Vec<Recording>,
    /// The step's input words (see [`StepIo::inputs`]).
    inputs: Vec<u32>,
    pairs: Vec<(f32, f32)>,
    logit_bytes: Vec<u8>,
    logits: Vec<f32>,
}

impl<'m> DeviceSession<'m> {
    /// A session of `n_ctx` positions whose steps take up to `n_batch` tokens and want the
    /// last token's logits; larger steps (every row's logits) grow the buffers when they
    /// come, and only then allocate.
    pub fn new(
        model: &'m DeviceModel,
        n_ctx: usize,
        n_batch: usize,
        kv_format: KvFormat,
    ) -> Result<DeviceSession<'m>> {
        let c = *model.config();
        let n_batch = n_batch.clamp(1, n_ctx.max(1));
        let kv = DeviceKv::new(&model.gpu, c.n_layer, n_ctx, c.kv_width(), kv_format)?;
        let sizes = StepSizes::new(&c, n_ctx, n_batch)
            .ok_or_else(|| VkError::shape("session", "the step buffers' sizes overflow"))?;
        let layout = sizes.io;
        let gpu = &model.gpu;
        Ok(DeviceSession {
            model,
            kv,
            acts: gpu.buffer(sizes.arena_bytes as u64)?,
            scores: gpu.buffer(sizes.scores as u64 * 4)?,
            io: gpu.host_buffer(layout.words as u64 * 4)?,
            sizes,
            recordings: Vec::new(),
            inputs: Vec::with_capacity(layout.logits),
            pairs: vec![(0.0, 0.0); c.rope_dim / 2],
            logit_bytes: vec![0; c.n_vocab * 4],
            logits: vec![0.0; c.n_vocab],
        })
    }

    /// Positions the cache holds.
    pub fn n_ctx(&self) -> usize {
        self.kv.n_ctx
    }

    /// Bytes of device memory the KV cache takes.
    pub fn kv_bytes(&self) -> u64 {
        self.kv.keys.size() + self.kv.values.size()
    }

    /// Step shapes recorded so far (each recorded once, then replayed).
    pub fn recorded_shapes(&self) -> usize {
        self.recordings.len()
    }

    /// Bytes of device memory for activations, scores and the step's inputs and results.
    pub fn step_bytes(&self) -> u64 {
        self.acts.size() + self.scores.size() + self.io.size()
    }

    /// Runs `plan` on `tokens` at positions `pos..pos + tokens.len()` and returns the
    /// logits (one row per token, or the last token's, as the plan says). Positions past
    /// those already stored are simply overwritten, so a caller may rewind.
    pub fn step(
        &mut self,
        plan: &Plan,
        tokens: &[u32],
        pos: usize,
    ) -> core::result::Result<&mut [f32], DeviceStepError> {
        check_step(plan, self.model.config(), tokens, pos, self.kv.n_ctx)
            .map_err(DeviceStepError::Step)?;
        self.fit(plan)?;
        let c = *self.model.config();
        let n = tokens.len();
        self.sizes
            .io
            .inputs(&c, pos, tokens, &mut self.pairs, &mut self.inputs)
            .ok_or_else(|| VkError::shape("step", format!("position {pos} past 32 bits")))?;
        self.io.write_u32(0, &self.inputs)?;

        let shape = (n, plan.logit_rows());
        let index = match self
            .recordings
            .iter()
            .position(|r| (r.n_tokens, r.rows) == shape)
        {
            Some(i) => i,
            None => {
                let batch = self.record(plan)?;
                self.recordings.push(Recording {
                    n_tokens: n,
                    rows: plan.logit_rows(),
                    batch,
                });
                self.recordings.len() - 1
            }
        };
        self.model.gpu.run(&mut self.recordings[index].batch)?;

        let len = plan.n_logit_rows() * c.n_vocab;
        let bytes = &mut self.logit_bytes[..len * 4];
        self.io.read(self.sizes.io.logits as u64 * 4, bytes)?;
        for (x, b) in self.logits.iter_mut().zip(bytes.chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(&mut self.logits[..len])
    }

    /// Grows whichever buffer is too small for `plan` (a larger step than any before);
    /// recordings name the old buffers, so they are made again.
    fn fit(&mut self, plan: &Plan) -> Result<()> {
        let grown = self
            .sizes
            .grow(plan, self.kv.n_ctx)
            .ok_or_else(|| VkError::shape("step", "the step buffers' sizes overflow"))?;
        let gpu = &self.model.gpu;
        if grown.arena {
            self.acts = gpu.buffer(self.sizes.arena_bytes as u64)?;
        }
        if grown.scores {
            self.scores = gpu.buffer(self.sizes.scores as u64 * 4)?;
        }
        if grown.io {
            self.io = gpu.host_buffer(self.sizes.io.words as u64 * 4)?;
            let logits = self.sizes.io.max_logit_rows * self.model.config().n_vocab;
            self.logit_bytes.resize(logits * 4, 0);
            self.logits.resize(logits, 0.0);
        }
        if grown.any() {
            self.recordings.clear();
        }
        Ok(())
    }

    /// Records every op of `plan`, then the copy of its logits to the host-visible buffer.
    fn record(&self, plan: &Plan) -> Result<Batch> {
        let gpu = &self.model.gpu;
        let c = plan.config();
        let n = plan.n_tokens();
        let act = |w: Words| self.acts.view(w.offset, w.len);
        let io = |w: Words| self.io.view(w.offset, w.len);
        let weight = |id: WeightId| -> Result<&DeviceWeight> {
            self.model
                .model
                .weight(id)
                .ok_or_else(|| VkError::shape("plan", format!("the model lacks {id:?}")))
        };
        let at = io(StepIo::POSITION)?;
        let shape = AttentionShape {
            n_head: c.n_head,
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
        };
        let ops = self
            .sizes
            .io
            .ops(plan)
            .ok_or_else(|| VkError::shape("plan", "larger than the session's buffers"))?;
        let mut batch = gpu.batch()?;
        let b = &mut batch;
        for op in ops {
            match op {
                DeviceOp::Embed { tokens, out } => {
                    gpu.embed(b, weight(WeightId::Embedding)?, io(tokens)?, act(out)?)?;
                }
                DeviceOp::RmsNorm { weight: w, x, out } => {
                    gpu.rms_norm(b, act(x)?, weight(w)?, c.rms_eps, act(out)?)?;
                }
                DeviceOp::MatMul {
                    weight: w,
                    x,
                    scratch,
                    out,
                } => gpu.matmul(b, weight(w)?, act(x)?, act(scratch)?, act(out)?)?,
                DeviceOp::AddBias { weight: w, x } => gpu.add_bias(b, act(x)?, weight(w)?)?,
                DeviceOp::HeadNorm { weight: w, x } => {
                    gpu.head_norm(b, act(x)?, weight(w)?, c.rms_eps)?;
                }
                DeviceOp::Rope { x, heads, table } => {
                    gpu.rope(b, act(x)?, heads, c, io(table)?)?;
                }
                DeviceOp::StoreKv { layer, k, v } => {
                    gpu.kv_store(b, &self.kv, layer, at, act(k)?, act(v)?)?;
                }
                DeviceOp::Attention { layer, q, out } => {
                    let scores = self.scores.view(0, n * c.n_head * self.kv.n_ctx)?;
                    gpu.attention(b, act(q)?, &self.kv, layer, shape, at, scores, act(out)?)?;
                }
                DeviceOp::SwiGlu { gate, up } => gpu.swiglu(b, act(gate)?, act(up)?)?,
                DeviceOp::Add { x, y } => gpu.add(b, act(x)?, act(y)?)?,
                DeviceOp::ReturnLogits { from, to } => {
                    let to = io(to)?;
                    gpu.raster(b, act(from)?, to, &[Region::run(0, 0, to.len)])?;
                }
            }
        }
        Ok(batch)
    }
}
