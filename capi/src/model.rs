//! Loading a model (a file, bytes in memory, or the bundled one), what it is, and its
//! tokenizer.

use std::ffi::{CString, c_char};
use std::path::Path;
use std::sync::Arc;

use engine::chat::ChatTemplate;
use engine::engine::{Engine, ModelBytes};
use engine::error::EngineError;

use crate::options::tern_options;
use crate::status::{Failure, guard, tern_status};
use crate::text::{handle, out_given, put, slice, utf8};

/// A loaded model: weights, tokenizer and chat template, shared by its sessions (on any
/// threads).
pub struct tern_model {
    pub(crate) engine: Arc<Engine>,
    name: CString,
}

/// What a model is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct tern_model_summary {
    /// Tokens in the vocabulary; token ids are below it.
    pub n_vocab: u32,
    /// The context of its sessions, in tokens.
    pub n_ctx: u32,
    /// The context the model was trained with.
    pub n_ctx_train: u32,
    /// Transformer layers.
    pub n_layer: u32,
    /// Width of the hidden state.
    pub n_embd: u32,
    /// The beginning-of-sequence token, or -1.
    pub bos: i32,
    /// The end-of-sequence token, or -1.
    pub eos: i32,
}

/// Options from the caller's handle, or the defaults for NULL.
///
/// # Safety
/// `options` is NULL or a live handle.
unsafe fn options_or_default(options: *const tern_options) -> tern_options {
    // SAFETY: the caller passes a live handle or NULL.
    match unsafe { options.as_ref() } {
        Some(o) => tern_options {
            engine: o.engine.clone(),
            chat_template: o.chat_template.clone(),
        },
        None => tern_options::default(),
    }
}

/// Loads with `load`, applies the options' chat template, and hands the model to `out`.
fn finish_load(
    out: *mut *mut tern_model,
    options: tern_options,
    load: impl FnOnce(engine::engine::EngineOptions) -> Result<Engine, EngineError>,
) -> Result<(), Failure> {
    out_given(out, "out")?;
    let template = options
        .chat_template
        .as_deref()
        .map(ChatTemplate::from_name_or_file)
        .transpose()
        .map_err(EngineError::from)?;
    let mut engine = load(options.engine)?;
    if let Some(template) = template {
        engine.set_chat_template(template);
    }
    let name = CString::new(engine.name().replace('\0', "")).unwrap_or_default();
    let model = Box::into_raw(Box::new(tern_model {
        engine: Arc::new(engine),
        name,
    }));
    // SAFETY: `out` is not NULL (checked above) and the caller promises it is writable.
    unsafe { put(out, model, "out") }
}

/// Loads the GGUF model file at `path` (mapped, not read whole). `options` may be NULL for
/// the defaults.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `options` is NULL or a live handle; `out` is
/// valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_load(
    path: *const c_char,
    options: *const tern_options,
    out: *mut *mut tern_model,
) -> tern_status {
    guard("tern_model_load", || {
        // SAFETY: the caller passes a NUL-terminated string or NULL, and a live handle or NULL.
        let (path, options) = unsafe { (utf8(path, "path")?, options_or_default(options)) };
        finish_load(out, options, |o| Engine::load(Path::new(path), o))
    })
}

/// Loads a model from `len` bytes of a GGUF file in memory, which the library copies (the
/// caller may free them once this returns). `options` may be NULL for the defaults.
///
/// # Safety
/// `bytes` is NULL or points to `len` readable bytes; `options` is NULL or a live handle;
/// `out` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_load_bytes(
    bytes: *const u8,
    len: usize,
    options: *const tern_options,
    out: *mut *mut tern_model,
) -> tern_status {
    guard("tern_model_load_bytes", || {
        // SAFETY: the caller promises `len` readable bytes, or NULL; a live handle or NULL.
        let (bytes, options) =
            unsafe { (slice(bytes, len, "bytes")?, options_or_default(options)) };
        let bytes = ModelBytes::Owned(bytes.to_vec());
        finish_load(out, options, |o| {
            Engine::from_bytes(bytes, "model in memory".into(), o)
        })
    })
}

/// Loads the model built into the library: stories260K Q8_0, a 260K-parameter story
/// model, for trying the library without a model file. `options` may be NULL.
///
/// # Safety
/// `options` is NULL or a live handle; `out` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_load_bundled(
    options: *const tern_options,
    out: *mut *mut tern_model,
) -> tern_status {
    guard("tern_model_load_bundled", || {
        // SAFETY: the caller passes a live handle or NULL.
        let options = unsafe { options_or_default(options) };
        finish_load(out, options, Engine::load_bundled)
    })
}

/// Frees a model; NULL is a no-op. Its sessions keep what they need and stay usable.
///
/// # Safety
/// `model` is NULL or a handle from `tern_model_load*` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_free(model: *mut tern_model) {
    if !model.is_null() {
        // SAFETY: the caller hands back a handle made by `tern_model_load*`, once.
        drop(unsafe { Box::from_raw(model) });
    }
}

/// The model's name in messages (its path, for a file); NULL for a NULL model. Valid until
/// the model is freed.
///
/// # Safety
/// `model` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_name(model: *const tern_model) -> *const c_char {
    // SAFETY: the caller passes a live handle or NULL.
    unsafe { model.as_ref() }.map_or(std::ptr::null(), |m| m.name.as_ptr())
}

