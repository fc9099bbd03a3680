//! The `tern` binary: bad input gets one clear line and a non-zero exit; good input runs.

mod common;

use std::path::PathBuf;

use common::{assert_fails_with, stderr, tern};

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tern-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stories_f32() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/stories260K-f32.gguf");
    std::fs::read(path).unwrap()
}

#[test]
fn greedy_run_on_the_bundled_model_streams_the_known_story() {
    let out = tern(&["run", "-p", "Once upon a time", "-n", "12", "--temp", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.starts_with("Once upon a time, there was a little girl named Lily."),
        "{text:?}"
    );
    assert!(
        stderr(&out).contains("tok/s"),
        "no timings: {}",
        stderr(&out)
    );
}

#[test]
fn inspect_lists_hyperparameters_and_tensors() {
    let out = tern(&["inspect"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for needle in [
        "architecture:  llama",
        "heads 8 | kv heads 4",
        "token_embd.weight",
        "Q8_0",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn a_missing_model_file_is_named() {
    assert_fails_with(
        &["run", "-m", "/no/such/model.gguf", "-p", "x"],
        "/no/such/model.gguf",
    );
}

#[test]
fn a_directory_is_not_a_model() {
    let dir = std::env::temp_dir();
    assert_fails_with(&["run", "-m", dir.to_str().unwrap()], "is a directory");
}

#[test]
fn a_non_gguf_file_is_rejected() {
    let path = temp_file("not.gguf", b"this is not a model file at all, just text\n");
    assert_fails_with(&["inspect", path.to_str().unwrap()], "not a valid GGUF");
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_truncated_model_is_rejected() {
    let bytes = stories_f32();
    let path = temp_file("truncated.gguf", &bytes[..bytes.len() / 2]);
    assert_fails_with(&["run", "-m", path.to_str().unwrap()], "not a valid GGUF");
    let _ = std::fs::remove_file(path);
}

#[test]
fn an_unsupported_architecture_is_named() {
    let mut bytes = stories_f32();
    // The value of general.architecture follows its key, a u32 type tag and a u64 length.
    let key = b"general.architecture";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8;
    assert_eq!(&bytes[at..at + 5], b"llama");
    bytes[at..at + 5].copy_from_slice(b"mamba");
    let path = temp_file("mamba.gguf", &bytes);
    assert_fails_with(
        &["inspect", path.to_str().unwrap()],
        "unsupported architecture `mamba`",
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_options_are_named() {
    assert_fails_with(&["run", "--temp", "-1"], "temperature");
    assert_fails_with(&["run", "--temp", "NaN"], "temperature");
    assert_fails_with(&["run", "--top-p", "0"], "top");
    assert_fails_with(&["run", "-c", "0"], "context");
    assert_fails_with(&["run", "-c", "100000"], "context");
    assert_fails_with(&["run", "-b", "0"], "batch");
    assert_fails_with(&["run", "-n", "-5"], "-5");
    assert_fails_with(&["run", "--backend", "quantum"], "quantum");
}

#[test]
fn a_prompt_longer_than_the_context_is_an_error_not_a_truncation() {
    let prompt = "Once upon a time ".repeat(20);
    assert_fails_with(&["run", "-c", "16", "-p", &prompt], "context holds 16");
}

#[test]
fn a_prompt_file_that_is_not_utf8_is_rejected() {
    let path = temp_file("prompt.bin", b"Once \xff\xfe upon");
    assert_fails_with(&["run", "-f", path.to_str().unwrap()], "not UTF-8");
    let _ = std::fs::remove_file(path);
}
