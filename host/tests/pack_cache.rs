//! The packed-weight cache: weights mapped from it compute bit for bit what freshly packed
//! ones do, and every unusable cache (corrupt, truncated, stale, unwritable) is rebuilt or
//! done without, with a message, never trusted.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tern::engine::{BackendKind, CacheStatus, Engine, EngineOptions, KvType};

const MODELS: [&str; 3] = [
    "models/stories260K-q8_0.gguf",
    "testdata/fixtures/qwen2/qwen2-q4_k_m.gguf",
    "testdata/fixtures/llama/llama-q6_k.gguf",
];

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tern-pack-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_cached(model: &str, dir: &Path) -> Engine {
    let options = EngineOptions {
        cache_type_k: KvType::F16,
        cache_type_v: KvType::F16,
        threads: 2,
        pack_cache: Some(dir.to_path_buf()),
        ..EngineOptions::default()
    };
    Engine::load(repo(model), options).unwrap()
}

/// Teacher-forced logits over a few tokens: every weight is used.
fn logits(engine: &Engine) -> Vec<f32> {
    let tokens: Vec<u32> = (1..24)
        .map(|i| (i * 37) % engine.config().n_vocab as u32)
        .collect();
    engine.session().unwrap().eval_all(&tokens).unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// The single cache file in `dir`.
fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn mapped_weights_compute_the_same_bits() {
    for model in MODELS {
        let fresh = logits(&load_on(model, KvType::F16, BackendKind::Cpu));
        let dir = Scratch::new("same");
        let first = load_cached(model, &dir.0);
        assert!(
            matches!(first.pack_cache_status(), Some(CacheStatus::Written(_))),
            "{model}: {:?}",
            first.pack_cache_status()
        );
        // The first load already runs on the weights it wrote.
        assert_eq!(first.memory().weights_dram, 0, "{model}");
        assert!(same_bits(&logits(&first), &fresh), "{model}: first load");
        let second = load_cached(model, &dir.0);
        assert!(
            matches!(second.pack_cache_status(), Some(CacheStatus::Mapped(_))),
            "{model}: {:?}",
            second.pack_cache_status()
        );
        assert!(second.memory().weights_cached > 0);
        assert!(same_bits(&logits(&second), &fresh), "{model}: mapped");
    }
}

/// Damage the cache file in `how`, load, and expect a rebuild whose reason contains `says`.
fn rebuilt_after(name: &str, says: &str, how: impl Fn(&Path, Vec<u8>)) {
    let model = MODELS[1];
    let fresh = logits(&load_on(model, KvType::F16, BackendKind::Cpu));
    let dir = Scratch::new(name);
    drop(load_cached(model, &dir.0));
    let file = cache_file(&dir.0);
    how(&file, std::fs::read(&file).unwrap());
    let engine = load_cached(model, &dir.0);
    match engine.pack_cache_status() {
        Some(CacheStatus::Rebuilt { reason, .. }) => {
            assert!(reason.contains(says), "{name}: {reason}")
        }
        other => panic!("{name}: {other:?}"),
    }
    assert!(same_bits(&logits(&engine), &fresh), "{name}");
    // Rebuilt means usable again.
    let again = load_cached(model, &dir.0);
    assert!(
        matches!(again.pack_cache_status(), Some(CacheStatus::Mapped(_))),
        "{name}"
    );
}

#[test]
fn a_corrupt_cache_is_rebuilt() {
    rebuilt_after("corrupt", "corrupt", |file, mut bytes| {
        bytes[1000] ^= 0x40;
        std::fs::write(file, bytes).unwrap();
    });
}

#[test]
fn a_truncated_cache_is_rebuilt() {
    rebuilt_after("truncated", "truncated", |file, bytes| {
        std::fs::write(file, &bytes[..bytes.len() / 3]).unwrap();
    });
}

#[test]
fn a_stale_cache_is_rebuilt() {
    // Another model's cache under this model's name: a copy gone wrong.
    rebuilt_after("stale", "another model file or backend", |file, _| {
        let other = Scratch::new("stale-other");
        drop(load_cached(MODELS[2], &other.0));
        std::fs::copy(cache_file(&other.0), file).unwrap();
    });
}

#[test]
fn a_foreign_file_is_rebuilt() {
    rebuilt_after(
        "foreign",
        "not a Tern packed-weight cache",
        |file, bytes| {
            std::fs::write(file, vec![0x5a; bytes.len()]).unwrap();
        },
    );
}

#[test]
fn an_unwritable_cache_directory_runs_without_a_cache() {
    let model = MODELS[1];
    let fresh = logits(&load_on(model, KvType::F16, BackendKind::Cpu));
    let dir = Scratch::new("unwritable");
    // A regular file where the directory should be: nothing can be created below it.
    let not_a_dir = dir.0.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let engine = load_cached(model, &not_a_dir);
    match engine.pack_cache_status() {
        Some(CacheStatus::NotWritten { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(engine.memory().weights_dram > 0);
    assert!(same_bits(&logits(&engine), &fresh));
}

#[test]
fn the_cli_says_what_became_of_the_cache() {
    let dir = Scratch::new("cli");
    let model = repo(MODELS[0]);
    let (model, cache) = (model.to_str().unwrap(), dir.0.to_str().unwrap());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "-m", model, "-p", "Once", "-n", "4", "--temp", "0"];
        args.extend_from_slice(extra);
        let out = tern(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr(&out),
        )
    };
    let (text, err) = run(&["--pack-cache", cache]);
    assert!(err.contains("packed weights cached in"), "{err}");
    let (again, err) = run(&["--pack-cache", cache, "--memory-report"]);
    assert_eq!(again, text);
    assert!(!err.contains("packed weights cached"), "{err}");
    assert!(err.contains("mapped from the packed-weight cache"), "{err}");
    let (plain, err) = run(&["--no-pack-cache"]);
    assert_eq!(plain, text);
    assert!(!err.contains("cache"), "{err}");
    let file = dir.0.join("file");
    std::fs::write(&file, b"x").unwrap();
    let (_, err) = run(&["--pack-cache", file.to_str().unwrap()]);
    assert!(
        err.contains("cannot write the packed-weight cache"),
        "{err}"
    );
}

fn set_read_only(path: &Path, read_only: bool) {
    let mut permissions = std::fs::metadata(path).unwrap().permissions();
    permissions.set_readonly(read_only);
    std::fs::set_permissions(path, permissions).unwrap();
}

#[test]
fn a_read_only_cache_file_is_mapped_and_a_damaged_one_replaced() {
    let model = MODELS[1];
    let fresh = logits(&load_on(model, KvType::F16, BackendKind::Cpu));
    let dir = Scratch::new("read-only-file");
    drop(load_cached(model, &dir.0));
    let file = cache_file(&dir.0);
    set_read_only(&file, true);
    let engine = load_cached(model, &dir.0);
    assert!(
        matches!(engine.pack_cache_status(), Some(CacheStatus::Mapped(_))),
        "{:?}",
        engine.pack_cache_status()
    );
    assert!(same_bits(&logits(&engine), &fresh));
    drop(engine);

    // Damaged and still read-only: the rebuilt file replaces it (the directory is writable).
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[2000] ^= 0x01;
    set_read_only(&file, false);
    std::fs::write(&file, bytes).unwrap();
    set_read_only(&file, true);
    let engine = load_cached(model, &dir.0);
    assert!(
        matches!(
            engine.pack_cache_status(),
            Some(CacheStatus::Rebuilt { .. })
        ),
        "{:?}",
        engine.pack_cache_status()
    );
    assert!(same_bits(&logits(&engine), &fresh));
}

/// `/proc` takes no new files, whoever asks (permission bits would not stop a test run as
/// root): a cache directory that cannot be written means running without a cache.
#[cfg(target_os = "linux")]
#[test]
fn a_read_only_cache_directory_runs_without_a_cache() {
    let model = MODELS[1];
    let fresh = logits(&load_on(model, KvType::F16, BackendKind::Cpu));
    let engine = load_cached(model, Path::new("/proc"));
    match engine.pack_cache_status() {
        Some(CacheStatus::NotWritten { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("{other:?}"),
    }
    assert!(same_bits(&logits(&engine), &fresh));
    let out = tern(&[
        "run",
        "-m",
        repo(model).to_str().unwrap(),
        "-p",
        "Once",
        "-n",
        "2",
        "--pack-cache",
        "/proc",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write the packed-weight cache"),
        "{}",
        stderr(&out)
    );
}
