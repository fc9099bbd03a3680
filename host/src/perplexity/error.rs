//! Why a perplexity or KL-divergence run cannot start or finish.

use std::path::PathBuf;

use super::base_file::BaseError;
use crate::error::EngineError;

/// Why a perplexity or KL-divergence run failed; each message is one line that names the
/// file, size or token at fault.
#[derive(Debug, thiserror::Error)]
pub enum PerplexityError {
    /// Loading, a session or a step failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The base file cannot be written, read or trusted.
    #[error(transparent)]
    Base(#[from] BaseError),
    /// A context so short that no token is scored: scoring starts at n_ctx/2 and the last
    /// position has nothing after it.
    #[error(
        "a context of {n_ctx} tokens scores no token (perplexity scores positions n_ctx/2 to \
         n_ctx-2); use -c 3 or more"
    )]
    ContextTooSmall {
        /// The context size asked for.
        n_ctx: usize,
    },
    /// llama.cpp's rule: at least two chunks' worth of tokens.
    #[error(
        "the text has {n_tokens} tokens; perplexity with a context of {n_ctx} needs at least \
         {needed} (two chunks)"
    )]
    TooFewTokens {
        /// Tokens in the text.
        n_tokens: usize,
        /// The context (chunk) size.
        n_ctx: usize,
        /// Tokens needed: twice the context.
        needed: usize,
    },
    /// A token id the model's vocabulary does not have.
    #[error("token {position} of the text is id {id}, outside the model's vocabulary of {n_vocab}")]
    TokenOutOfRange {
        /// Where in the text.
        position: usize,
        /// The id.
        id: u32,
        /// The vocabulary's size.
        n_vocab: usize,
    },
    /// The base was written by a model whose vocabulary differs: its rows mean other tokens.
    #[error(
        "KL-divergence base `{path}` was made by `{base_model}`, whose vocabulary ({base_vocab} \
         tokens) differs from this model's ({n_vocab} tokens): the two cannot be compared"
    )]
    OtherVocabulary {
        /// The base file.
        path: PathBuf,
        /// The model that wrote it.
        base_model: String,
        /// Its vocabulary's size.
        base_vocab: usize,
        /// This model's vocabulary's size.
        n_vocab: usize,
    },
    /// The base was made with another context size.
    #[error(
        "KL-divergence base `{path}` was made with a context of {base} tokens, not {asked} \
         (leave out -c to use the base's)"
    )]
    OtherContext {
        /// The base file.
        path: PathBuf,
        /// The base's context.
        base: usize,
        /// The context asked for.
        asked: usize,
    },
    /// The text given does not tokenize to the base's tokens.
    #[error(
        "the text's tokens differ from those of KL-divergence base `{path}` at token {at}: \
         the base was made from another text (or leave out -f to use the base's tokens)"
    )]
    OtherTokens {
        /// The base file.
        path: PathBuf,
        /// The first token that differs (or the end of the shorter).
        at: usize,
    },
    /// More chunks asked for than the base holds.
    #[error("KL-divergence base `{path}` holds {base} chunks; --chunks {asked} asks for more")]
    MoreChunksThanBase {
        /// The base file.
        path: PathBuf,
        /// Chunks in the base.
        base: usize,
        /// Chunks asked for.
        asked: usize,
    },
}
