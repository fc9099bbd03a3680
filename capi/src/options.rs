//! How a model loads: an opaque options handle with one setter per option, so the ABI keeps
//! working as options are added. Each setter checks its value at once.

use std::ffi::c_char;
use std::path::PathBuf;

use engine::engine::{BackendKind, EngineOptions, KvType};

use crate::status::{Failure, guard, tern_status};
use crate::text::{handle_mut, put, utf8};

/// Options for loading a model; `tern_options_new` makes one with the defaults.
#[derive(Default)]
pub struct tern_options {
    pub(crate) engine: EngineOptions,
    /// A built-in chat template's name or a Jinja file, used instead of the model's.
    pub(crate) chat_template: Option<String>,
}

/// Makes options with the defaults: the model's trained context (capped as `tern run`
/// caps it), threads on every physical core, the CPU backend, an f16 KV cache kept in
/// DRAM, no packed-weight cache, the model's own chat template.
///
/// # Safety
/// `out` is valid for a write of a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_new(out: *mut *mut tern_options) -> tern_status {
    guard("tern_options_new", || {
        let options = Box::into_raw(Box::default());
        // SAFETY: the caller's `out` is valid for a write.
        unsafe { put(out, options, "out") }.inspect_err(|_| {
            // SAFETY: made just above and handed to no one.
            drop(unsafe { Box::from_raw(options) });
        })
    })
}

/// Frees options; NULL is a no-op. Models loaded with them are not affected.
///
/// # Safety
/// `options` is NULL or a handle from `tern_options_new` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_free(options: *mut tern_options) {
    if !options.is_null() {
        // SAFETY: the caller hands back a handle made by `tern_options_new`, once.
        drop(unsafe { Box::from_raw(options) });
    }
}

/// Runs `set` on the options behind `options`.
fn set(
    name: &str,
    options: *mut tern_options,
    set: impl FnOnce(&mut tern_options) -> Result<(), Failure>,
) -> tern_status {
    guard(name, || {
        // SAFETY: the caller passes a live handle or NULL.
        set(unsafe { handle_mut(options, "options") }?)
    })
}

/// Context length of sessions in tokens; 0 picks the model's trained context (capped).
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_context(
    options: *mut tern_options,
    n_ctx: u32,
) -> tern_status {
    set("tern_options_set_context", options, |o| {
        o.engine.n_ctx = (n_ctx > 0).then_some(n_ctx as usize);
        Ok(())
    })
}

/// Threads that compute, the caller's included; 0 picks the number of physical cores.
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_threads(
    options: *mut tern_options,
    n_threads: u32,
) -> tern_status {
    set("tern_options_set_threads", options, |o| {
        o.engine.threads = n_threads as usize;
        Ok(())
    })
}

/// The backend by name: "cpu", "reference", and where the library was built with them,
/// "vulkan", "opencl" and "auto" (a GPU where one answers, else the CPU).
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone; `backend` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_backend(
    options: *mut tern_options,
    backend: *const c_char,
) -> tern_status {
    set("tern_options_set_backend", options, |o| {
        // SAFETY: the caller passes a NUL-terminated string or NULL.
        let name = unsafe { utf8(backend, "backend") }?;
        o.engine.backend = match name {
            "cpu" => BackendKind::Cpu,
            "reference" => BackendKind::Reference,
            #[cfg(feature = "vulkan")]
            "vulkan" => BackendKind::Vulkan,
            #[cfg(feature = "opencl")]
            "opencl" => BackendKind::OpenCl,
            #[cfg(any(feature = "vulkan", feature = "opencl"))]
            "auto" => BackendKind::Auto,
            _ => {
                return Err(Failure::argument(format!(
                    "unknown backend `{name}`; this library has {}",
                    BACKENDS.join(", ")
                )));
            }
        };
        Ok(())
    })
}

