//! Perplexity and KL divergence over a text, by the protocol of llama.cpp's
//! `llama-perplexity`, so the numbers of the two compare directly.
//!
//! The text is tokenized whole (BOS first where the model adds one) and cut into chunks of
//! the engine's context size; the rest is dropped. Each chunk is evaluated on a fresh
//! context, its first token replaced by BOS where the model adds one, and only its second
//! half is scored (positions n_ctx/2 to n_ctx-2, each predicting the next token), so every
//! scored token has at least half a context before it. Perplexity is e to the mean negative
//! log-likelihood of the scored tokens.
//!
//! A run can also write its log-probabilities to a base file ([`write_base`]), and a later
//! run, usually of another quantization or backend of the same model, can measure how far
//! its distributions are from the base's ([`kl_divergence`]).

mod base_file;
mod error;
mod kld;
mod logprobs;
mod stats;

pub use base_file::{BaseError, BaseHeader, BaseReader, BaseWriter};
pub use error::PerplexityError;
pub use kld::KldStats;
pub use logprobs::RowDivergence;
pub use stats::{NllStats, median, percentile};

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use tern_core::hash::content_hash;

use crate::engine::Engine;
use crate::tokenizer::Tokenizer;

/// Tokens scored per chunk of `n_ctx`: positions n_ctx/2 to n_ctx-2.
pub fn scored_per_chunk(n_ctx: usize) -> usize {
    n_ctx.saturating_sub(1 + n_ctx / 2)
}

/// Tokenizes `text`, a file's contents, as llama.cpp's perplexity does: one trailing newline
/// dropped (as llama.cpp's `-f` reads files), BOS first where the model adds one, text that
/// spells a special token left as text, no EOS.
pub fn tokenize(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut tokens = Vec::with_capacity(text.len() / 3 + 1);
    if tokenizer.add_bos() {
        tokens.extend(tokenizer.bos());
    }
    tokens.extend(tokenizer.encode(text, false, false));
    tokens
}

/// How a text's tokens are cut into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunks {
    /// Tokens per chunk: the context size.
    pub n_ctx: usize,
    /// Chunks evaluated.
    pub n_chunks: usize,
}

impl Chunks {
    /// Chunks of `n_ctx` over `n_tokens` tokens, at most `max_chunks` of them. Like llama.cpp,
    /// refuses a text of fewer than two chunks' tokens.
    pub fn new(
        n_tokens: usize,
        n_ctx: usize,
        max_chunks: Option<NonZeroUsize>,
    ) -> Result<Chunks, PerplexityError> {
        if scored_per_chunk(n_ctx) == 0 {
            return Err(PerplexityError::ContextTooSmall { n_ctx });
        }
        let needed = 2 * n_ctx;
        if n_tokens < needed {
            return Err(PerplexityError::TooFewTokens {
                n_tokens,
                n_ctx,
                needed,
            });
        }
        let all = n_tokens / n_ctx;
        Ok(Chunks {
            n_ctx,
            n_chunks: max_chunks.map_or(all, |n| n.get().min(all)),
        })
    }

    /// The first scored position of a chunk.
    pub fn first(&self) -> usize {
        self.n_ctx / 2
    }

    /// Tokens scored in all.
    pub fn n_scored(&self) -> usize {
        self.n_chunks * scored_per_chunk(self.n_ctx)
    }
}

/// One chunk's result, with the totals so far (llama.cpp prints the running perplexity).
#[derive(Clone, Copy, Debug)]
pub struct ChunkScore {
    /// The chunk's index, from 0.
    pub index: usize,
    /// Chunks in the run.
    pub n_chunks: usize,
    /// This chunk's scored tokens.
    pub chunk: NllStats,
    /// Every chunk's so far, this one's included.
    pub running: NllStats,
    /// Time to evaluate and score the chunk.
    pub elapsed: Duration,
}

/// A perplexity run's result.
#[derive(Clone, Debug)]
pub struct Perplexity {
    /// How the text was cut.
    pub chunks: Chunks,
    /// Each chunk's scored tokens.
    pub per_chunk: Vec<NllStats>,
    /// All scored tokens: [`NllStats::ppl`] is the final estimate.
    pub total: NllStats,
}

/// The perplexity of the model over `tokens` (from [`tokenize`]), chunks of the engine's
/// context size, at most `max_chunks` of them; `on_chunk` hears of each chunk as it is done.
pub fn perplexity(
    engine: &Engine,
    tokens: &[u32],
    max_chunks: Option<NonZeroUsize>,
    on_chunk: impl FnMut(&ChunkScore),
) -> Result<Perplexity, PerplexityError> {
    let chunks = Chunks::new(tokens.len(), engine.n_ctx(), max_chunks)?;
    score(engine, tokens, chunks, &mut |_, _| Ok(()), on_chunk)
}

