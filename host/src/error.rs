//! Errors of the engine, each one line that names what went wrong and where.

use std::path::PathBuf;

use tern_core::exec::{ExecError, StepError};

use crate::chat::ChatTemplateError;
use crate::tokenizer::TokenizerError;

/// Why the engine could not load a model, start a session or run a step. The message of
/// each names the file, option or size at fault.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be opened, inspected or mapped.
    #[error("cannot open model `{path}`: {source}")]
    Open {
        /// The model file's path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The model path names a directory.
    #[error("`{path}` is a directory, not a model file")]
    IsDirectory {
        /// The path as given.
        path: PathBuf,
    },
    /// A device, pipe or socket: mapping one would read nothing or block for ever.
    #[error("`{path}` is not a regular file (a device, pipe or socket?), not a model file")]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },
    /// The file's bytes do not parse as GGUF.
    #[error("`{model}` is not a valid GGUF file: {message}")]
    Gguf {
        /// The model's name in messages: its path, or the bundled model's name.
        model: String,
        /// The parser's error, which says what and at which offset.
        message: String,
    },
    /// The file parses but does not describe a model Tern can run (missing or inconsistent
    /// metadata, an unsupported architecture or weight type, a tensor of the wrong shape).
    #[error("`{model}`: {message}")]
    Model {
        /// The model's name in messages: its path, or the bundled model's name.
        model: String,
        /// What is wrong, in words.
        message: String,
    },
    /// The tokenizer metadata in the file cannot be used.
    #[error("`{model}`: tokenizer: {source}")]
    Tokenizer {
        /// The model's name in messages: its path, or the bundled model's name.
        model: String,
        /// Which key is at fault and how.
        source: TokenizerError,
    },
    /// An option or request the engine cannot honour (a zero batch size, too many threads, a
    /// context longer than the model's, bad sampler parameters, ...); the string says which.
    #[error("invalid option: {0}")]
    Option(String),
    /// The backend asked for cannot run here (no device, no driver, out of device memory),
    /// or failed while running.
    #[error("{0}")]
    Backend(ExecError),
    /// The session's tokens and the new prompt together do not fit the context.
    #[error("the prompt has {n_tokens} tokens; the context holds {n_ctx}")]
    PromptTooLong {
        /// Tokens the context would hold: those already fed plus the prompt's.
        n_tokens: usize,
        /// Tokens the context holds at most.
        n_ctx: usize,
    },
    /// Found before tokenizing, which for such a text would cost time and memory in vain.
    #[error(
        "the prompt has {bytes} bytes; the context holds {n_ctx} tokens of at most \
         {max_token_bytes} bytes each"
    )]
    PromptTooManyBytes {
        /// Length of the prompt text in bytes.
        bytes: usize,
        /// Tokens the context holds at most.
        n_ctx: usize,
        /// Bytes of the vocabulary's longest token.
        max_token_bytes: usize,
    },
    /// A chat template that cannot be found, parsed or rendered for this conversation.
    #[error("{0}")]
    ChatTemplate(#[from] ChatTemplateError),
    /// A chat needs a template, and the model carries none.
    #[error(
        "`{model}` has no chat template (`tokenizer.chat_template`); choose a built-in one \
         ({}) or a Jinja file",
        crate::chat::BUILTIN_NAMES.join(", ")
    )]
    NoChatTemplate {
        /// The model's name in messages: its path, or the bundled model's name.
        model: String,
    },
    /// The prompt encodes to no tokens at all.
    #[error(
        "the prompt is empty and no BOS token starts it (the model adds none, or the session \
         continues), so there is nothing to feed"
    )]
    EmptyPrompt,
    /// An allocation failed, or its size overflowed.
    #[error("cannot allocate {bytes} bytes for the {what}")]
    OutOfMemory {
        /// The buffer that was being allocated, e.g. `"KV cache"`.
        what: &'static str,
        /// Bytes requested; `usize::MAX` when the size overflowed.
        bytes: usize,
    },
    /// A buffer sized from the model and the options would exceed the machine's physical
    /// memory; refused before allocating rather than driving the machine into swap.
    #[error(
        "the {what} would take {bytes} bytes, more than the machine's {memory} bytes of memory"
    )]
    MoreThanMemory {
        /// The buffer that would be allocated, e.g. `"KV cache"`.
        what: &'static str,
        /// Bytes it would take.
        bytes: usize,
        /// Bytes of physical memory the machine has.
        memory: u64,
    },
    /// A step was refused or failed: a token outside the vocabulary, a full context, a KV
    /// cache or embedding row source that failed (the I/O cause, where the engine has it,
    /// comes as [`EngineError::KvFlash`] or [`EngineError::EmbeddingRead`] instead).
    #[error("inference failed: {0}")]
    Step(#[from] StepError),
    /// The directory or file for a session's spilled KV rows could not be made.
    #[error("cannot make a KV spill file in `{dir}`: {source}")]
    KvSpill {
        /// The spill directory.
        dir: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Writing KV rows to the spill file, or reading them back, failed during a step.
    #[error("moving layer {layer}'s KV rows to or from the spill file in `{dir}` failed: {source}")]
    KvFlash {
        /// The layer whose rows were moving.
        layer: usize,
        /// The spill directory.
        dir: PathBuf,
        /// What the OS said (an `Other` error when no cause was recorded).
        source: std::io::Error,
    },
    /// Reading a token's embedding row from the model file failed during a step.
    #[error("reading the embedding row of token {token} from `{model}` failed: {source}")]
    EmbeddingRead {
        /// The token whose row was being read.
        token: u32,
        /// The model's name in messages: its path.
        model: String,
        /// What the OS said (an `Other` error when no cause was recorded).
        source: std::io::Error,
    },
}

/// An executor's error, as specific as the engine can make it.
impl From<ExecError> for EngineError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Step(e) => EngineError::Step(e),
            ExecError::Plan(e) => EngineError::Option(e.to_string()),
            e @ ExecError::KvTypes { .. } => EngineError::Option(e.to_string()),
            ExecError::OutOfMemory { what, bytes } => EngineError::OutOfMemory { what, bytes },
            e @ (ExecError::NoHostKv | ExecError::Device { .. }) => EngineError::Backend(e),
        }
    }
}
