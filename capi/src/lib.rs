//! Tern's C ABI: the engine as `libtern.a` and `libtern.so`, declared in `include/tern.h`.
//!
//! The rules every function keeps, so that C firmware can rely on them:
//!
//! - **Handles are opaque.** The caller owns each handle it creates (`tern_options_new`,
//!   `tern_model_load*`, `tern_session_new`, `tern_sampler_new`) and frees it with the
//!   matching `*_free`, which takes NULL as a no-op. A session borrows nothing from the
//!   caller: it keeps its model alive, so freeing the model first is allowed.
//! - **Every call returns a [`tern_status`].** `TERN_OK` is success; any other value comes
//!   with a one-line message from [`tern_last_error`] (per thread). Null pointers, invalid
//!   UTF-8 and out-of-range values are errors, never crashes, and no panic crosses the
//!   boundary: one would be a bug, reported as `TERN_ERROR_INTERNAL`.
//! - **Threads.** A model can be shared by sessions on different threads at once; a session
//!   (and a sampler) is used by one thread at a time, and may move between threads.
//! - **Outputs.** Out-parameters are written only on success. Text comes back as UTF-8;
//!   strings the library returns stay valid as the function's comment says.

#![allow(non_camel_case_types)]

mod generate;
mod model;
mod options;
mod session;
mod status;
mod text;

pub use generate::{
    tern_chat, tern_generate, tern_generation, tern_message, tern_piece_callback, tern_sampler,
    tern_sampler_free, tern_sampler_new, tern_sampler_sample, tern_sampling, tern_sampling_default,
    tern_stop_reason,
};
pub use model::{
    tern_detokenize, tern_model, tern_model_free, tern_model_info, tern_model_load,
    tern_model_load_bundled, tern_model_load_bytes, tern_model_name, tern_model_summary,
    tern_tokenize,
};
pub use options::{
    tern_options, tern_options_free, tern_options_new, tern_options_set_backend,
    tern_options_set_cache_type, tern_options_set_chat_template, tern_options_set_context,
    tern_options_set_kv_dram_tokens, tern_options_set_pack_cache_dir, tern_options_set_threads,
};
pub use session::{
    tern_session, tern_session_eval, tern_session_free, tern_session_n_past, tern_session_new,
    tern_session_reset,
};
pub use status::{tern_last_error, tern_status, tern_version};

#[cfg(test)]
mod tests;