/// Like [`perplexity`], and writes every scored row's log-probabilities to `base` (made by
/// [`BaseWriter::create`]) for a later [`kl_divergence`] run. The file appears at its path
/// only once complete.
pub fn write_base(
    engine: &Engine,
    tokens: &[u32],
    max_chunks: Option<NonZeroUsize>,
    mut base: BaseWriter,
    on_chunk: impl FnMut(&ChunkScore),
) -> Result<Perplexity, PerplexityError> {
    let chunks = Chunks::new(tokens.len(), engine.n_ctx(), max_chunks)?;
    let header = BaseHeader {
        n_vocab: engine.config().n_vocab,
        n_ctx: chunks.n_ctx,
        n_chunks: chunks.n_chunks,
        model_hash: model_hash(engine),
        vocab_hash: vocab_hash(engine.tokenizer()),
        model_name: model_file_name(engine),
        tokens: tokens[..chunks.n_chunks * chunks.n_ctx].to_vec(),
    };
    base.write_header(&header)?;
    let result = score(
        engine,
        tokens,
        chunks,
        &mut |logits, nll| Ok(base.push_row(logits, nll)?),
        on_chunk,
    )?;
    base.finish()?;
    Ok(result)
}

/// One chunk of a KL-divergence run, with the totals so far.
#[derive(Clone, Copy, Debug)]
pub struct KldChunk {
    /// The chunk's index, from 0.
    pub index: usize,
    /// Chunks in the run.
    pub n_chunks: usize,
    /// Every chunk's rows so far, this one's included.
    pub running: KldStats,
    /// Time to evaluate and compare the chunk.
    pub elapsed: Duration,
}

/// A KL-divergence run's result.
#[derive(Clone, Debug)]
pub struct KlDivergence {
    /// How the base's tokens were cut.
    pub chunks: Chunks,
    /// Sums over every compared row.
    pub stats: KldStats,
    /// Each row's KL divergence, ascending (for percentiles).
    pub kld_sorted: Vec<f32>,
    /// Each row's Δp, ascending.
    pub p_diff_sorted: Vec<f32>,
    /// Whether the base was written by this very model file (same content hash).
    pub same_model_file: bool,
}

/// Compares the model's distributions over the base's tokens with the base's, row by row:
/// KL(base || this model), perplexities of both, top-token agreement. The engine's context
/// must be the base's; at most `max_chunks` of the base's chunks are compared.
pub fn kl_divergence(
    engine: &Engine,
    base: &mut BaseReader,
    max_chunks: Option<NonZeroUsize>,
    mut on_chunk: impl FnMut(&KldChunk),
) -> Result<KlDivergence, PerplexityError> {
    check_base(engine, base, max_chunks)?;
    base.rewind()?;
    let header = base.header().clone();
    let chunks = Chunks {
        n_ctx: header.n_ctx,
        n_chunks: max_chunks.map_or(header.n_chunks, NonZeroUsize::get),
    };
    let mut kld_values = Vec::with_capacity(chunks.n_scored());
    let mut p_diff_values = Vec::with_capacity(chunks.n_scored());
    let mut codes = vec![0u16; header.n_vocab];
    // Read by the chunk callback while the row callback updates it.
    let running = std::cell::Cell::new(KldStats::default());
    let mut compare = |logits: &[f32], nll: f64| {
        let row = base.next_row()?;
        let divergence = logprobs::divergence(&row, logits, &mut codes);
        let mut stats = running.get();
        let p_diff = stats.push(nll, row.nll, divergence);
        running.set(stats);
        kld_values.push(divergence.kld as f32);
        p_diff_values.push(p_diff as f32);
        Ok(())
    };
    score(
        engine,
        &header.tokens,
        chunks,
        &mut compare,
        |c: &ChunkScore| {
            on_chunk(&KldChunk {
                index: c.index,
                n_chunks: c.n_chunks,
                running: running.get(),
                elapsed: c.elapsed,
            })
        },
    )?;
    kld_values.sort_by(f32::total_cmp);
    p_diff_values.sort_by(f32::total_cmp);
    Ok(KlDivergence {
        chunks,
        stats: running.get(),
        kld_sorted: kld_values,
        p_diff_sorted: p_diff_values,
        same_model_file: header.model_hash == model_hash(engine),
    })
}

/// Refuses a base whose rows this engine's cannot be compared with: another vocabulary,
/// another context, fewer chunks than asked for.
pub fn check_base(
    engine: &Engine,
    base: &BaseReader,
    max_chunks: Option<NonZeroUsize>,
) -> Result<(), PerplexityError> {
    let (path, header) = (base.path(), base.header());
    let n_vocab = engine.config().n_vocab;
    if header.n_vocab != n_vocab || header.vocab_hash != vocab_hash(engine.tokenizer()) {
        return Err(PerplexityError::OtherVocabulary {
            path: path.into(),
            base_model: header.model_name.clone(),
            base_vocab: header.n_vocab,
            n_vocab,
        });
    }
    if header.n_ctx != engine.n_ctx() {
        return Err(PerplexityError::OtherContext {
            path: path.into(),
            base: header.n_ctx,
            asked: engine.n_ctx(),
        });
    }
    match max_chunks {
        Some(asked) if asked.get() > header.n_chunks => Err(PerplexityError::MoreChunksThanBase {
            path: path.into(),
            base: header.n_chunks,
            asked: asked.get(),
        }),
        _ => Ok(()),
    }
}

