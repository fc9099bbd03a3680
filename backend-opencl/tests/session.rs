//! Whole models on the device against core's reference backend, step by step, and the
//! promise that makes replay worth it: once a step shape has run, running it again makes no
//! new batch, records no command buffer and allocates no device memory. Where the device has
//! usable command buffers, replaying them gives the very logits of enqueueing each kernel.
//!
//! The device computes in the reference's order and roundings (see tests/ops.rs), so every
//! step's logits must equal the reference's bit for bit, in every weight format and with
//! either cache type.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{kv_type, open_gpu, repo_file};
use tern_backend_opencl::{
    CommandBufferSupport, DeviceModel, DeviceSession, Gpu, KvFormat, NO_COMMAND_BUFFER_ENV,
};
use tern_core::gguf::Gguf;
use tern_core::kv::KvType;
use tern_core::model::ModelConfig;
use tern_core::plan::{LogitRows, Plan};
use tern_core::sample::argmax;
use tern_core::testing::whole_model::{
    ReferenceRun, assert_same_bits, check_bad_steps, fixture_paths, reference_step,
};

/// Feeds the reference's tokens on the device and compares every step's logits.
fn compare(path: &str, prompt: &[u32], f16_kv: bool) {
    let Some(gpu) = open_gpu() else { return };
    let bytes = repo_file(path);
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let format = if f16_kv { KvFormat::F16 } else { KvFormat::F32 };
    let n_ctx = 64;
    let run = ReferenceRun::new(&gguf, config, prompt, 12, kv_type(format), n_ctx);

    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 16, format).unwrap();
    let mut counts = None;
    for step in run.steps() {
        let i = step.index;
        let got = session.step(&step.plan, step.tokens, step.pos).unwrap();
        assert_same_bits(&format!("{path} ({format:?} KV): step {i}"), got, step.want);
        let g = model.gpu();
        let now = (
            g.allocations(),
            session.recorded_shapes(),
            g.command_buffers_recorded(),
        );
        match counts {
            // After the prompt and the first decode step, every shape has its batch.
            None if i == 1 => counts = Some(now),
            Some(before) => assert_eq!(
                now, before,
                "{path}: decode step {i} allocated device memory, made a batch or recorded a \
                 command buffer"
            ),
            None => {}
        }
    }
    assert_eq!(
        session.recorded_shapes(),
        2,
        "one prefill and one decode shape"
    );
    let g = model.gpu();
    let per_shape = usize::from(g.uses_command_buffers());
    assert_eq!(
        g.command_buffers_recorded(),
        2 * per_shape,
        "{path}: one command buffer per step shape where they are used, else none"
    );
}

#[test]
fn stories260k_matches_the_reference_and_decode_replays() {
    compare("models/stories260K-f32.gguf", &[1, 403, 261, 263], false);
    compare("models/stories260K-q8_0.gguf", &[1, 403, 261, 263], true);
}

/// Every fixture file (see [`fixture_paths`]), then one with an f32 cache.
#[test]
fn every_fixture_matches_the_reference_bit_for_bit() {
    for path in fixture_paths() {
        compare(&path, &[1, 2, 3, 4, 5], true);
    }
    compare(
        "testdata/fixtures/qwen2/qwen2-q4_k_m.gguf",
        &[7, 8, 9],
        false,
    );
}

/// A step that wants every row's logits and is larger than the session was sized for grows
/// the device buffers (recording anew) and still matches the reference.
#[test]
fn an_every_row_step_larger_than_the_batch_grows_the_buffers() {
    let Some(gpu) = open_gpu() else { return };
    let bytes = repo_file("testdata/fixtures/qwen2/qwen2-q4_1.gguf");
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let tokens = [1, 2, 3, 4, 5, 6];
    let n_ctx = 32;
    let plan = Plan::new(&config, tokens.len(), n_ctx, LogitRows::All).unwrap();
    let want = reference_step(&gguf, config, &plan, &tokens, KvType::F16);

    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 2, KvFormat::F16).unwrap();
    let small = session.step_bytes();
    let got = session.step(&plan, &tokens, 0).unwrap();
    assert_eq!(got.len(), tokens.len() * config.n_vocab);
    assert_same_bits("every row", got, &want);
    assert!(session.step_bytes() > small);
}

#[test]
fn bad_steps_are_errors_not_device_faults() {
    let Some(gpu) = open_gpu() else { return };
    let bytes = repo_file("models/stories260K-f32.gguf");
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, 8, 4, KvFormat::F32).unwrap();
    check_bad_steps(&config, 8, |plan, tokens, pos| {
        session.step(plan, tokens, pos).map(|_| ())
    });
}