/// Writes what the model is to `out`.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is valid for a write of `tern_model_summary`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_model_info(
    model: *const tern_model,
    out: *mut tern_model_summary,
) -> tern_status {
    guard("tern_model_info", || {
        // SAFETY: the caller passes a live handle or NULL.
        let engine = &unsafe { handle(model, "model") }?.engine;
        let config = engine.config();
        let tokenizer = engine.tokenizer();
        let id = |t: Option<u32>| t.map_or(-1, |t| t as i32);
        let stats = tern_model_summary {
            n_vocab: config.n_vocab as u32,
            n_ctx: engine.n_ctx() as u32,
            n_ctx_train: config.n_ctx_train.min(u32::MAX as usize) as u32,
            n_layer: config.n_layer as u32,
            n_embd: config.n_embd as u32,
            bos: id(tokenizer.bos()),
            eos: id(tokenizer.eos()),
        };
        // SAFETY: the caller promises `out` is writable.
        unsafe { put(out, stats, "out") }
    })
}

/// Tokenizes `len` bytes of UTF-8 `text`: with the model's BOS (and EOS) where it adds
/// them if `add_special`, and special tokens written in the text (`<|im_start|>`)
/// recognised if `parse_special`. Writes up to `capacity` ids to `tokens` and their count
/// to `n_tokens`; with too small a buffer, returns `TERN_ERROR_BUFFER_TOO_SMALL` and writes
/// the count needed to `n_tokens`.
///
/// # Safety
/// `model` is NULL or a live handle; `text` points to `len` bytes (or is NULL with `len`
/// 0); `tokens` is valid for `capacity` writes (or NULL with `capacity` 0); `n_tokens` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_tokenize(
    model: *const tern_model,
    text: *const c_char,
    len: usize,
    add_special: bool,
    parse_special: bool,
    tokens: *mut i32,
    capacity: usize,
    n_tokens: *mut usize,
) -> tern_status {
    guard("tern_tokenize", || {
        // SAFETY: the caller passes a live handle or NULL, and `len` readable bytes.
        let (model, bytes) = unsafe {
            (
                handle(model, "model")?,
                slice(text.cast::<u8>(), len, "text")?,
            )
        };
        out_given(n_tokens, "n_tokens")?;
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Failure::argument(format!(
                "text is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        let ids = model
            .engine
            .tokenizer()
            .encode(text, add_special, parse_special);
        // SAFETY: `n_tokens` is not NULL and the caller promises it is writable.
        unsafe { put(n_tokens, ids.len(), "n_tokens") }?;
        if ids.len() > capacity {
            return Err(Failure {
                status: tern_status::TERN_ERROR_BUFFER_TOO_SMALL,
                message: format!("{} tokens do not fit a buffer of {capacity}", ids.len()),
            });
        }
        if !ids.is_empty() {
            out_given(tokens, "tokens")?;
            // SAFETY: `tokens` is not NULL and holds `capacity` >= ids.len() elements.
            let out = unsafe { std::slice::from_raw_parts_mut(tokens, ids.len()) };
            for (o, &id) in out.iter_mut().zip(&ids) {
                *o = id as i32;
            }
        }
        Ok(())
    })
}

/// Turns `n` token ids into text: UTF-8 bytes written to `buf` and NUL-terminated, their
/// count (without the NUL) to `len`. Bytes that do not form whole characters (a piece of
/// one) become U+FFFD. With too small a buffer (it needs `len + 1` bytes), returns
/// `TERN_ERROR_BUFFER_TOO_SMALL` and writes the length needed to `len`.
///
/// # Safety
/// `model` is NULL or a live handle; `tokens` points to `n` ids (or is NULL with `n` 0);
/// `buf` is valid for `capacity` writes; `len` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_detokenize(
    model: *const tern_model,
    tokens: *const i32,
    n: usize,
    buf: *mut c_char,
    capacity: usize,
    len: *mut usize,
) -> tern_status {
    guard("tern_detokenize", || {
        // SAFETY: the caller passes a live handle or NULL, and `n` readable ids.
        let (model, ids) = unsafe { (handle(model, "model")?, slice(tokens, n, "tokens")?) };
        out_given(len, "len")?;
        let ids = token_ids(ids, model.engine.config().n_vocab)?;
        let text = model.engine.tokenizer().decode(&ids);
        // SAFETY: `len` is not NULL and the caller promises it is writable.
        unsafe { put(len, text.len(), "len") }?;
        if text.len() >= capacity {
            return Err(Failure {
                status: tern_status::TERN_ERROR_BUFFER_TOO_SMALL,
                message: format!(
                    "{} bytes and a NUL do not fit a buffer of {capacity}",
                    text.len()
                ),
            });
        }
        out_given(buf, "buf")?;
        // SAFETY: `buf` is not NULL and holds `capacity` > text.len() bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
            buf.add(text.len()).write(0);
        }
        Ok(())
    })
}

/// Ids from C as the engine's, each checked against the vocabulary.
pub(crate) fn token_ids(ids: &[i32], n_vocab: usize) -> Result<Vec<u32>, Failure> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| match u32::try_from(id) {
            Ok(id) if (id as usize) < n_vocab => Ok(id),
            _ => Err(Failure::argument(format!(
                "token {i} is {id}, outside the vocabulary of {n_vocab}"
            ))),
        })
        .collect()
}
