//! Errors of the engine, each one line that names what went wrong and where.

use std::path::PathBuf;

use tern_core::exec::{ExecError, StepError};

use crate::tokenizer::TokenizerError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot open model `{path}`: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is a directory, not a model file")]
    IsDirectory { path: PathBuf },
    /// A device, pipe or socket: mapping one would read nothing or block for ever.
    #[error("`{path}` is not a regular file (a device, pipe or socket?), not a model file")]
    NotAFile { path: PathBuf },
    #[error("`{model}` is not a valid GGUF file: {message}")]
    Gguf { model: String, message: String },
    #[error("`{model}`: {message}")]
    Model { model: String, message: String },
    #[error("`{model}`: tokenizer: {source}")]
    Tokenizer {
        model: String,
        source: TokenizerError,
    },
    #[error("invalid option: {0}")]
    Option(String),
    /// The backend asked for cannot run here (no device, no driver, out of device memory),
    /// or failed while running.
    #[error("{0}")]
    Backend(ExecError),
    #[error("the prompt has {n_tokens} tokens; the context holds {n_ctx}")]
    PromptTooLong { n_tokens: usize, n_ctx: usize },
    /// Found before tokenizing, which for such a text would cost time and memory in vain.
    #[error(
        "the prompt has {bytes} bytes; the context holds {n_ctx} tokens of at most \
         {max_token_bytes} bytes each"
    )]
    PromptTooManyBytes {
        bytes: usize,
        n_ctx: usize,
        max_token_bytes: usize,
    },
    #[error(
        "the prompt is empty and the model adds no BOS token, so there is nothing to start from"
    )]
    EmptyPrompt,
    #[error("cannot allocate {bytes} bytes for the {what}")]
    OutOfMemory { what: &'static str, bytes: usize },
    #[error(
        "the {what} would take {bytes} bytes, more than the machine's {memory} bytes of memory"
    )]
    MoreThanMemory {
        what: &'static str,
        bytes: usize,
        memory: u64,
    },
    #[error("inference failed: {0}")]
    Step(#[from] StepError),
    #[error("cannot make a KV spill file in `{dir}`: {source}")]
    KvSpill {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("moving layer {layer}'s KV rows to or from the spill file in `{dir}` failed: {source}")]
    KvFlash {
        layer: usize,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the embedding row of token {token} from `{model}` failed: {source}")]
    EmbeddingRead {
        token: u32,
        model: String,
        source: std::io::Error,
    },
}

/// An executor's error, as specific as the engine can make it.
impl From<ExecError> for EngineError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Step(e) => EngineError::Step(e),
            ExecError::Plan(e) => EngineError::Option(e.to_string()),
            ExecError::OutOfMemory { what, bytes } => EngineError::OutOfMemory { what, bytes },
            e @ (ExecError::NoHostKv | ExecError::Device { .. }) => EngineError::Backend(e),
        }
    }
}