/// Past about 90 positions some probabilities underflow ggml's `exp` into the subnormals
/// (and, for the oldest positions, to zero): a long decode stays on the reference's bits.
#[test]
fn a_long_decode_stays_on_the_reference() {
    let Some(gpu) = open_gpu() else { return };
    let bytes = repo_file("models/stories260K-f32.gguf");
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let n_ctx = 128;
    let run = ReferenceRun::new(&gguf, config, &[1], 120, KvType::F32, n_ctx);
    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 16, KvFormat::F32).unwrap();
    for step in run.steps() {
        let got = session.step(&step.plan, step.tokens, step.pos).unwrap();
        assert_same_bits(&format!("position {}", step.pos), got, step.want);
    }
}

/// The prompt's logits, then those of `n_decode` greedy steps, on `gpu`'s copy of
/// stories260K; the command buffers recorded on it, and how long the decode steps took.
fn stories_decode(
    mut gpu: Gpu,
    command_buffers: bool,
    n_decode: usize,
) -> (Vec<Vec<f32>>, usize, Duration) {
    let used = gpu.use_command_buffers(command_buffers);
    assert!(used || !command_buffers || !usable(&gpu));
    let bytes = repo_file("models/stories260K-f32.gguf");
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let n_ctx = n_decode + 8;
    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 8, KvFormat::F32).unwrap();
    let prompt = [1, 403, 261, 263];
    let plan = Plan::new(&config, prompt.len(), n_ctx, LogitRows::Last).unwrap();
    let mut all = vec![session.step(&plan, &prompt, 0).unwrap().to_vec()];
    let plan = Plan::new(&config, 1, n_ctx, LogitRows::Last).unwrap();
    let start = Instant::now();
    for i in 0..n_decode {
        let next = argmax(all.last().unwrap());
        all.push(
            session
                .step(&plan, &[next], prompt.len() + i)
                .unwrap()
                .to_vec(),
        );
    }
    let took = start.elapsed();
    (all, model.gpu().command_buffers_recorded(), took)
}

fn usable(gpu: &Gpu) -> bool {
    matches!(
        gpu.info().command_buffers,
        CommandBufferSupport::Usable { .. }
    )
}

/// Replaying command buffers runs the very kernels of one enqueue each, in the same order:
/// the logits agree bit for bit. Where the device has no usable command buffers both runs
/// take the fallback, which still must agree with itself.
#[test]
fn command_buffers_and_one_enqueue_per_kernel_give_the_same_logits() {
    let (Some(a), Some(b)) = (open_gpu(), open_gpu()) else {
        return;
    };
    let has = usable(&a);
    eprintln!(
        "{}: command buffers {:?}",
        a.info().name,
        a.info().command_buffers
    );
    let (replayed, recorded, _) = stories_decode(a, true, 24);
    let (enqueued, none, _) = stories_decode(b, false, 24);
    assert_eq!(recorded, if has { 2 } else { 0 }, "one per step shape");
    assert_eq!(none, 0, "command buffers turned off record none");
    assert_eq!(replayed.len(), enqueued.len());
    for (i, (r, e)) in replayed.iter().zip(&enqueued).enumerate() {
        assert_same_bits(&format!("step {i}: replayed against enqueued"), r, e);
    }
}

/// Set in the child process that runs [`no_command_buffer_child`].
const CHILD: &str = "TERN_OPENCL_NO_COMMAND_BUFFER_CHILD";

/// The variable is read when a device is opened, so the check runs in a child process of
/// this test binary with it set.
#[test]
fn the_variable_turns_command_buffers_off() {
    if open_gpu().is_none() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_command_buffer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(NO_COMMAND_BUFFER_ENV, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_command_buffer_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let gpu = open_gpu().expect("the parent opened this device");
    assert!(!gpu.uses_command_buffers());
    let has = usable(&gpu);
    let (_, recorded, _) = stories_decode(gpu, false, 2);
    assert_eq!(recorded, 0);
    // A device's own choice still overrides the variable.
    let (_, recorded, _) = stories_decode(open_gpu().unwrap(), true, 2);
    assert_eq!(recorded, if has { 2 } else { 0 });
}

/// 200 decode steps of stories260K replaying command buffers, then enqueueing each kernel:
/// a timing to read, not a check (`cargo test --release -p tern-backend-opencl --test
/// session -- --ignored --nocapture decode_timing`).
#[test]
#[ignore = "timing, not a check"]
fn decode_timing() {
    const STEPS: usize = 200;
    for round in 0..5 {
        for command_buffers in [true, false] {
            let Some(gpu) = open_gpu() else { return };
            let name = gpu.info().name.clone();
            let (_, recorded, took) = stories_decode(gpu, command_buffers, STEPS);
            eprintln!(
                "round {round}, {name}: {STEPS} decode steps, {recorded} command buffers: \
                 {:.1} ms, {:.1} us a step",
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() * 1e6 / STEPS as f64
            );
        }
    }
}
