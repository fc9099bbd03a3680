//! Errors of the engine, each one line that names what went wrong and where.

use std::path::PathBuf;

use tern_core::exec::StepError;

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
    #[error("the prompt has {n_tokens} tokens; the context holds {n_ctx}")]
    PromptTooLong { n_tokens: usize, n_ctx: usize },
    #[error(
        "the prompt is empty and the model adds no BOS token, so there is nothing to start from"
    )]
    EmptyPrompt,
    #[error("cannot allocate {bytes} bytes for the {what}")]
    OutOfMemory { what: &'static str, bytes: usize },
    #[error("inference failed: {0}")]
    Step(#[from] StepError),
}
