//! The `tern` binary: bad input gets one clear line and a non-zero exit; good input runs.

mod common;

use std::path::PathBuf;

use common::{assert_fails_with, stderr, tern, tern_with_stdin};

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

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of timings a run prints last on stderr.
fn timings(out: &std::process::Output) -> String {
    let err = stderr(out);
    let line = err.lines().rev().find(|l| l.contains("tok/s"));
    line.unwrap_or_else(|| panic!("no timings: {err}"))
        .to_string()
}

#[test]
fn n_predict_minus_one_runs_to_the_end_of_text_or_of_the_context() {
    // The bundled model ends its story with BOS well before its context of 512.
    let out = tern(&["run", "-n", "-1", "--temp", "0", "-p", "Once upon a time"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        timings(&out).ends_with("stop: EndOfGeneration"),
        "{}",
        timings(&out)
    );
    let generated: usize = timings(&out)
        .split("generated: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(generated > 128, "stopped at the default -n: {generated}");
    let out = tern(&["run", "-n", "-1", "-c", "40", "--temp", "0", "-p", "Once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        timings(&out).contains("generated: 39 tokens"),
        "{}",
        timings(&out)
    );
    assert!(
        timings(&out).ends_with("stop: ContextFull"),
        "{}",
        timings(&out)
    );
    // -1 is the only negative count.
    assert_fails_with(&["run", "-n", "-2"], "or -1 for no limit");
}

#[test]
fn escapes_are_replaced_with_e_and_kept_without() {
    let args = ["run", "-n", "1", "--temp", "0", "-p", r"One\nTwo\t\x41\\"];
    let out = tern(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(r"One\nTwo\t\x41\\"),
        "{}",
        stdout(&out)
    );
    let out = tern(&[&args[..], &["-e"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("One\nTwo\tA\\"),
        "{}",
        stdout(&out)
    );
    // --no-escape (llama.cpp's) turns -e off again.
    let out = tern(&[&args[..], &["-e", "--no-escape"]].concat());
    assert!(stdout(&out).starts_with(r"One\nTwo"), "{}", stdout(&out));
    // Escapes apply to a prompt file too, and must leave UTF-8.
    let path = temp_file("escapes.txt", br"Once\nupon");
    let out = tern(&["run", "-e", "-f", path.to_str().unwrap(), "-n", "1"]);
    assert!(stdout(&out).starts_with("Once\nupon"), "{}", stdout(&out));
    let _ = std::fs::remove_file(path);
    assert_fails_with(&["run", "-e", "-p", r"\xff"], "not UTF-8");
}

#[test]
fn dash_reads_the_prompt_from_standard_input() {
    let greedy = ["run", "-n", "12", "--temp", "0"];
    let piped = tern_with_stdin(&[&greedy[..], &["-f", "-"]].concat(), b"Once upon a time");
    assert!(piped.status.success(), "{}", stderr(&piped));
    let given = tern(&[&greedy[..], &["-p", "Once upon a time"]].concat());
    assert_eq!(stdout(&piped), stdout(&given));
    let out = tern_with_stdin(&["run", "-f", "-", "-n", "1"], b"\xff\xfe");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("prompt on standard input is not UTF-8"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_prompt_is_echoed_unless_told_not_to() {
    let args = ["run", "-p", "Once upon a time", "-n", "12", "--temp", "0"];
    let echoed = stdout(&tern(&args));
    let out = tern(&[&args[..], &["--no-display-prompt"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let continuation = stdout(&out);
    assert!(
        continuation.starts_with(", there was a little girl named Lily."),
        "{continuation:?}"
    );
    assert_eq!(echoed, format!("Once upon a time{continuation}"));
}

#[test]
fn the_clock_seed_is_printed_and_repeats_the_run() {
    let args = ["run", "-p", "Once upon a time", "-n", "24", "-t", "1"];
    let first = tern(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let err = stderr(&first);
    let seed = err
        .split("--seed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("no seed: {err}"));
    let again = tern(&[&args[..], &["--seed", seed]].concat());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&first));
    assert!(!stderr(&again).contains("--seed"), "{}", stderr(&again));
    // Greedy decoding ignores the seed, so none is printed.
    let greedy = tern(&[&args[..], &["--temp", "0"]].concat());
    assert!(!stderr(&greedy).contains("--seed"), "{}", stderr(&greedy));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_generation_prints_the_timings_and_exits_130() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // A model whose greedy text never ends (one layer, a context of 4096 by default, heads
    // of 1024 that make each step slower as the context fills), so only Ctrl-C stops it.
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/gguf/ok-llama-q4_0-heads-1024-context-2pow24.gguf");
    let mut child = Command::new(common::tern_binary())
        .args([
            "run",
            "-m",
            model.to_str().unwrap(),
            "-n",
            "-1",
            "--temp",
            "0",
        ])
        .args(["-p", "the", "--no-pack-cache"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tern");
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 256];
    while seen.len() < 64 {
        let n = stdout.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "output ended early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` with a child's pid and a valid signal number has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let _ = stdout.read_to_end(&mut seen);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let line = timings(&out);
    assert!(line.ends_with("stop: Interrupted"), "{line}");
    assert!(line.contains("generated: "), "{line}");
}
