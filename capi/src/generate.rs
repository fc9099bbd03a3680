//! Picking tokens and generating text: a sampler over a session's logits, generation from
//! a prompt, and chat in the model's template, each streaming pieces of text to a callback
//! that can stop it.

use std::ffi::{c_char, c_void};
use std::ops::ControlFlow;

use engine::chat::Message;
use engine::engine::{ChatOptions, GenerateOptions, GenerationStats, StopReason};
use tern_core::sample::{Sampler, SamplerParams};

use crate::session::tern_session;
use crate::status::{Failure, guard, tern_status};
use crate::text::{handle_mut, put, slice, utf8};

/// How tokens are picked, as llama.cpp's sampling options; `tern_sampling_default` gives
/// llama.cpp's defaults, `temperature` 0 picks the most likely token every time.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tern_sampling {
    /// Sampling temperature; 0 is greedy.
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probability reaches P (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than P times the most likely one (0: none).
    pub min_p: f32,
    /// Penalty for repeating recent tokens (1: none).
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: u32,
    /// Seed of the random choice.
    pub seed: u64,
}

impl From<tern_sampling> for SamplerParams {
    fn from(s: tern_sampling) -> SamplerParams {
        SamplerParams {
            temperature: s.temperature,
            top_k: s.top_k as usize,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            repeat_last_n: s.repeat_last_n as usize,
            seed: s.seed,
        }
    }
}

/// llama.cpp's sampling defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no
/// repeat penalty, a fixed seed.
#[unsafe(no_mangle)]
pub extern "C" fn tern_sampling_default() -> tern_sampling {
    let d = SamplerParams::default();
    tern_sampling {
        temperature: d.temperature,
        top_k: d.top_k as u32,
        top_p: d.top_p,
        min_p: d.min_p,
        repeat_penalty: d.repeat_penalty,
        repeat_last_n: d.repeat_last_n as u32,
        seed: d.seed,
    }
}

/// Sampler settings from C, checked; NULL is the defaults.
///
/// # Safety
/// `sampling` is NULL or valid for a read.
unsafe fn sampler_params(sampling: *const tern_sampling) -> Result<SamplerParams, Failure> {
    // SAFETY: the caller passes a readable struct or NULL.
    let params = unsafe { sampling.as_ref() }.map_or_else(SamplerParams::default, |s| (*s).into());
    params
        .validate()
        .map_err(|e| Failure::argument(format!("sampling: {e}")))?;
    Ok(params)
}

/// A sampler: the settings and the random state of one sequence of choices.
pub struct tern_sampler {
    sampler: Sampler,
    logits: Vec<f32>,
    scratch: Vec<u32>,
}

/// Makes a sampler; `sampling` may be NULL for the defaults.
///
/// # Safety
/// `sampling` is NULL or valid for a read; `out` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_sampler_new(
    sampling: *const tern_sampling,
    out: *mut *mut tern_sampler,
) -> tern_status {
    guard("tern_sampler_new", || {
        // SAFETY: the caller passes a readable struct or NULL.
        let params = unsafe { sampler_params(sampling) }?;
        let sampler = Sampler::new(params).map_err(|e| Failure::argument(e.to_string()))?;
        let sampler = Box::into_raw(Box::new(tern_sampler {
            sampler,
            logits: Vec::new(),
            scratch: Vec::new(),
        }));
        // SAFETY: the caller promises `out` is writable.
        unsafe { put(out, sampler, "out") }.inspect_err(|_| {
            // SAFETY: made just above and handed to no one.
            drop(unsafe { Box::from_raw(sampler) });
        })
    })
}

/// Frees a sampler; NULL is a no-op.
///
/// # Safety
/// `sampler` is NULL or a handle from `tern_sampler_new` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_sampler_free(sampler: *mut tern_sampler) {
    if !sampler.is_null() {
        // SAFETY: the caller hands back a handle made by `tern_sampler_new`, once.
        drop(unsafe { Box::from_raw(sampler) });
    }
}

