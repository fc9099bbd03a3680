//! Tern embedded in a program's own state: a struct owns its session (which owns the
//! engine), sampler settings come from the `tern` crate, and each call continues the same
//! text, adding no BOS after the first.
//!
//! `cargo run --release --example embed [MODEL.gguf]` (the bundled model without one).

use std::ops::ControlFlow;
use std::sync::Arc;

use tern::{Engine, EngineError, EngineOptions, GenerateOptions, OwnedSession, SamplerParams};

/// A storyteller that keeps its story going across calls.
struct Storyteller {
    session: OwnedSession,
    options: GenerateOptions,
}

impl Storyteller {
    fn new(engine: Arc<Engine>) -> Result<Storyteller, EngineError> {
        Ok(Storyteller {
            session: OwnedSession::new(engine)?,
            options: GenerateOptions {
                max_tokens: 24,
                sampler: SamplerParams::greedy(),
            },
        })
    }

    /// Adds `text` to the story and returns what the model continues it with.
    fn continue_with(&mut self, text: &str) -> Result<String, EngineError> {
        let mut continuation = String::new();
        let options = &self.options;
        self.session.with(|session| {
            session.generate(text, options, |piece| {
                continuation.push_str(piece);
                ControlFlow::Continue(())
            })
        })?;
        Ok(continuation)
    }
}

fn main() -> Result<(), EngineError> {
    let options = EngineOptions::default();
    let engine = Arc::new(match std::env::args().nth(1) {
        Some(path) => Engine::load(path, options)?,
        None => Engine::load_bundled(options)?,
    });
    let mut teller = Storyteller::new(engine)?;
    for text in ["Once upon a time", " The next day"] {
        let continuation = teller.continue_with(text)?;
        println!("{text}{continuation}");
    }
    Ok(())
}