/// Checks that `tokens` (a text tokenized again) begin with the base's tokens.
pub fn check_base_tokens(base: &BaseReader, tokens: &[u32]) -> Result<(), PerplexityError> {
    let expected = &base.header().tokens;
    let at = expected
        .iter()
        .zip(tokens)
        .position(|(a, b)| a != b)
        .or((tokens.len() < expected.len()).then_some(tokens.len()));
    match at {
        Some(at) => Err(PerplexityError::OtherTokens {
            path: base.path().into(),
            at,
        }),
        None => Ok(()),
    }
}

/// What tells one model file from another: the content hash of its bytes.
pub fn model_hash(engine: &Engine) -> u64 {
    content_hash(engine.gguf().bytes())
}

/// What tells one vocabulary from another: a hash of its size and its tokens' texts in order.
pub fn vocab_hash(tokenizer: &Tokenizer) -> u64 {
    let mut texts = Vec::with_capacity(tokenizer.n_vocab() * 8);
    for id in 0..tokenizer.n_vocab() {
        texts.extend_from_slice(tokenizer.token_text(id as u32).unwrap_or("").as_bytes());
        // Never a byte of UTF-8 text: the separator cannot be confused with a token's.
        texts.push(0xff);
    }
    content_hash(&texts)
}

/// The model's file name (its whole name in messages for a model that has no file).
fn model_file_name(engine: &Engine) -> String {
    Path::new(engine.name()).file_name().map_or_else(
        || engine.name().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What a run does with each scored row besides its nll: its logits and its nll.
type RowSink<'a> = dyn FnMut(&[f32], f64) -> Result<(), PerplexityError> + 'a;

/// Evaluates `chunks` of `tokens` and scores their second halves, handing each scored row's
/// logits and nll to `row` as well.
fn score(
    engine: &Engine,
    tokens: &[u32],
    chunks: Chunks,
    row: &mut RowSink<'_>,
    mut on_chunk: impl FnMut(&ChunkScore),
) -> Result<Perplexity, PerplexityError> {
    let n_vocab = engine.config().n_vocab;
    let n_ctx = chunks.n_ctx;
    let evaluated = &tokens[..chunks.n_chunks * n_ctx];
    if let Some((position, &id)) = evaluated
        .iter()
        .enumerate()
        .find(|(_, id)| **id as usize >= n_vocab)
    {
        return Err(PerplexityError::TokenOutOfRange {
            position,
            id,
            n_vocab,
        });
    }
    let tokenizer = engine.tokenizer();
    let bos = tokenizer.bos().filter(|_| tokenizer.add_bos());
    let mut session = engine.session()?;
    let mut fed = Vec::with_capacity(n_ctx);
    let mut per_chunk = Vec::with_capacity(chunks.n_chunks);
    let mut total = NllStats::default();
    for (index, chunk) in evaluated.chunks_exact(n_ctx).enumerate() {
        let started = Instant::now();
        session.reset();
        fed.clear();
        fed.extend_from_slice(chunk);
        if let Some(bos) = bos {
            fed[0] = bos;
        }
        let mut scored = NllStats::default();
        session.eval_rows_from(&fed, chunks.first(), |at, rows| {
            for (i, logits) in (at..n_ctx - 1).zip(rows.chunks_exact(n_vocab)) {
                let nll = logprobs::nll(logits, chunk[i + 1] as usize);
                scored.push(nll);
                row(logits, nll)?;
            }
            Ok::<_, PerplexityError>(())
        })?;
        total.merge(&scored);
        per_chunk.push(scored);
        on_chunk(&ChunkScore {
            index,
            n_chunks: chunks.n_chunks,
            chunk: scored,
            running: total,
            elapsed: started.elapsed(),
        });
    }
    Ok(Perplexity {
        chunks,
        per_chunk,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_llama_cpp() {
        // 1000 tokens of 128: 7 chunks, the rest dropped; 63 scored per chunk.
        let c = Chunks::new(1000, 128, None).unwrap();
        assert_eq!((c.n_chunks, c.first(), c.n_scored()), (7, 64, 7 * 63));
        assert_eq!(
            Chunks::new(1000, 128, NonZeroUsize::new(3))
                .unwrap()
                .n_chunks,
            3
        );
        assert_eq!(
            Chunks::new(1000, 128, NonZeroUsize::new(30))
                .unwrap()
                .n_chunks,
            7
        );
        // An odd context scores from n_ctx/2 rounded down.
        assert_eq!(scored_per_chunk(7), 3);
        assert_eq!(scored_per_chunk(3), 1);
    }

    #[test]
    fn too_short_a_text_or_context_is_refused() {
        assert!(matches!(
            Chunks::new(255, 128, None),
            Err(PerplexityError::TooFewTokens {
                n_tokens: 255,
                n_ctx: 128,
                needed: 256
            })
        ));
        assert!(Chunks::new(256, 128, None).is_ok());
        for n_ctx in [0, 1, 2] {
            assert!(matches!(
                Chunks::new(100, n_ctx, None),
                Err(PerplexityError::ContextTooSmall { .. })
            ));
        }
    }
}