/// Picks the next token from the logits of the session's last `tern_session_eval`, the
/// session's tokens being the recent ones the repeat penalty sees. The session is not fed.
///
/// # Safety
/// `sampler` and `session` are NULL or live handles used by this thread alone; `token` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_sampler_sample(
    sampler: *mut tern_sampler,
    session: *mut tern_session,
    token: *mut i32,
) -> tern_status {
    guard("tern_sampler_sample", || {
        // SAFETY: the caller passes live handles or NULL.
        let (sampler, session) = unsafe {
            (
                handle_mut(sampler, "sampler")?,
                handle_mut(session, "session")?,
            )
        };
        if session.logits.is_empty() {
            return Err(Failure::argument(
                "the session has no logits: feed it with tern_session_eval first",
            ));
        }
        sampler.logits.clear();
        sampler.logits.extend_from_slice(&session.logits);
        sampler.scratch.resize(sampler.logits.len(), 0);
        let tern_sampler {
            sampler: s,
            logits,
            scratch,
        } = sampler;
        let id = session.with(|sess| s.sample(logits, sess.tokens(), scratch));
        // SAFETY: the caller promises `token` is writable.
        unsafe { put(token, id as i32, "token") }
    })
}

/// Receives each piece of generated text (UTF-8, `len` bytes, not NUL-terminated; a
/// character is never split between pieces) with the caller's `user_data`. Returns true to
/// go on, false to stop generation after this piece.
pub type tern_piece_callback =
    Option<unsafe extern "C" fn(piece: *const c_char, len: usize, user_data: *mut c_void) -> bool>;

/// Why generation ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tern_stop_reason {
    /// The model ended its text (or its turn, in a chat).
    TERN_STOP_END = 0,
    /// `max_tokens` tokens were generated.
    TERN_STOP_MAX_TOKENS = 1,
    /// The context is full.
    TERN_STOP_CONTEXT_FULL = 2,
    /// The callback returned false.
    TERN_STOP_CALLBACK = 3,
}

/// What a generation did and how fast.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tern_generation {
    /// Tokens fed: the prompt's (in a chat, only those not already in the session).
    pub prompt_tokens: u32,
    /// In a chat, the tokens of the conversation the session already held and did not
    /// feed again (the earlier turns); 0 for `tern_generate`.
    pub reused_tokens: u32,
    /// Tokens generated, including the one that ended the text if one did.
    pub generated_tokens: u32,
    /// Milliseconds to feed the prompt and pick the first token.
    pub prompt_ms: f64,
    /// Milliseconds to generate the tokens after the first.
    pub generate_ms: f64,
    /// Why it ended.
    pub stop: tern_stop_reason,
}

impl From<&GenerationStats> for tern_generation {
    fn from(s: &GenerationStats) -> tern_generation {
        tern_generation {
            prompt_tokens: s.prompt_tokens as u32,
            reused_tokens: 0,
            generated_tokens: s.generated.len() as u32,
            prompt_ms: s.prompt_time.as_secs_f64() * 1e3,
            generate_ms: s.generate_time.as_secs_f64() * 1e3,
            stop: match s.stop {
                StopReason::EndOfGeneration => tern_stop_reason::TERN_STOP_END,
                StopReason::MaxTokens => tern_stop_reason::TERN_STOP_MAX_TOKENS,
                StopReason::ContextFull => tern_stop_reason::TERN_STOP_CONTEXT_FULL,
                StopReason::Stopped => tern_stop_reason::TERN_STOP_CALLBACK,
            },
        }
    }
}

/// The engine's text callback, calling C's.
fn on_piece(
    callback: tern_piece_callback,
    user_data: *mut c_void,
) -> impl FnMut(&str) -> ControlFlow<()> {
    move |piece: &str| match callback {
        // SAFETY: the caller gave a function of this signature; `piece` is valid for
        // `len` bytes during the call.
        Some(f) if !unsafe { f(piece.as_ptr().cast(), piece.len(), user_data) } => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    }
}

/// Generation options from C: the sampler's settings (NULL: the defaults) and a length,
/// negative being "until the end of text or a full context".
///
/// # Safety
/// `sampling` is NULL or valid for a read.
unsafe fn generate_options(
    sampling: *const tern_sampling,
    max_tokens: i32,
) -> Result<GenerateOptions, Failure> {
    Ok(GenerateOptions {
        max_tokens: usize::try_from(max_tokens).unwrap_or(usize::MAX),
        // SAFETY: the caller passes a readable struct or NULL.
        sampler: unsafe { sampler_params(sampling) }?,
    })
}