/// The backends this build of the library offers.
const BACKENDS: &[&str] = &[
    "cpu",
    "reference",
    #[cfg(feature = "vulkan")]
    "vulkan",
    #[cfg(feature = "opencl")]
    "opencl",
    #[cfg(any(feature = "vulkan", feature = "opencl"))]
    "auto",
];

/// Element types of the KV cache's keys and values, as llama.cpp's `-ctk`/`-ctv` name them:
/// "f16" (the default), "f32", "q8_0" (0.53 of f16's memory), and for values "fp8" (E4M3).
/// A type the backend lacks is refused when the model loads.
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone; `keys` and `values` are
/// NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_cache_type(
    options: *mut tern_options,
    keys: *const c_char,
    values: *const c_char,
) -> tern_status {
    set("tern_options_set_cache_type", options, |o| {
        // SAFETY: the caller passes NUL-terminated strings or NULL.
        let (keys, values) = unsafe { (utf8(keys, "keys")?, utf8(values, "values")?) };
        let kv_type = |name: &str| {
            KvType::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = KvType::ALL.iter().map(|t| t.name()).collect();
                Failure::argument(format!(
                    "unknown KV cache type `{name}`; the cache holds {}",
                    names.join(", ")
                ))
            })
        };
        let (k, v) = (kv_type(keys)?, kv_type(values)?);
        if !k.holds_keys() {
            return Err(Failure::argument(format!(
                "{k} holds values only; keys take f32, f16 or q8_0"
            )));
        }
        o.engine.cache_type_k = k;
        o.engine.cache_type_v = v;
        Ok(())
    })
}

/// Keep only the newest `n_tokens` positions of the KV cache in DRAM and spill older ones
/// to a file in `spill_dir` (NULL: the user's cache directory, else the temporary one);
/// `n_tokens` 0 keeps the whole cache in DRAM (the default).
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone; `spill_dir` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_kv_dram_tokens(
    options: *mut tern_options,
    n_tokens: u32,
    spill_dir: *const c_char,
) -> tern_status {
    set("tern_options_set_kv_dram_tokens", options, |o| {
        let dir = match spill_dir.is_null() {
            true => None,
            // SAFETY: the caller passes a NUL-terminated string.
            false => Some(PathBuf::from(unsafe { utf8(spill_dir, "spill_dir") }?)),
        };
        o.engine.kv_dram_tokens = (n_tokens > 0).then_some(n_tokens as usize);
        o.engine.kv_spill_dir = dir;
        Ok(())
    })
}

/// Directory of packed-weight caches: the first load of a model writes the CPU backend's
/// repacked weights there and later loads map them; NULL (the default) repacks every time.
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone; `dir` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_pack_cache_dir(
    options: *mut tern_options,
    dir: *const c_char,
) -> tern_status {
    set("tern_options_set_pack_cache_dir", options, |o| {
        o.engine.pack_cache = match dir.is_null() {
            true => None,
            // SAFETY: the caller passes a NUL-terminated string.
            false => Some(PathBuf::from(unsafe { utf8(dir, "dir") }?)),
        };
        o.engine.program_cache = o.engine.pack_cache.clone();
        Ok(())
    })
}

/// The chat template for `tern_chat`: a built-in one by name ("chatml", "llama2",
/// "llama3", "mistral", "gemma", "qwen3") or a Jinja file; NULL (the default) uses the
/// model's. Checked when the model loads.
///
/// # Safety
/// `options` is NULL or a live handle used by this thread alone; `name_or_file` is NULL or a
/// NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_options_set_chat_template(
    options: *mut tern_options,
    name_or_file: *const c_char,
) -> tern_status {
    set("tern_options_set_chat_template", options, |o| {
        o.chat_template = match name_or_file.is_null() {
            true => None,
            // SAFETY: the caller passes a NUL-terminated string.
            false => Some(unsafe { utf8(name_or_file, "name_or_file") }?.to_owned()),
        };
        Ok(())
    })
}
