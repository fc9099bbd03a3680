//! The OpenCL backend from the command line: device listing, the fallbacks when no library
//! or driver answers, the options it refuses, and agreement with the CPU on the bundled
//! model.

#![cfg(feature = "opencl")]

mod common;

use std::process::{Command, Output};

use common::*;
use tern::engine::BackendKind;

/// `tern` with `env` set and no user cache.
fn tern_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::tern_binary());
    command.args(args).env(
        "XDG_CACHE_HOME",
        std::env::temp_dir().join("tern-test-cache"),
    );
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run tern")
}

/// The ICD loader pointed at a vendor directory that does not exist: the library opens
/// and finds no platform, as on a machine with no OpenCL driver.
const NO_DRIVER: [(&str, &str); 2] = [
    ("OCL_ICD_VENDORS", "/nonexistent/tern-no-opencl-vendors"),
    ("OPENCL_VENDOR_PATH", "/nonexistent/tern-no-opencl-vendors"),
];

/// No OpenCL library at all: the one named does not exist.
const NO_LIBRARY: [(&str, &str); 1] = [("TERN_OPENCL_LIB", "/nonexistent/libOpenCL.so.1")];

const PROMPT: [&str; 6] = ["-p", "Once upon a time", "-n", "12", "--temp", "0"];

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(&PROMPT);
    args.extend_from_slice(extra);
    args
}

/// One `error:` line holding `needle`, and nothing generated.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: OpenCL:"), "{err}");
    assert!(lines[0].contains(needle), "{err}");
    assert!(out.stdout.is_empty(), "nothing generated");
}

#[test]
fn without_a_library_or_driver_opencl_is_one_clear_line() {
    let out = tern_with(&run_args(&["--backend", "opencl"]), &NO_LIBRARY);
    assert_one_line_error(&out, "no OpenCL library (/nonexistent/libOpenCL.so.1");
    let out = tern_with(&run_args(&["--backend", "opencl"]), &NO_DRIVER);
    assert_one_line_error(&out, "no OpenCL device");
}

#[test]
fn a_library_path_that_is_not_there_is_one_clear_line() {
    let args = run_args(&["--backend", "opencl", "--opencl-lib", "/no/such.so"]);
    assert_one_line_error(&tern_with(&args, &[]), "/no/such.so");
    let args = run_args(&["--backend", "opencl", "--opencl-lib", "libc.so.6"]);
    assert_one_line_error(&tern_with(&args, &[]), "not an OpenCL 1.2 library");
}

#[test]
fn without_a_library_auto_runs_elsewhere_and_says_why() {
    let cpu = tern(&run_args(&["--backend", "cpu"]));
    for env in [&NO_LIBRARY[..], &NO_DRIVER[..]] {
        // No Vulkan driver either, so auto has only the CPU left.
        let mut env = env.to_vec();
        env.push(("VK_ICD_FILENAMES", "/nonexistent/tern-no-driver.json"));
        env.push(("VK_DRIVER_FILES", "/nonexistent/tern-no-driver.json"));
        let out = tern_with(&run_args(&["--backend", "auto"]), &env);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("OpenCL: no OpenCL"), "{err}");
        assert!(err.contains("running on the CPU"), "{err}");
        assert!(err.contains("backend cpu"), "{err}");
        assert_eq!(
            out.stdout, cpu.stdout,
            "auto's fallback generates what cpu does"
        );
    }
}

#[test]
fn options_the_opencl_backend_does_not_serve_are_refused() {
    assert_fails_with(
        &run_args(&["--backend", "opencl", "--kv-dram-tokens", "4"]),
        "--kv-dram-tokens applies to the CPU backends; the OpenCL backend",
    );
}

#[test]
fn opencl_generates_what_the_cpu_does_and_lists_its_device() {
    if !backends().contains(&BackendKind::OpenCl) {
        return;
    }
    let devices = tern(&["devices"]);
    let listing = String::from_utf8_lossy(&devices.stdout).into_owned();
    assert!(devices.status.success(), "{}", stderr(&devices));
    assert!(
        listing.contains("OpenCL (--backend opencl --device N):\n  0: "),
        "{listing}"
    );
    let cl = tern(&run_args(&[
        "--backend",
        "opencl",
        "--device",
        "0",
        "--memory-report",
    ]));
    let err = stderr(&cl);
    assert!(cl.status.success(), "{err}");
    assert!(err.contains("backend opencl ("), "{err}");
    assert!(err.contains("in device memory"), "{err}");
    let cpu = tern(&run_args(&["--backend", "cpu"]));
    assert_eq!(cl.stdout, cpu.stdout);
    // The fast matmuls stay within 5e-7 of the reference on this model (see
    // backend-opencl/tests/fast_model.rs): the same greedy story.
    let fast = tern(&run_args(&["--backend", "opencl", "--gpu-fast"]));
    assert!(fast.status.success(), "{}", stderr(&fast));
    assert!(stderr(&fast).contains("fast matmuls"), "{}", stderr(&fast));
    assert!(!err.contains("fast matmuls"), "{err}");
    assert_eq!(fast.stdout, cpu.stdout);
    assert_fails_with(
        &run_args(&["--backend", "opencl", "--device", "99"]),
        "no OpenCL device with index 99",
    );
}