/// Writes what a generation did to `stats`, which the caller may leave NULL.
///
/// # Safety
/// `stats` is NULL or valid for a write.
unsafe fn report(stats: *mut tern_generation, done: tern_generation) -> Result<(), Failure> {
    match stats.is_null() {
        true => Ok(()),
        // SAFETY: not NULL, and the caller promises it is writable.
        false => unsafe { put(stats, done, "stats") },
    }
}

/// Feeds the UTF-8 `prompt` after what the session holds (with the model's BOS only when
/// the session is empty) and generates up to `max_tokens` tokens (negative: until the end
/// of text or a full context), passing each piece of text to `callback` (may be NULL).
/// `sampling` may be NULL for the defaults; `stats`, if not NULL, receives what happened.
///
/// # Safety
/// `session` is NULL or a live handle used by this thread alone; `prompt` is NULL or a
/// NUL-terminated string; `sampling` is NULL or readable; `callback` is NULL or a function
/// of the right type; `stats` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_generate(
    session: *mut tern_session,
    prompt: *const c_char,
    sampling: *const tern_sampling,
    max_tokens: i32,
    callback: tern_piece_callback,
    user_data: *mut c_void,
    stats: *mut tern_generation,
) -> tern_status {
    guard("tern_generate", || {
        // SAFETY: the caller passes a live handle or NULL, a string or NULL, a struct or NULL.
        let (session, prompt, options) = unsafe {
            (
                handle_mut(session, "session")?,
                utf8(prompt, "prompt")?,
                generate_options(sampling, max_tokens)?,
            )
        };
        session.logits.clear();
        let done = session.with(|s| s.generate(prompt, &options, on_piece(callback, user_data)))?;
        // SAFETY: the caller passes a writable struct or NULL.
        unsafe { report(stats, (&done).into()) }
    })
}

/// A message of a conversation: who speaks ("system", "user", "assistant") and what they
/// say, both NUL-terminated UTF-8.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct tern_message {
    /// The speaker's role.
    pub role: *const c_char,
    /// The text.
    pub content: *const c_char,
}

/// Replies to the conversation `messages` (all `n` so far, the user's new one last),
/// rendered with the model's chat template: only the tokens the session does not hold
/// already are fed, so a conversation continued on the same session costs its new turn.
/// The reply streams to `callback` until the template's end of turn or `max_tokens`
/// (negative: no limit but the context); the caller adds it to its messages for the next
/// turn. `sampling` may be NULL; `stats`, if not NULL, receives what happened.
///
/// # Safety
/// `session` is NULL or a live handle used by this thread alone; `messages` points to `n`
/// messages whose strings are NUL-terminated; the rest as for `tern_generate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_chat(
    session: *mut tern_session,
    messages: *const tern_message,
    n: usize,
    sampling: *const tern_sampling,
    max_tokens: i32,
    callback: tern_piece_callback,
    user_data: *mut c_void,
    stats: *mut tern_generation,
) -> tern_status {
    guard("tern_chat", || {
        // SAFETY: the caller passes a live handle or NULL, `n` readable messages, a
        // struct or NULL.
        let (session, given, generate) = unsafe {
            (
                handle_mut(session, "session")?,
                slice(messages, n, "messages")?,
                generate_options(sampling, max_tokens)?,
            )
        };
        let mut conversation = Vec::with_capacity(given.len());
        for (i, m) in given.iter().enumerate() {
            // SAFETY: the caller promises NUL-terminated strings or NULL.
            let (role, content) = unsafe {
                (
                    utf8(m.role, &format!("messages[{i}].role"))?,
                    utf8(m.content, &format!("messages[{i}].content"))?,
                )
            };
            conversation.push(Message::new(role, content));
        }
        let options = ChatOptions {
            generate,
            ..ChatOptions::default()
        };
        session.logits.clear();
        let reply =
            session.with(|s| s.chat(&conversation, &options, on_piece(callback, user_data)))?;
        let done = tern_generation {
            reused_tokens: reply.reused_tokens as u32,
            ..(&reply.stats).into()
        };
        // SAFETY: the caller passes a writable struct or NULL.
        unsafe { report(stats, done) }
    })
}
