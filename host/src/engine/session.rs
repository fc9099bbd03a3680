//! A session: one conversation's KV cache and scratch memory, and the generation loop.
//!
//! Everything a step needs is allocated when the session is made; a decode step allocates
//! nothing.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tern_core::arena::Arena;
use tern_core::exec::EmbeddingRows;
use tern_core::plan::{LogitRows, Plan};
use tern_core::sample::{Sampler, SamplerParams};
use tern_storage::spill_kv::KvShape;

use super::buffers::filled_vec;
use super::tiers::{self, FlashIo, KvPlan, RowSource, SessionKv};
use super::{Engine, KvType};
use crate::error::EngineError;
use crate::memory::{MemoryReport, ProcessMemory, SessionMemory};
use crate::tokenizer::StreamDecoder;

/// How long to generate and how to pick tokens.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    pub sampler: SamplerParams,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 128,
            sampler: SamplerParams::default(),
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token (or BOS, which starts a new document).
    EndOfGeneration,
    MaxTokens,
    ContextFull,
    /// The caller's callback asked to stop.
    Stopped,
}

/// What a generation did and how fast.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    /// Generated tokens, including an end-of-generation token if one ended it.
    pub generated: Vec<u32>,
    pub generate_time: Duration,
    pub stop: StopReason,
}

impl GenerationStats {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_time)
    }

    pub fn generated_tokens_per_second(&self) -> f64 {
        per_second(self.generated.len(), self.generate_time)
    }
}

fn per_second(n: usize, t: Duration) -> f64 {
    if t.is_zero() {
        0.0
    } else {
        n as f64 / t.as_secs_f64()
    }
}

/// A KV cache, step memory and the tokens fed so far.
pub struct Session<'e> {
    engine: &'e Engine,
    state: StepState<'e>,
    /// Tokens in the KV cache, in order.
    tokens: Vec<u32>,
}

/// Where a session's KV cache and step memory live.
enum StepState<'e> {
    /// In the process's memory (and on flash), for the CPU backends.
    Host(HostState<'e>),
    /// In a Vulkan device's memory.
    #[cfg(feature = "vulkan")]
    Device(Box<tern_backend_vulkan::DeviceSession<'e>>),
}

struct HostState<'e> {
    kv: SessionKv,
    /// Embedding rows from flash or a copy of the table; `None` reads the mapped table.
    embeddings: Option<Box<dyn RowSource + 'e>>,
    arena: Vec<u8>,
}

impl<'e> Session<'e> {
    pub(super) fn new(engine: &'e Engine) -> Result<Session<'e>, EngineError> {
        let n_ctx = engine.n_ctx();
        let mut tokens = Vec::new();
        tokens.reserve_exact(n_ctx);
        Ok(Session {
            engine,
            state: StepState::new(engine)?,
            tokens,
        })
    }

    /// Tokens in the KV cache.
    pub fn n_past(&self) -> usize {
        self.tokens.len()
    }

    /// This session's memory: its KV cache by tier and its activation arena.
    pub fn memory(&self) -> SessionMemory {
        // Without the `vulkan` feature the host is the only state.
        #[allow(clippy::infallible_destructuring_match)]
        let host = match &self.state {
            StepState::Host(host) => host,
            #[cfg(feature = "vulkan")]
            StepState::Device(device) => {
                return SessionMemory {
                    kv_device: device.kv_bytes(),
                    arena: device.step_bytes(),
                    ..SessionMemory::default()
                };
            }
        };
        let element = match self.engine.options().kv_type {
            KvType::F32 => 4,
            KvType::F16 => 2,
        };
        let (kv_dram, kv_flash) = host.kv.tiers(element);
        SessionMemory {
            kv_dram,
            kv_flash,
            kv_device: 0,
            arena: host.arena.len() as u64,
        }
    }

    /// Bytes this session has moved to and from flash so far.
    pub fn flash_io(&self) -> FlashIo {
        // Without the `vulkan` feature the host is the only state.
        #[allow(irrefutable_let_patterns)]
        let StepState::Host(host) = &self.state else {
            return FlashIo::default();
        };
        let (kv_bytes_read, kv_bytes_written) = host.kv.io();
        let from_flash = self.engine.memory().embeddings_tier == super::Tier::Flash;
        FlashIo {
            embedding_bytes_read: match &host.embeddings {
                Some(rows) if from_flash => rows.bytes_read(),
                _ => 0,
            },
            kv_bytes_read,
            kv_bytes_written,
        }
    }

    /// The engine's, this session's and the process's memory, as of now.
    pub fn memory_report(&self) -> MemoryReport {
        MemoryReport {
            engine: self.engine.memory(),
            session: Some(self.memory()),
            process: ProcessMemory::read(),
        }
    }

    /// Forgets everything fed so far.
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Feeds `tokens` after those already in the cache and returns the last one's logits.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&mut [f32], EngineError> {
        let n_batch = self.n_batch();
        let mut rest = tokens;
        if rest.is_empty() {
            return Err(EngineError::Option("nothing to evaluate".into()));
        }
        while rest.len() > n_batch {
            let (chunk, tail) = rest.split_at(n_batch);
            self.step(chunk, LogitRows::Last)?;
            rest = tail;
        }
        self.step(rest, LogitRows::Last)
    }

