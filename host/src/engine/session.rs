//! A session: one conversation's KV cache and scratch memory, and the generation loop.
//!
//! Everything a step needs is allocated when the session is made; a decode step allocates
//! nothing.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tern_core::exec::{EmbeddingRows, ExecutorSession, HostIo, Residence, SessionSpec, Step};
use tern_core::plan::{LogitRows, Plan};
use tern_core::sample::{Sampler, SamplerParams};
use tern_storage::spill_kv::KvShape;

use super::Engine;
use super::tiers::{self, FlashIo, KvPlan, RowSource, SessionKv};
use crate::error::EngineError;
use crate::memory::{MemoryReport, ProcessMemory, SessionMemory};
use crate::tokenizer::StreamDecoder;

/// How long to generate and how to pick tokens.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// How each token is picked from the logits (temperature, top-k, top-p, seed, ...).
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
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// The context filled up; the last generated token was not fed back.
    ContextFull,
    /// The caller's callback asked to stop.
    Stopped,
}

/// What a generation did and how fast.
#[derive(Clone, Debug)]
pub struct GenerationStats {
    /// Tokens of the prompt fed in this generation.
    pub prompt_tokens: usize,
    /// Time to feed the prompt and sample the first token.
    pub prompt_time: Duration,
    /// Generated tokens, including an end-of-generation token if one ended it.
    pub generated: Vec<u32>,
    /// Time to generate the tokens after the first.
    pub generate_time: Duration,
    /// Why generation ended.
    pub stop: StopReason,
}

impl GenerationStats {
    /// Prompt tokens fed per second (0 when `prompt_time` is zero).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_time)
    }

    /// Tokens generated per second (0 when `generate_time` is zero).
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
    /// The executor's step memory (and, on a device, the KV cache).
    exec: Box<dyn ExecutorSession + 'e>,
    /// The KV cache and embedding rows in the process's memory and on flash, for executors
    /// that compute in host memory ([`Residence::Host`]).
    host: Option<HostMemory<'e>>,
    /// Tokens in the KV cache, in order.
    tokens: Vec<u32>,
}

/// What a session keeps in the process's memory (and on flash) for its executor.
struct HostMemory<'e> {
    kv: SessionKv,
    /// Embedding rows from flash or a copy of the table; `None` reads the mapped table.
    embeddings: Option<Box<dyn RowSource + 'e>>,
}

