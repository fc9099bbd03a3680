//! The Vulkan backend from the command line: device listing, the fallbacks when no driver
//! answers, the options it refuses, and agreement with the CPU on the bundled model.

#![cfg(feature = "vulkan")]

mod common;

use std::process::{Command, Output};

use common::*;

/// `tern` with no Vulkan driver in sight: the loader is pointed at a driver list that does
/// not exist (both the old and the new variable), so it finds no device.
fn tern_without_driver(args: &[&str]) -> Output {
    Command::new(common::tern_binary())
        .args(args)
        .env("VK_ICD_FILENAMES", "/nonexistent/tern-no-driver.json")
        .env("VK_DRIVER_FILES", "/nonexistent/tern-no-driver.json")
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("tern-test-cache"),
        )
        .output()
        .expect("run tern")
}

const PROMPT: [&str; 6] = ["-p", "Once upon a time", "-n", "12", "--temp", "0"];

fn run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(&PROMPT);
    args.extend_from_slice(extra);
    args
}

#[test]
fn without_a_driver_vulkan_is_a_clear_error() {
    let out = tern_without_driver(&run_args(&["--backend", "vulkan"]));
    let err = stderr(&out);
    assert!(!out.status.success());
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: Vulkan:"), "{err}");
    assert!(lines[0].contains("no Vulkan device"), "{err}");
    assert!(out.stdout.is_empty(), "nothing generated");
}

#[test]
fn without_a_driver_auto_runs_on_the_cpu_and_says_why() {
    let out = tern_without_driver(&run_args(&["--backend", "auto"]));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("running on the CPU"), "{err}");
    assert!(err.contains("backend cpu"), "{err}");
    let cpu = tern(&run_args(&["--backend", "cpu"]));
    assert_eq!(
        out.stdout, cpu.stdout,
        "auto's CPU fallback generates what cpu does"
    );
}

#[test]
fn without_a_driver_devices_says_so() {
    // The CPU is always there to list, and the listing says why Vulkan has no device.
    let out = tern_without_driver(&["devices"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("CPU (--backend cpu): "), "{said}");
    assert!(said.contains("Vulkan: none"), "{said}");
    assert!(said.contains("no Vulkan device"), "{said}");
}

#[test]
fn auto_never_takes_a_cpu_implementation_and_tiers_need_the_cpu() {
    // With lavapipe (CI) the only device is a CPU implementation: auto stays on the CPU.
    let out = tern(&run_args(&["--backend", "auto"]));
    assert!(out.status.success(), "{}", stderr(&out));
    if !backends().contains(&tern::engine::BackendKind::Vulkan) {
        return;
    }
    let devices = tern(&["devices"]);
    let listing = String::from_utf8_lossy(&devices.stdout).into_owned();
    assert!(devices.status.success(), "{}", stderr(&devices));
    let mut device_lines = listing.lines().filter(|l| l.starts_with("  "));
    if device_lines.all(|l| l.contains("CPU implementation")) {
        assert!(stderr(&out).contains("backend cpu"), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("a CPU implementation"),
            "{}",
            stderr(&out)
        );
    }
    assert_fails_with(
        &run_args(&["--backend", "vulkan", "--kv-dram-tokens", "4"]),
        "--kv-dram-tokens applies to the CPU backends",
    );
    let model = repo("models/stories260K-f32.gguf");
    assert_fails_with(
        &run_args(&[
            "-m",
            model.to_str().unwrap(),
            "--backend",
            "vulkan",
            "--embeddings",
            "flash",
        ]),
        "--embeddings flash|dram applies to the CPU backends",
    );
    // Auto with a CPU-only option does not try the device at all.
    let out = tern(&run_args(&["--backend", "auto", "--kv-dram-tokens", "4"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("--kv-dram-tokens needs a CPU backend"));
}

#[test]
fn vulkan_generates_what_the_cpu_does_and_lists_its_device() {
    if !backends().contains(&tern::engine::BackendKind::Vulkan) {
        return;
    }
    let devices = tern(&["devices"]);
    let listing = String::from_utf8_lossy(&devices.stdout).into_owned();
    // The CPU first, then Vulkan, the first API `--backend auto` tries.
    let after_cpu = listing.split_once('\n').map_or("", |(_, rest)| rest);
    assert!(listing.starts_with("CPU (--backend cpu): "), "{listing}");
    assert!(
        after_cpu.starts_with("Vulkan (--backend vulkan --device N):\n  0: "),
        "{listing}"
    );
    let vk = tern(&run_args(&[
        "--backend",
        "vulkan",
        "--device",
        "0",
        "--memory-report",
    ]));
    assert!(vk.status.success(), "{}", stderr(&vk));
    let err = stderr(&vk);
    assert!(err.contains("backend vulkan ("), "{err}");
    assert!(err.contains("in device memory"), "{err}");
    let cpu = tern(&run_args(&["--backend", "cpu"]));
    assert_eq!(vk.stdout, cpu.stdout);
    assert_fails_with(
        &run_args(&["--backend", "vulkan", "--device", "99"]),
        "no Vulkan device with index 99",
    );
    if listing.contains("shaderFloat16") {
        let f16 = tern(&run_args(&["--backend", "vulkan", "--gpu-fast"]));
        assert!(f16.status.success(), "{}", stderr(&f16));
        assert!(stderr(&f16).contains("f16 matmuls"), "{}", stderr(&f16));
        assert!(!err.contains("f16 matmuls"), "{err}");
    }
}

#[test]
fn gpu_fast_is_for_the_gpu() {
    for flag in ["--gpu-fast", "--gpu-f16"] {
        assert_fails_with(
            &run_args(&["--backend", "cpu", flag]),
            "--gpu-fast applies to the GPU backends",
        );
    }
}
