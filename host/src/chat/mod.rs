//! Chat templates: a conversation turned into the prompt text a chat model was trained on.
//!
//! A GGUF file carries its model's template as Jinja source (`tokenizer.chat_template`),
//! written for Python's jinja2 as transformers' `apply_chat_template` runs it. Tern renders it
//! with minijinja set up the same way: jinja2's whitespace options (`trim_blocks`,
//! `lstrip_blocks`), Python's string and dict methods (`.strip()`, `.startswith()`,
//! `.items()`, from minijinja-contrib), Python's spelling of `None`/`True`/`False` in output,
//! and transformers' helpers (`raise_exception`, `strftime_now`, a `tojson` that is
//! `json.dumps`). `testdata/chat_templates/` holds real models' templates and the strings
//! transformers renders from them, which the tests match byte for byte.
//!
//! Models without a template take a built-in one by name ([`ChatTemplate::builtin`]).

mod builtin;
mod end_of_turn;
mod environment;
mod error;
mod json;
mod message;
mod strftime;
mod template;

pub use builtin::BUILTIN_NAMES;
pub use end_of_turn::end_of_turn_tokens;
pub use error::ChatTemplateError;
pub use message::Message;
pub use template::{ChatTemplate, RenderOptions};

#[cfg(test)]
mod tests;