impl<'e> Session<'e> {
    pub(super) fn new(engine: &'e Engine) -> Result<Session<'e>, EngineError> {
        let executor = engine.executor();
        let n_ctx = engine.n_ctx();
        let spec = SessionSpec {
            n_ctx,
            n_batch: engine.options().n_batch.min(n_ctx),
            kv_types: engine.options().kv_types(),
        };
        let host = match executor.residence() {
            Residence::Host => Some(HostMemory::new(engine)?),
            Residence::Device => None,
        };
        let exec = executor.open_session(spec).map_err(EngineError::from)?;
        let mut tokens = Vec::new();
        tokens.reserve_exact(n_ctx);
        Ok(Session {
            engine,
            exec,
            host,
            tokens,
        })
    }

    /// The engine this session runs on.
    pub(super) fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// Tokens in the KV cache.
    pub fn n_past(&self) -> usize {
        self.tokens.len()
    }

    /// This session's memory: its KV cache by tier and its activation arena.
    pub fn memory(&self) -> SessionMemory {
        let exec = self.exec.memory();
        let types = self.engine.options().kv_types();
        let (kv_dram, kv_flash) = self.host.as_ref().map_or((0, 0), |h| h.kv.tiers(types));
        SessionMemory {
            kv_dram,
            kv_flash,
            kv_device: exec.kv_device,
            arena: exec.arena,
        }
    }

    /// Bytes this session has moved to and from flash so far.
    pub fn flash_io(&self) -> FlashIo {
        let Some(host) = &self.host else {
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

    /// The tokens in the KV cache, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Forgets everything fed so far.
    pub fn reset(&mut self) {
        self.tokens.clear();
    }

    /// Forgets every token after the first `n_keep` (a step writes its positions' keys and
    /// values over whatever the cache held there).
    pub(super) fn rewind(&mut self, n_keep: usize) {
        self.tokens.truncate(n_keep);
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

    /// Feeds `tokens` in batches of the engine's batch size, as `eval_all` does, but hands
    /// `on_rows` only the logits of the positions from `from` on (counted from the start of
    /// `tokens`), a step at a time: the index of the step's first row and its rows. Steps
    /// wholly before `from` ask for no rows, and a batch that straddles `from` is fed in two
    /// steps split there, so no output layer runs for rows nobody reads (perplexity scores
    /// only the second half of a chunk) and no more than one step's logits are held at once.
    pub fn eval_rows_from<E: From<EngineError>>(
        &mut self,
        tokens: &[u32],
        from: usize,
        mut on_rows: impl FnMut(usize, &[f32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let n_batch = self.n_batch();
        let mut at = 0;
        while at < tokens.len() {
            let batch_end = ((at / n_batch + 1) * n_batch).min(tokens.len());
            let end = if at < from && from < batch_end {
                from
            } else {
                batch_end
            };
            if at < from {
                self.step(&tokens[at..end], LogitRows::Last)?;
            } else {
                on_rows(at, self.step(&tokens[at..end], LogitRows::All)?)?;
            }
            at = end;
        }
        Ok(())
    }

    fn n_batch(&self) -> usize {
        self.engine.options().n_batch.min(self.engine.n_ctx())
    }

    fn step(&mut self, tokens: &[u32], rows: LogitRows) -> Result<&mut [f32], EngineError> {
        let Session {
            engine,
            exec,
            host,
            tokens: history,
        } = self;
        step(engine, &mut **exec, host.as_mut(), history, tokens, rows)
    }
}

/// Runs one step of `tokens` after `history` (which it extends) and returns the logits, which
/// live in `exec`'s step memory. A free function so that the logits borrow only that.
fn step<'a>(
    engine: &Engine,
    exec: &'a mut (dyn ExecutorSession + '_),
    host: Option<&mut HostMemory<'_>>,
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
    let mut host = host;
    let io = host.as_deref_mut().map(|h| HostIo {
        kv: h.kv.cache(),
        embeddings: h
            .embeddings
            .as_deref_mut()
            .map(|e| e as &mut dyn EmbeddingRows),
    });
    let step = Step {
        plan: &plan,
        tokens,
        pos,
        host: io,
        parallel: engine.pool(),
    };
    match exec.step(step) {
        Ok(logits) => {
            history.extend_from_slice(tokens);
            Ok(logits)
        }
        // A tier keeps the I/O error behind a failed step; the message says what it was.
        Err(e) => Err(match host {
            Some(HostMemory { kv, embeddings }) => tiers::explain(
                e.into(),
                kv,
                embeddings.as_deref_mut(),
                engine.name(),
                &engine.kv_spill_dir(),
            ),
            None => e.into(),
        }),
    }
}

impl<'e> HostMemory<'e> {
    fn new(engine: &'e Engine) -> Result<HostMemory<'e>, EngineError> {
        let c = engine.config();
        let n_ctx = engine.n_ctx();
        let spill_dir = engine.kv_spill_dir();
        if engine.options().kv_dram_tokens.is_some_and(|n| n < n_ctx) {
            std::fs::create_dir_all(&spill_dir).map_err(|source| EngineError::KvSpill {
                dir: spill_dir.clone(),
                source,
            })?;
        }
        let kv = SessionKv::new(KvPlan {
            kv_types: engine.options().kv_types(),
            shape: KvShape {
                n_layer: c.n_layer,
                n_ctx,
                width: c.kv_width(),
            },
            dram_tokens: engine.options().kv_dram_tokens,
            spill_dir: &spill_dir,
        })?;
        Ok(HostMemory {
            kv,
            embeddings: engine.row_source()?,
        })
    }
}

impl Session<'_> {
    /// Encodes `prompt` as the model's tokenizer says (special tokens recognised; BOS per its
    /// policy when the session is empty, none when the prompt continues what the session
    /// holds). A text too long for the context by its length alone is refused before it is
    /// tokenized.
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
        let ids = tokenizer.encode(prompt, self.tokens.is_empty(), true);
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
        on_token: impl FnMut(u32) -> ControlFlow<()>,
    ) -> Result<GenerationStats, EngineError> {
        self.generate_until(prompt, options, |_| false, on_token)
    }

    /// [`generate_tokens`](Self::generate_tokens) that also ends at any token `ends_turn`
    /// accepts (a chat template's end-of-turn marker), as at an end-of-generation token.
    pub(super) fn generate_until(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        ends_turn: impl Fn(u32) -> bool,
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
            if tokenizer.is_end_of_generation(next)
                || Some(next) == tokenizer.bos()
                || ends_turn(next)
            {
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
                &mut *self.exec,
                self.host.as_mut(),
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
