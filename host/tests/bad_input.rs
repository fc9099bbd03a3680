//! Bad input from outside gets one clear error, never a panic, a hang or a runaway
//! allocation: every file of the fuzz corpora through the loader and the CLI, then bad
//! options, prompts and paths (the cases `docs/bad-input.md` lists).

mod common;

use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{repo, stderr};
use tern::engine::{BackendKind, Engine, EngineOptions, GenerateOptions};
use tern_core::sample::SamplerParams;

/// The folders of model files the fuzz targets start from or found: hand-made seeds
/// (`ok-` files must load, `bad-` files must not), the corpora the runs grew, and the
/// reproducers of crashes fixed since.
const CORPUS_DIRS: [&str; 5] = [
    "fuzz/seeds/gguf",
    "fuzz/corpus/gguf_reader",
    "fuzz/corpus/model_load",
    "fuzz/regressions/gguf_reader",
    "fuzz/regressions/model_load",
];

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in CORPUS_DIRS {
        let Ok(entries) = std::fs::read_dir(repo(dir)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("a readable folder").path()));
    }
    files.sort();
    assert!(
        files.len() >= 90,
        "only {} corpus files: run fuzz/src/bin/make_corpus.rs",
        files.len()
    );
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Loads `path` on `backend` and, when that works, generates two tokens. Returns the error
/// message of whichever step refused.
fn load_and_generate(path: &Path, backend: BackendKind) -> Result<(), String> {
    let options = EngineOptions {
        threads: 1,
        backend,
        ..EngineOptions::default()
    };
    let engine = Engine::load(path, options).map_err(|e| e.to_string())?;
    let mut session = engine.session().map_err(|e| e.to_string())?;
    let generate = GenerateOptions {
        max_tokens: 2,
        sampler: SamplerParams::greedy(),
    };
    session
        .generate("the a", &generate, |_| ControlFlow::Continue(()))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn every_corpus_file_loads_or_fails_with_a_message() {
    let mut problems = Vec::new();
    for path in corpus_files() {
        let name = file_name(&path);
        for backend in [BackendKind::Cpu, BackendKind::Reference] {
            let outcome = catch_unwind(AssertUnwindSafe(|| load_and_generate(&path, backend)));
            match outcome {
                Err(_) => problems.push(format!("{name} on {backend:?}: panicked")),
                Ok(Ok(())) if name.starts_with("bad-") => {
                    problems.push(format!("{name} on {backend:?}: loaded"));
                }
                Ok(Err(e)) if name.starts_with("ok-") => {
                    problems.push(format!("{name} on {backend:?}: {e}"));
                }
                Ok(Err(e)) if e.trim().is_empty() || e.contains('\n') => {
                    problems.push(format!("{name} on {backend:?}: message {e:?}"));
                }
                Ok(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A failed CLI run ends with exit code 1 and one `error:` line; a panic is 101, a signal
/// no code at all.
fn check_cli(args: &[&str], out: &Output, problems: &mut Vec<String>) {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let clean = match out.status.code() {
        Some(0) => !err.contains("panicked"),
        Some(1) => lines.len() == 1 && lines[0].starts_with("error: "),
        _ => false,
    };
    if !clean {
        problems.push(format!("{args:?}: {:?} {err:?}", out.status.code()));
    }
}

/// Runs the `tern` binary with `args` and without a home or cache folder: runs that load a
/// model then neither write caches into the user's folders nor report on them, so what
/// stderr holds is the answer to the input alone.
fn tern(args: &[&str]) -> Output {
    std::process::Command::new(common::tern_binary())
        .args(args)
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .output()
        .expect("run tern")
}

/// Runs `tern` with `args`, asserts failure with a single `error:` line that contains
/// `needle`, and returns the output for further checks.
fn assert_fails_with(args: &[&str], needle: &str) -> Output {
    let out = tern(args);
    let err = stderr(&out);
    // 1 for what Tern refuses, 2 for what the argument parser does; 101 would be a panic.
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{args:?}: {:?} {err}",
        out.status.code()
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got {err:?}");
    assert!(lines[0].starts_with("error: "), "{args:?}: {err:?}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: {err:?} lacks {needle:?}"
    );
    out
}

#[test]
fn every_corpus_file_through_the_cli_exits_cleanly() {
    let files = corpus_files();
    let problems = std::sync::Mutex::new(Vec::new());
    // Two workers: each run is a process that starts, loads a tiny file and exits.
    std::thread::scope(|s| {
        for part in files.chunks(files.len().div_ceil(2)) {
            let problems = &problems;
            s.spawn(move || {
                let mut found = Vec::new();
                for path in part {
                    let path = path.to_str().unwrap();
                    for args in [
                        &["inspect", path, "--metadata"][..],
                        &[
                            "run", "-m", path, "-p", "the a", "-n", "2", "-t", "1", "--temp", "0",
                        ],
                    ] {
                        check_cli(args, &tern(args), &mut found);
                    }
                }
                problems.lock().unwrap().extend(found);
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A file under the system's temporary folder, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        let path = std::env::temp_dir().join(format!("tern-bad-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }

    fn with(name: &str, bytes: &[u8]) -> TempPath {
        let t = TempPath::new(name);
        std::fs::write(&t.0, bytes).unwrap();
        t
    }

    fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn out_of_range_sampling_options_are_named() {
    for (flag, value, needle) in [
        (
            "--temp",
            "-1",
            "temperature must be finite and >= 0, got -1",
        ),
        (
            "--temp",
            "NaN",
            "temperature must be finite and >= 0, got NaN",
        ),
        (
            "--temp",
            "inf",
            "temperature must be finite and >= 0, got inf",
        ),
        (
            "--temp",
            "1e40",
            "temperature must be finite and >= 0, got inf",
        ),
        ("--top-p", "0", "top-p must be in (0, 1], got 0"),
        ("--top-p", "1.5", "top-p must be in (0, 1], got 1.5"),
        ("--min-p", "-0.1", "min-p must be in [0, 1], got -0.1"),
        ("--min-p", "NaN", "min-p must be in [0, 1], got NaN"),
        (
            "--repeat-penalty",
            "0",
            "repeat penalty must be finite and > 0, got 0",
        ),
        (
            "--repeat-penalty",
            "-1",
            "repeat penalty must be finite and > 0, got -1",
        ),
    ] {
        assert_fails_with(&["run", flag, value, "-n", "1"], needle);
    }
}

#[test]
fn malformed_numbers_are_named() {
    for (args, needle) in [
        (&["run", "-n", "-5"][..], "'-5'"),
        (
            &["run", "-n", "99999999999999999999999"],
            "number too large",
        ),
        (&["run", "--top-k", "-1"], "'-1'"),
        (&["run", "--temp", "warm"], "'warm'"),
        (&["run", "-c", "-1"], "'-1'"),
        (&["run", "-t", "-1"], "is not a thread count"),
        (&["run", "-t", "100000"], "at most"),
        (&["run", "--kv-type", "f8"], "'f8'"),
        (&["run", "--backend", "quantum"], "'quantum'"),
        (&["bench", "-p", "abc"], "`abc` is not a token count"),
        (&["bench", "-p", ""], "empty list"),
        (&["bench", "-r", "0"], "at least one repetition"),
        (&["run", "-p", "x", "-f", "y"], "cannot be used with"),
        (&["launch"], "unrecognized subcommand"),
    ] {
        assert_fails_with(args, needle);
    }
}

#[test]
fn sizes_the_model_cannot_take_are_named() {
    for (args, needle) in [
        (&["run", "-c", "0"][..], "the context size must be positive"),
        (
            &["run", "-c", "100000"],
            "a context of 100000 tokens exceeds the 512 the model was trained for",
        ),
        (&["run", "-b", "0"], "the batch size must be positive"),
        (&["bench", "-p", "0", "-n", "0"], "nothing to time"),
        (
            &["bench", "-p", "100000", "-n", "0"],
            "needs a context of 100000 tokens",
        ),
    ] {
        assert_fails_with(args, needle);
    }
}

#[test]
fn huge_but_harmless_counts_run() {
    // More tokens than the context: generation stops when the context is full.
    let out = tern(&[
        "run",
        "-n",
        "18446744073709551615",
        "-c",
        "24",
        "--temp",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("ContextFull"), "{}", stderr(&out));
    // A batch larger than the context is cut to the context.
    let out = tern(&["run", "-b", "1000000000", "-n", "1", "-p", "Once"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn paths_that_are_not_model_files_are_named() {
    let fifo = TempPath::new("model.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo.0)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let dir = std::env::temp_dir();
    for (model, needle) in [
        (
            "/no/such/model.gguf",
            "cannot open model `/no/such/model.gguf`: No such file",
        ),
        (dir.to_str().unwrap(), "is a directory, not a model file"),
        ("/dev/zero", "`/dev/zero` is not a regular file"),
        (fifo.str(), "is not a regular file"),
        ("/etc/passwd/model.gguf", "Not a directory"),
    ] {
        assert_fails_with(&["run", "-m", model, "-n", "1"], needle);
        assert_fails_with(&["inspect", model], needle);
        assert_fails_with(&["bench", "-m", model, "-p", "1", "-n", "0"], needle);
    }
}

#[test]
fn prompt_files_that_cannot_be_used_are_named() {
    let not_utf8 = TempPath::with("prompt.bin", b"Once \xff\xfe upon");
    let dir = std::env::temp_dir();
    for (file, needle) in [
        (
            "/no/such/prompt.txt",
            "cannot read prompt file `/no/such/prompt.txt`",
        ),
        (dir.to_str().unwrap(), "Is a directory"),
        (not_utf8.str(), "is not UTF-8 (invalid byte at offset 5)"),
        ("/dev/zero", "prompt file `/dev/zero` is larger than 64 MiB"),
    ] {
        assert_fails_with(&["run", "-f", file, "-n", "1"], needle);
    }
}

#[test]
fn kv_tier_options_that_mean_nothing_or_a_typo_are_refused() {
    assert_fails_with(
        &["run", "--kv-dram-tokens", "0", "-n", "1"],
        "at least 1: the newest positions always stay in DRAM",
    );
    // A mistyped spill directory is not created with all its missing parents.
    let typo = std::env::temp_dir().join(format!("tern-typo-{}", std::process::id()));
    let deep = typo.join("spill");
    let deep = deep.to_str().unwrap();
    for args in [
        &[
            "run",
            "--kv-dram-tokens",
            "4",
            "--kv-spill-dir",
            deep,
            "-n",
            "1",
        ][..],
        &[
            "bench",
            "--kv-dram-tokens",
            "4",
            "--kv-spill-dir",
            deep,
            "-p",
            "1",
            "-n",
            "0",
        ],
    ] {
        let out = assert_fails_with(args, "only the last component of the path is created");
        assert!(
            stderr(&out).contains(typo.to_str().unwrap()),
            "{}",
            stderr(&out)
        );
        assert!(!typo.exists(), "{} was created", typo.display());
    }
    assert_fails_with(
        &[
            "run",
            "--kv-dram-tokens",
            "4",
            "--kv-spill-dir",
            "/etc/passwd",
        ],
        "`/etc/passwd` is not a directory",
    );
    // Only the last component is new: the run makes it.
    let fresh = TempPath::new("spill-dir");
    let model = repo("models/stories260K-q8_0.gguf");
    let out = tern(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "-p",
        "Once",
        "-n",
        "20",
        "--kv-dram-tokens",
        "4",
        "--kv-spill-dir",
        fresh.str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fresh.0.is_dir());
    let _ = std::fs::remove_dir(&fresh.0);
}

#[test]
fn more_threads_than_cores_warn_but_run() {
    let cores = tern::threads::physical_cores();
    let threads = (cores + 1).to_string();
    let out = tern(&["run", "-p", "Once", "-n", "2", "-t", &threads]);
    assert!(out.status.success(), "{}", stderr(&out));
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "warning: {threads} threads on {cores} physical cores; threads that share a core \
             usually make each step slower"
        )]
    );
    assert!(stderr(&out).contains(&format!("{threads} threads |")));
    let out = tern(&["run", "-p", "Once", "-n", "2", "-t", &cores.to_string()]);
    assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
}

#[test]
fn prompts_longer_than_the_context_are_refused_unechoed() {
    let prompt = "Once upon a time ".repeat(5);
    let out = assert_fails_with(
        &["run", "-c", "16", "-p", &prompt],
        "the prompt has 22 tokens; the context holds 16",
    );
    assert!(out.stdout.is_empty(), "the refused prompt was echoed");
    // So long that its length alone rules it out: refused before tokenizing.
    let long = TempPath::with("long.txt", "a".repeat(1 << 20).as_bytes());
    let out = assert_fails_with(
        &["run", "-f", long.str()],
        "the prompt has 1048576 bytes; the context holds 512 tokens of at most 9 bytes each",
    );
    assert!(out.stdout.is_empty(), "the refused prompt was echoed");
}

#[test]
fn an_empty_prompt_starts_from_bos_or_is_refused() {
    let out = tern(&["run", "-p", "", "-n", "3", "--temp", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // This tokenizer adds no BOS: nothing to start from.
    let model = repo("fuzz/seeds/gguf/ok-qwen2-q8_0-tied-bpe.gguf");
    assert_fails_with(
        &["run", "-m", model.to_str().unwrap(), "-p", ""],
        "the prompt is empty and no BOS token starts it (the model adds none",
    );
}

#[test]
fn a_kv_cache_larger_than_memory_is_refused_not_aborted() {
    // Heads of 1024 and a trained context of 2^24 in a 300 KB file: the full context needs
    // 256 GiB of KV cache, which once aborted the process when the allocation failed.
    let model = repo("fuzz/seeds/gguf/ok-llama-q4_0-heads-1024-context-2pow24.gguf");
    let model = model.to_str().unwrap();
    assert_fails_with(
        &["run", "-m", model, "-c", "16777216", "-p", "the", "-n", "1"],
        "the KV cache would take 274877906944 bytes, more than the machine's",
    );
    // The default context (the trained one, at most 4096 tokens) fits.
    let out = tern(&["run", "-m", model, "-p", "the", "-n", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs `tern` as a user the permission bits apply to: as root (which reads any file), as
/// `nobody` through `setpriv`. `None` when that cannot be arranged.
fn tern_without_privileges(args: &[&str], unreadable: &Path) -> Option<Output> {
    if std::fs::read(unreadable).is_err() {
        return Some(tern(args));
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(common::tern_binary())
        .args(args)
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .output()
        .ok()?;
    // setpriv itself failed (missing, or not allowed): no answer from tern to judge.
    (!stderr(&out).starts_with("setpriv")).then_some(out)
}

#[test]
fn unreadable_files_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let model = TempPath::with("unreadable.gguf", tern::bundled::STORIES260K_Q8_0);
    let prompt = TempPath::with("unreadable.txt", b"Once upon a time");
    for t in [&model, &prompt] {
        std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    for (args, needle) in [
        (
            vec!["inspect", model.str()],
            format!("cannot open model `{}`: Permission denied", model.str()),
        ),
        (
            vec!["run", "-f", prompt.str(), "-n", "1"],
            format!(
                "cannot read prompt file `{}`: Permission denied",
                prompt.str()
            ),
        ),
    ] {
        let Some(out) = tern_without_privileges(&args, &model.0) else {
            eprintln!("note: cannot drop root privileges here; unreadable files not tested");
            return;
        };
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(&needle),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn no_subcommand_prints_the_usage() {
    // Once only the help's first line, as if it were an error message.
    let out = tern(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in ["Usage:", "run", "inspect", "bench"] {
        assert!(err.contains(needle), "{needle:?} missing from {err:?}");
    }
}