    /// Feeds `tokens` and returns every position's logits, row after row (teacher forcing).
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let mut all = Vec::with_capacity(tokens.len() * self.engine.config().n_vocab);
        for chunk in tokens.chunks(self.n_batch()) {
            all.extend_from_slice(self.step(chunk, LogitRows::All)?);
        }
        Ok(all)
    }

    fn n_batch(&self) -> usize {
        self.engine.options().n_batch.min(self.engine.n_ctx())
    }

    fn step(&mut self, tokens: &[u32], rows: LogitRows) -> Result<&mut [f32], EngineError> {
        step(self.engine, &mut self.state, &mut self.tokens, tokens, rows)
    }
}

impl<'e> StepState<'e> {
    fn new(engine: &'e Engine) -> Result<StepState<'e>, EngineError> {
        let c = engine.config();
        let n_ctx = engine.n_ctx();
        let n_batch = engine.options().n_batch.min(n_ctx);
        #[cfg(feature = "vulkan")]
        if let Some(model) = engine.compute().device_model() {
            let format = match engine.options().kv_type {
                KvType::F32 => tern_backend_vulkan::KvFormat::F32,
                KvType::F16 => tern_backend_vulkan::KvFormat::F16,
            };
            let device = tern_backend_vulkan::DeviceSession::new(model, n_ctx, n_batch, format)
                .map_err(|e| EngineError::Backend(format!("Vulkan: {e}")))?;
            return Ok(StepState::Device(Box::new(device)));
        }
        let spill_dir = engine.kv_spill_dir();
        if engine.options().kv_dram_tokens.is_some_and(|n| n < n_ctx) {
            std::fs::create_dir_all(&spill_dir).map_err(|source| EngineError::KvSpill {
                dir: spill_dir.clone(),
                source,
            })?;
        }
        let kv = SessionKv::new(KvPlan {
            kv_type: engine.options().kv_type,
            shape: KvShape {
                n_layer: c.n_layer,
                n_ctx,
                width: c.kv_width(),
            },
            dram_tokens: engine.options().kv_dram_tokens,
            spill_dir: &spill_dir,
        })?;
        let embeddings = engine.row_source()?;
        // The largest step of generation: a full batch, the last row's logits. Teacher
        // forcing ([`Session::eval_all`]) wants every row's and grows the arena when it does
        // (a batch of 512 rows of a 150k vocabulary would be 300 MiB of logits held for good).
        let plan = Plan::new(c, n_batch, n_ctx, LogitRows::Last)
            .map_err(|e| EngineError::Option(e.to_string()))?;
        let arena = filled_vec(plan.arena_bytes() + Arena::ALIGN, "activation arena")?;
        Ok(StepState::Host(HostState {
            kv,
            embeddings,
            arena,
        }))
    }
}

/// Runs one step of `tokens` after `history` (which it extends) and returns the logits, which
/// live in the step memory of `state`. A free function so that the logits borrow only that.
fn step<'a>(
    engine: &Engine,
    state: &'a mut StepState<'_>,
    history: &mut Vec<u32>,
    tokens: &[u32],
    rows: LogitRows,
) -> Result<&'a mut [f32], EngineError> {
    let n_ctx = engine.n_ctx();
    let pos = history.len();
    if pos + tokens.len() > n_ctx {
        return Err(EngineError::PromptTooLong {
            n_tokens: pos + tokens.len(),
            n_ctx,
        });
    }
    let plan = Plan::new(engine.config(), tokens.len(), n_ctx, rows)
        .map_err(|e| EngineError::Option(e.to_string()))?;
    let logits = match state {
        StepState::Host(host) => host_step(engine, host, &plan, tokens, pos)?,
        #[cfg(feature = "vulkan")]
        StepState::Device(device) => device.step(&plan, tokens, pos).map_err(|e| match e {
            tern_backend_vulkan::DeviceStepError::Step(e) => EngineError::Step(e),
            tern_backend_vulkan::DeviceStepError::Device(e) => {
                EngineError::Backend(format!("Vulkan: {e}"))
            }
        })?,
    };
    history.extend_from_slice(tokens);
    Ok(logits)
}

