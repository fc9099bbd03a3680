//! Helpers shared by the whole-model tests: paths, a tiny .npy reader, and logit comparisons.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod pty;
pub mod smollm2;

use std::path::PathBuf;
use std::process::{Command, Output};

use tern::engine::{BackendKind, Engine, EngineOptions, KvType};

/// A path under the repository root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The `tern` binary, which a build without the `cli` feature lacks: its tests then fail
/// with this message rather than not compiling.
pub fn tern_binary() -> &'static str {
    match option_env!("CARGO_BIN_EXE_tern") {
        Some(path) => path,
        None => panic!("the tern binary needs the `cli` feature"),
    }
}

/// Runs the `tern` binary with `args`, its packed-weight caches in a scratch directory of
/// the system's temp dir rather than the user's cache.
pub fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("tern-test-cache"),
        )
        .output()
        .expect("run tern")
}

/// Runs `tern` with `args` and `input` on its standard input, caches as [`tern`] has them.
pub fn tern_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(tern_binary())
        .args(args)
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("tern-test-cache"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tern");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `tern` with `args`, asserts failure with a single `error:` line that contains
/// `needle`, and returns the output for further checks.
pub fn assert_fails_with(args: &[&str], needle: &str) -> Output {
    let out = tern(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} succeeded");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got {err:?}");
    assert!(lines[0].starts_with("error:"), "{args:?}: {err:?}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: {err:?} lacks {needle:?}"
    );
    out
}

/// The CPU backends, the default first: each must pass every whole-model test.
pub const CPU_BACKENDS: [BackendKind; 2] = [BackendKind::Cpu, BackendKind::Reference];

/// Every backend this build has and this machine runs: the CPU backends, and each GPU API
/// where a device answers. With `TERN_VULKAN_TESTS=1` or `TERN_OPENCL_TESTS=1` (as in CI,
/// which installs lavapipe, PoCL and rusticl) a missing device of that API fails the test
/// instead of leaving it out. `TERN_TEST_BACKENDS` (a comma-separated list of `--backend`
/// names) keeps only those, so a script can run the whole-model tests once per OpenCL
/// implementation without repeating the others.
pub fn backends() -> Vec<BackendKind> {
    let mut all = CPU_BACKENDS.to_vec();
    if gpu_device("Vulkan", "TERN_VULKAN_TESTS") {
        all.push(BackendKind::Vulkan);
    }
    if gpu_device("OpenCL", "TERN_OPENCL_TESTS") {
        all.push(BackendKind::OpenCl);
    }
    match std::env::var("TERN_TEST_BACKENDS") {
        Ok(only) if !only.is_empty() => {
            let names: Vec<&str> = only.split(',').map(str::trim).collect();
            all.retain(|b| names.contains(&backend_name(*b)));
            assert!(
                !all.is_empty(),
                "TERN_TEST_BACKENDS={only} keeps no backend"
            );
            all
        }
        _ => all,
    }
}

/// `backend`'s name on the command line.
pub fn backend_name(backend: BackendKind) -> &'static str {
    match backend {
        BackendKind::Cpu => "cpu",
        BackendKind::Reference => "reference",
        BackendKind::Vulkan => "vulkan",
        BackendKind::OpenCl => "opencl",
        BackendKind::Auto => "auto",
    }
}

/// Whether `api` (as `tern devices` names it) has a device; panics where it has none and
/// the environment variable `required` is set.
fn gpu_device(api: &'static str, required: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static FOUND: OnceLock<Mutex<HashMap<&'static str, Result<usize, String>>>> = OnceLock::new();
    let found = FOUND
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(api)
        .or_insert_with(|| {
            let lists = tern::engine::list_devices(None);
            match lists
                .into_iter()
                .find(|l| l.backend == api)
                .map(|l| l.devices)
            {
                Some(Ok(devices)) => Ok(devices.len()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err(format!("no {api} listing")),
            }
        })
        .clone();
    let required = std::env::var_os(required).is_some_and(|v| !v.is_empty() && v != "0");
    match found {
        Ok(n) if n > 0 => true,
        _ if required => panic!("a {api} device is required but: {found:?}"),
        _ => {
            eprintln!("no {api} device ({found:?}): {api} left out");
            false
        }
    }
}

/// Loads a model on the default backend with an f32 KV cache (the references keep f32 or f16
/// caches; f32 is exact).
pub fn load(path: &str) -> Engine {
    load_on(path, KvType::F32, BackendKind::default())
}

pub fn load_with_kv(path: &str, kv_type: KvType) -> Engine {
    load_on(path, kv_type, BackendKind::default())
}

/// Loads a model on `backend` with two threads, so thread splits are always exercised.
pub fn load_on(path: &str, kv_type: KvType, backend: BackendKind) -> Engine {
    let options = EngineOptions {
        cache_type_k: kv_type,
        cache_type_v: kv_type,
        backend,
        threads: 2,
        ..EngineOptions::default()
    };
    Engine::load(repo(path), options).unwrap_or_else(|e| panic!("{path} on {backend:?}: {e}"))
}

pub fn json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an id array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// A little-endian .npy array of f32 or i32, with its shape.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Npy {
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(*self.shape.last().unwrap())
    }
}

pub fn npy(path: &str) -> Npy {
    let bytes = std::fs::read(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}: not .npy");
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{path}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let body = &bytes[start + header_len..];
    let words = body.chunks_exact(4).map(|c| c.try_into().unwrap());
    let data: Vec<f32> = if header.contains("'<f4'") {
        words.map(f32::from_le_bytes).collect()
    } else if header.contains("'<i4'") {
        words.map(|w| i32::from_le_bytes(w) as f32).collect()
    } else {
        panic!("{path}: unsupported dtype in {header}")
    };
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{path}");
    Npy { shape, data }
}

pub fn npy_ids(path: &str) -> Vec<u32> {
    npy(path).data.iter().map(|&x| x as u32).collect()
}

/// ||a - b|| / ||b||.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f32 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt() as f32
}

pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn argmax(x: &[f32]) -> usize {
    tern_core::sample::argmax(x) as usize
}

/// Gap between the largest and second-largest value.
pub fn top2_margin(x: &[f32]) -> f32 {
    let mut v = x.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    v[0] - v[1]
}

/// The quantized-file rule: every row within `max_rel` row-relative L2 of the reference,
/// and the same argmax wherever the reference's top two differ by more than `margin`.
/// Returns the worst row error.
pub fn assert_close_rows(
    what: &str,
    ours: &[f32],
    reference: &Npy,
    max_rel: f32,
    margin: f32,
) -> f32 {
    let width = *reference.shape.last().unwrap();
    assert_eq!(ours.len(), reference.data.len(), "{what}: logit count");
    let mut worst = 0f32;
    for (p, (a, b)) in ours.chunks_exact(width).zip(reference.rows()).enumerate() {
        let err = rel_l2(a, b);
        worst = worst.max(err);
        assert!(
            err <= max_rel,
            "{what}: row {p} relative L2 {err} > {max_rel}"
        );
        if top2_margin(b) > margin {
            assert_eq!(argmax(a), argmax(b), "{what}: argmax differs at row {p}");
        }
    }
    worst
}
