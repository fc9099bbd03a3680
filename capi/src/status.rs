//! Status codes, the per-thread last error, and the guard every exported function runs in:
//! its errors become a status and a message, and a panic never unwinds into C.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use engine::error::EngineError;

/// What a call did. Every value but `TERN_OK` comes with a message from
/// [`tern_last_error`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tern_status {
    /// Success.
    TERN_OK = 0,
    /// A NULL pointer, text that is not UTF-8, a value out of range or an unknown name.
    TERN_ERROR_ARGUMENT = 1,
    /// A file could not be opened, read or written.
    TERN_ERROR_IO = 2,
    /// The model file is not a GGUF model Tern can run (damaged, truncated, unsupported).
    TERN_ERROR_MODEL = 3,
    /// The backend asked for cannot run here, or failed while running.
    TERN_ERROR_BACKEND = 4,
    /// The tokens do not fit what is left of the session's context.
    TERN_ERROR_CONTEXT_FULL = 5,
    /// An output buffer is too small; the size needed was written where the call says.
    TERN_ERROR_BUFFER_TOO_SMALL = 6,
    /// The model has no chat template, or its template cannot render the conversation.
    TERN_ERROR_CHAT_TEMPLATE = 7,
    /// Memory for the model or a session could not be had.
    TERN_ERROR_OUT_OF_MEMORY = 8,
    /// A step of the model failed (a token outside the vocabulary, a spill file's I/O).
    TERN_ERROR_INFERENCE = 9,
    /// A bug in Tern (a caught panic); the message says where.
    TERN_ERROR_INTERNAL = 10,
}

/// A failed call: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: tern_status,
    pub message: String,
}

impl Failure {
    /// A bad argument, described by `message`.
    pub fn argument(message: impl Into<String>) -> Failure {
        Failure {
            status: tern_status::TERN_ERROR_ARGUMENT,
            message: message.into(),
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Failure {
        use tern_status::*;
        let status = match &e {
            EngineError::Open { .. }
            | EngineError::IsDirectory { .. }
            | EngineError::NotAFile { .. }
            | EngineError::KvSpill { .. } => TERN_ERROR_IO,
            EngineError::Gguf { .. }
            | EngineError::Model { .. }
            | EngineError::Tokenizer { .. } => TERN_ERROR_MODEL,
            EngineError::Option(_) | EngineError::EmptyPrompt => TERN_ERROR_ARGUMENT,
            EngineError::Backend(_) => TERN_ERROR_BACKEND,
            EngineError::PromptTooLong { .. } | EngineError::PromptTooManyBytes { .. } => {
                TERN_ERROR_CONTEXT_FULL
            }
            EngineError::ChatTemplate(_) | EngineError::NoChatTemplate { .. } => {
                TERN_ERROR_CHAT_TEMPLATE
            }
            EngineError::OutOfMemory { .. } | EngineError::MoreThanMemory { .. } => {
                TERN_ERROR_OUT_OF_MEMORY
            }
            EngineError::Step(_)
            | EngineError::KvFlash { .. }
            | EngineError::EmbeddingRead { .. } => TERN_ERROR_INFERENCE,
        };
        Failure {
            status,
            message: e.to_string(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs the body of the exported function `name`: its failure or panic becomes a status and
/// this thread's last error, prefixed with `name`.
pub(crate) fn guard(name: &str, body: impl FnOnce() -> Result<(), Failure>) -> tern_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return tern_status::TERN_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Failure {
                status: tern_status::TERN_ERROR_INTERNAL,
                message: format!("internal error: {what}"),
            }
        }
    };
    set_last_error(&format!("{name}: {}", failure.message));
    failure.status
}

fn set_last_error(message: &str) {
    // A message cannot hold NUL; one from a file name or template is cut there.
    let cut = message.split('\0').next().unwrap_or_default();
    let message = CString::new(cut).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// The message of the last call on this thread that failed: one line naming the function,
/// what went wrong and where; "" before any failure. The pointer stays valid until the
/// next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn tern_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// Tern's version, e.g. "0.1.0"; a static string.
#[unsafe(no_mangle)]
pub extern "C" fn tern_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
