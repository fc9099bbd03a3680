//! The C ABI driven as C drives it: the header matches the code, good calls work, and bad
//! input gets a status and a message, never a crash.

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{null, null_mut};

use crate::*;

/// The thread rules the header promises hold for the types behind the handles: a model is
/// shared across threads, a session or sampler moves between them.
#[test]
fn handles_keep_the_thread_rules() {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<tern_model>();
    movable::<tern_session>();
    movable::<tern_sampler>();
    movable::<tern_options>();
}

fn last_error() -> String {
    // SAFETY: tern_last_error returns a NUL-terminated string valid until the next failure.
    unsafe { CStr::from_ptr(tern_last_error()) }
        .to_string_lossy()
        .into_owned()
}

unsafe extern "C" fn append(piece: *const c_char, len: usize, user_data: *mut c_void) -> bool {
    // SAFETY: `user_data` is the `String` the test passed; `piece` holds `len` bytes.
    unsafe {
        let text = &mut *user_data.cast::<String>();
        let bytes = std::slice::from_raw_parts(piece.cast::<u8>(), len);
        text.push_str(std::str::from_utf8(bytes).unwrap());
    }
    true
}

#[test]
fn greedy_text_through_the_abi_equals_the_library_s() {
    let mut model = null_mut();
    let mut session = null_mut();
    let mut text = String::new();
    let mut stats = std::mem::MaybeUninit::<tern_generation>::uninit();
    // SAFETY: every pointer is valid for what the calls do with it; the handles are freed
    // once, the session after the model (which it keeps alive).
    unsafe {
        assert_eq!(
            tern_model_load_bundled(null(), &mut model),
            tern_status::TERN_OK
        );
        assert_eq!(tern_session_new(model, &mut session), tern_status::TERN_OK);
        tern_model_free(model);
        let greedy = tern_sampling {
            temperature: 0.0,
            ..tern_sampling_default()
        };
        let status = tern_generate(
            session,
            c"Once upon a time".as_ptr(),
            &greedy,
            12,
            Some(append),
            (&raw mut text).cast(),
            stats.as_mut_ptr(),
        );
        assert_eq!(status, tern_status::TERN_OK, "{}", last_error());
        assert_eq!(stats.assume_init().generated_tokens, 12);
        assert_eq!(tern_session_n_past(session), 5 + 12);
        tern_session_free(session);
    }
    let engine = engine::engine::Engine::load_bundled(Default::default()).unwrap();
    let mut expected = String::new();
    let options = engine::engine::GenerateOptions {
        max_tokens: 12,
        sampler: tern_core::sample::SamplerParams::greedy(),
    };
    engine
        .session()
        .unwrap()
        .generate("Once upon a time", &options, |piece| {
            expected.push_str(piece);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(text, expected);
}

#[test]
fn a_null_handle_is_an_error_with_a_message_on_this_thread() {
    let mut session = null_mut();
    // SAFETY: NULL is what the test passes on purpose; `session` is writable.
    let status = unsafe { tern_session_new(null(), &mut session) };
    assert_eq!(status, tern_status::TERN_ERROR_ARGUMENT);
    assert_eq!(last_error(), "tern_session_new: model is NULL");
    assert!(session.is_null());
    // Another thread has its own last error.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
}

/// The header as cbindgen makes it from the code now.
fn generated_header() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{dir}/src/lib.rs"))
        .generate()
        .expect("cbindgen reads the code")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_header_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/tern.h");
    let generated = generated_header();
    if std::env::var_os("TERN_BLESS_HEADER").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/tern.h differs from the code; run `TERN_BLESS_HEADER=1 cargo test -p \
         tern-capi header` and commit it"
    );
}
