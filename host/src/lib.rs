//! Tern's host crate: the engine API (load a GGUF model, make sessions, generate, chat), the
//! tokenizers, chat templates, and the bundled default model. The `tern` binary is a thin CLI
//! over it.

pub mod bundled;
pub mod chat;
pub mod engine;
pub mod error;
pub mod memory;
pub mod perplexity;
pub mod threads;
pub mod tokenizer;

pub use chat::{ChatTemplate, Message};
pub use engine::{
    ChatOptions, ChatReply, Engine, EngineOptions, GenerateOptions, OwnedSession, Session,
};
/// Sampler settings (temperature, top-k, top-p, min-p, repeat penalty, seed), so that a
/// library user needs no second crate to set them.
pub use tern_core::sample::SamplerParams;

/// The README's code, compiled as doctests so the library example cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use error::EngineError;