fn host_step<'a>(
    engine: &Engine,
    host: &'a mut HostState<'_>,
    plan: &Plan,
    tokens: &[u32],
    pos: usize,
) -> Result<&'a mut [f32], EngineError> {
    if plan.logit_rows() == LogitRows::All {
        let needed = plan.arena_bytes() + Arena::ALIGN;
        if host.arena.len() < needed {
            host.arena = filled_vec(needed, "activation arena")?;
        }
    }
    let HostState {
        kv,
        embeddings,
        arena,
    } = host;
    let mut embeddings = embeddings.as_deref_mut();
    let rows_source = embeddings
        .as_deref_mut()
        .map(|e| e as &mut dyn EmbeddingRows);
    engine
        .compute()
        .step(
            plan,
            (kv.cache(), rows_source),
            Arena::new(arena),
            tokens,
            pos,
            engine.pool(),
        )
        .map_err(|e| {
            let spill_dir = engine.kv_spill_dir();
            tiers::explain(e.into(), kv, embeddings, engine.name(), &spill_dir)
        })
}

impl Session<'_> {
    /// Encodes `prompt` as the model's tokenizer says (BOS per its policy, special tokens
    /// recognised). A text too long for the context by its length alone is refused before
    /// it is tokenized.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>, EngineError> {
        let tokenizer = self.engine.tokenizer();
        let n_ctx = self.engine.n_ctx();
        let max_token_bytes = tokenizer.max_token_bytes();
        if prompt.len() > n_ctx.saturating_mul(max_token_bytes) {
            return Err(EngineError::PromptTooManyBytes {
                bytes: prompt.len(),
                n_ctx,
                max_token_bytes,
            });
        }
        let ids = tokenizer.encode(prompt, true, true);
        if ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        Ok(ids)
    }

    /// Feeds `prompt` and generates up to `options.max_tokens` tokens, calling `on_token`
    /// with each as it is sampled; the callback may stop generation early.
    pub fn generate_tokens(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        mut on_token: impl FnMut(u32) -> ControlFlow<()>,
    ) -> Result<GenerationStats, EngineError> {
        let n_ctx = self.engine.n_ctx();
        if self.tokens.len() + prompt.len() > n_ctx {
            return Err(EngineError::PromptTooLong {
                n_tokens: self.tokens.len() + prompt.len(),
                n_ctx,
            });
        }
        let mut sampler =
            Sampler::new(options.sampler).map_err(|e| EngineError::Option(e.to_string()))?;
        let mut scratch = vec![0u32; self.engine.config().n_vocab];
        let mut generated = Vec::with_capacity(options.max_tokens.min(n_ctx));
        let tokenizer = self.engine.tokenizer();

        let start = Instant::now();
        let mut next = {
            let logits = self.eval(prompt)?;
            sampler.sample(logits, prompt, &mut scratch)
        };
        let prompt_time = start.elapsed();
        let start = Instant::now();
        let stop = loop {
            if generated.len() == options.max_tokens {
                break StopReason::MaxTokens;
            }
            generated.push(next);
            if tokenizer.is_end_of_generation(next) || Some(next) == tokenizer.bos() {
                break StopReason::EndOfGeneration;
            }
            if on_token(next).is_break() {
                break StopReason::Stopped;
            }
            if self.tokens.len() == n_ctx {
                break StopReason::ContextFull;
            }
            let logits = step(
                self.engine,
                &mut self.state,
                &mut self.tokens,
                &[next],
                LogitRows::Last,
            )?;
            next = sampler.sample(logits, &self.tokens, &mut scratch);
        };
        Ok(GenerationStats {
            prompt_tokens: prompt.len(),
            prompt_time,
            generated,
            generate_time: start.elapsed(),
            stop,
        })
    }

    /// Generates text: like [`Session::generate_tokens`], but streams decoded text, holding
    /// back bytes of a character that is not complete yet.
    pub fn generate(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerationStats, EngineError> {
        let ids = self.encode_prompt(prompt)?;
        let tokenizer = self.engine.tokenizer();
        let mut decoder = StreamDecoder::after(tokenizer, &ids);
        let stats = self.generate_tokens(&ids, options, |id| on_text(&decoder.push(id)))?;
        let rest = decoder.finish();
        if !rest.is_empty() {
            let _ = on_text(&rest);
        }
        Ok(stats)
    }
}
