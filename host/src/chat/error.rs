//! Why a chat template could not be found, parsed or rendered.

use std::path::PathBuf;
use std::sync::Arc;

use super::builtin::BUILTIN_LIST;

/// A chat template that cannot be used. Each message names the template and says what went
/// wrong in one line.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ChatTemplateError {
    /// The Jinja source does not parse.
    #[error("chat template `{template}` does not parse: {message}")]
    Syntax {
        /// The template's name: a built-in name, a file's path, or the model's key.
        template: String,
        /// What the parser said, with the line.
        message: String,
    },
    /// Rendering failed: the template called `raise_exception` (a conversation it refuses,
    /// such as a system message where the model has none), or an operation failed.
    #[error("chat template `{template}` failed: {message}")]
    Render {
        /// The template's name.
        template: String,
        /// The template's own message, or what failed, with the line.
        message: String,
    },
    /// A `--chat-template` argument that is no built-in name and no readable file.
    #[error(
        "`{arg}` is neither a built-in chat template ({BUILTIN_LIST}) nor a readable file: {source}"
    )]
    NotFound {
        /// The argument as given.
        arg: String,
        /// What the OS said when it was opened as a file (shared, so that the error clones).
        source: Arc<std::io::Error>,
    },
    /// A template file that is not UTF-8 text of a sensible size.
    #[error("chat template file `{path}` {problem}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The model's `tokenizer.chat_template` key holds something other than a string.
    #[error("`tokenizer.chat_template` of `{model}` is not a string")]
    NotAString {
        /// The model's name in messages.
        model: String,
    },
}

/// One line from a minijinja error: the template's own message for `raise_exception` (and
/// other failed operations), else the kind of error and its detail; the line where it is.
pub(super) fn describe(error: &minijinja::Error) -> String {
    use minijinja::ErrorKind;
    let what = match (error.kind(), error.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    let what = what.replace(['\n', '\r'], " ");
    match error.line() {
        Some(line) if line > 0 => format!("{what} (line {line})"),
        _ => what,
    }
}
