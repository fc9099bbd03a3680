//! Sessions: one conversation's KV cache on a model, fed tokens and read for logits.

use std::sync::Arc;

use engine::engine::{Engine, OwnedSession, Session};
use engine::error::EngineError;

use crate::model::{tern_model, token_ids};
use crate::status::{Failure, guard, tern_status};
use crate::text::{handle, handle_mut, out_given, put, slice};

/// A session: a KV cache of the model's context, the tokens fed so far, and the logits of
/// the last one. Used by one thread at a time.
pub struct tern_session {
    pub(crate) owned: OwnedSession,
    /// The logits after the last token fed by `tern_session_eval`; empty before any.
    pub(crate) logits: Vec<f32>,
}

impl tern_session {
    /// Runs `f` on the session.
    pub(crate) fn with<T>(&mut self, f: impl FnOnce(&mut Session<'_>) -> T) -> T {
        self.owned.with(f)
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.owned.engine()
    }
}

/// Makes a session on `model`: its KV cache is reserved for the model's context.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_session_new(
    model: *const tern_model,
    out: *mut *mut tern_session,
) -> tern_status {
    guard("tern_session_new", || {
        // SAFETY: the caller passes a live handle or NULL.
        let model = unsafe { handle(model, "model") }?;
        out_given(out, "out")?;
        let owned = OwnedSession::new(Arc::clone(&model.engine))?;
        let session = Box::into_raw(Box::new(tern_session {
            owned,
            logits: Vec::new(),
        }));
        // SAFETY: `out` is not NULL and the caller promises it is writable.
        unsafe { put(out, session, "out") }
    })
}

/// Frees a session; NULL is a no-op.
///
/// # Safety
/// `session` is NULL or a handle from `tern_session_new` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_session_free(session: *mut tern_session) {
    if !session.is_null() {
        // SAFETY: the caller hands back a handle made by `tern_session_new`, once.
        drop(unsafe { Box::from_raw(session) });
    }
}

/// Forgets every token fed: the next one starts a new sequence.
///
/// # Safety
/// `session` is NULL or a live handle used by this thread alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_session_reset(session: *mut tern_session) -> tern_status {
    guard("tern_session_reset", || {
        // SAFETY: the caller passes a live handle or NULL.
        let session = unsafe { handle_mut(session, "session") }?;
        session.with(|s| s.reset());
        session.logits.clear();
        Ok(())
    })
}

/// Tokens in the session's KV cache; 0 for a NULL session.
///
/// # Safety
/// `session` is NULL or a live handle not used by another thread meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_session_n_past(session: *mut tern_session) -> usize {
    // SAFETY: the caller passes a live handle or NULL.
    unsafe { session.as_mut() }.map_or(0, |s| s.with(|s| s.n_past()))
}

/// Feeds `n` tokens after those in the session and points `logits` at the last one's
/// logits (`n_vocab` floats, valid until the next call on this session).
///
/// # Safety
/// `session` is NULL or a live handle used by this thread alone; `tokens` points to `n`
/// ids; `logits` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_session_eval(
    session: *mut tern_session,
    tokens: *const i32,
    n: usize,
    logits: *mut *const f32,
) -> tern_status {
    guard("tern_session_eval", || {
        // SAFETY: the caller passes a live handle or NULL, and `n` readable ids.
        let (session, ids) =
            unsafe { (handle_mut(session, "session")?, slice(tokens, n, "tokens")?) };
        out_given(logits, "logits")?;
        let ids = token_ids(ids, session.engine().config().n_vocab)?;
        if ids.is_empty() {
            return Err(Failure::argument("no tokens to evaluate"));
        }
        let n_ctx = session.engine().n_ctx();
        let n_past = session.with(|s| s.n_past());
        if n_past + ids.len() > n_ctx {
            return Err(EngineError::PromptTooLong {
                n_tokens: n_past + ids.len(),
                n_ctx,
            }
            .into());
        }
        let mut last = std::mem::take(&mut session.logits);
        let fed = session.with(|s| {
            s.eval(&ids).map(|row| {
                last.clear();
                last.extend_from_slice(row);
            })
        });
        session.logits = last;
        fed?;
        // SAFETY: `logits` is not NULL and the caller promises it is writable.
        unsafe { put(logits, session.logits.as_ptr(), "logits") }
    })
}
