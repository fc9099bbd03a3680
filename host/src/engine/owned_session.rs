//! A session that owns its engine: one value an embedder can keep in a struct beside other
//! state, or move to another thread, without a lifetime tying it to the engine.

use std::sync::Arc;

use super::Engine;
use super::session::Session;
use crate::error::EngineError;

type BorrowingSession<'e> = Session<'e>;

self_cell::self_cell! {
    /// The engine and a session borrowing it, kept together.
    struct EngineAndSession {
        owner: Arc<Engine>,
        #[not_covariant]
        dependent: BorrowingSession,
    }
}

/// A [`Session`] holding an `Arc` of its [`Engine`]: the engine lives as long as any of its
/// owned sessions, and several sessions (one per thread) can share it.
///
/// ```no_run
/// use std::sync::Arc;
/// use tern::{Engine, EngineOptions, GenerateOptions, OwnedSession};
///
/// # fn main() -> Result<(), tern::EngineError> {
/// let engine = Arc::new(Engine::load("model.gguf", EngineOptions::default())?);
/// let mut session = OwnedSession::new(Arc::clone(&engine))?;
/// let worker = std::thread::spawn(move || {
///     session.with(|s| s.generate("Once upon a time", &GenerateOptions::default(), |_| {
///         std::ops::ControlFlow::Continue(())
///     }))
/// });
/// # let _ = worker.join();
/// # Ok(())
/// # }
/// ```
pub struct OwnedSession(EngineAndSession);

impl OwnedSession {
    /// A new session on `engine` (its KV cache reserved for the engine's context).
    pub fn new(engine: Arc<Engine>) -> Result<OwnedSession, EngineError> {
        EngineAndSession::try_new(engine, |engine| engine.session()).map(OwnedSession)
    }

    /// The engine the session runs on.
    pub fn engine(&self) -> &Arc<Engine> {
        self.0.borrow_owner()
    }

    /// Runs `f` on the session: generate, chat, eval, reset, as on a [`Session`].
    pub fn with<T>(&mut self, f: impl FnOnce(&mut Session<'_>) -> T) -> T {
        self.0.with_dependent_mut(|_, session| f(session))
    }
}
