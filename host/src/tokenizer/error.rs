//! Why a tokenizer could not be built from a model's metadata.

/// A tokenizer description that cannot be used. Each variant names the GGUF key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizerError {
    /// A key the tokenizer needs is absent.
    #[error("missing tokenizer key `{0}`")]
    MissingKey(&'static str),
    /// A key is present but holds the wrong kind of value.
    #[error("tokenizer key `{key}` has the wrong type: expected {expected}")]
    WrongType {
        /// The GGUF key.
        key: &'static str,
        /// The kind of value the tokenizer needs there, in words (e.g. `"a string"`).
        expected: &'static str,
    },
    /// A per-token array does not have one entry per token.
    #[error("`{key}` has {found} entries but `tokenizer.ggml.tokens` has {expected}")]
    LengthMismatch {
        /// The GGUF key of the per-token array.
        key: &'static str,
        /// Entries in that array.
        found: usize,
        /// Tokens in the vocabulary.
        expected: usize,
    },
    /// `tokenizer.ggml.tokens` is empty.
    #[error("`tokenizer.ggml.tokens` is empty")]
    EmptyVocab,
    /// More tokens than a `u32` id can address.
    #[error("vocabulary has {0} tokens, more than 32-bit token ids can address")]
    TooManyTokens(usize),
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error(
        "unknown tokenizer model `{0}` (supported: `llama` (SentencePiece), `gpt2` (byte-level BPE))"
    )]
    UnknownModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    #[error("unknown pre-tokenizer `{0}` in `tokenizer.ggml.pre`")]
    UnknownPreTokenizer(String),
    /// A BPE merge is not two tokens separated by a space.
    #[error("`tokenizer.ggml.merges`[{index}] = {line:?} is not two space-separated tokens")]
    BadMerge {
        /// Index of the merge in `tokenizer.ggml.merges` (its rank).
        index: usize,
        /// The merge as the file stores it.
        line: String,
    },
    /// A pre-tokenizer pattern failed to compile (a bug in the pattern table).
    #[error("pre-tokenizer `{pre}` pattern does not compile: {message}")]
    BadPattern {
        /// The pre-tokenizer's name (`default` when the file names none).
        pre: String,
        /// The regex compiler's error.
        message: String,
    },
}
