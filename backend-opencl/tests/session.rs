//! Whole models on the device against core's reference backend, step by step, and the
//! promise that makes replay worth it: once a step shape has run, running it again makes no
//! new batch, records no command buffer and allocates no device memory. Where the device has
//! usable command buffers, replaying them gives the very logits of enqueueing each kernel.
//!
//! The device computes in the reference's order and roundings (see tests/ops.rs), so every
//! step's logits must equal the reference's bit for bit, in every weight format and with
//! either cache type.

use std::process::Command;
use std::time::{Duration, Instant};

use tern_backend_opencl::{
    CommandBufferSupport, DeviceModel, DeviceSession, Gpu, KvFormat, NO_COMMAND_BUFFER_ENV,
};
use tern_core::arena::Arena;
use tern_core::backend::Sequential;
use tern_core::backend::reference::Reference;
use tern_core::exec::Runner;
use tern_core::gguf::Gguf;
use tern_core::kv::{DenseKv, KvCache};
use tern_core::model::{Model, ModelConfig};
use tern_core::plan::{LogitRows, Plan};

/// Device `TERN_OPENCL_DEVICE` (else 0), or `None` with a notice where there is none and
/// `TERN_OPENCL_TESTS` is unset.
fn open_gpu() -> Option<Gpu> {
    let index = std::env::var("TERN_OPENCL_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let required = std::env::var_os("TERN_OPENCL_TESTS").is_some_and(|v| !v.is_empty() && v != "0");
    match Gpu::open(None, index) {
        Ok(g) => Some(g),
        Err(e) if required => panic!("TERN_OPENCL_TESTS is set but there is no device: {e}"),
        Err(e) => {
            eprintln!("skipping OpenCL test (set TERN_OPENCL_TESTS=1 to require a device): {e}");
            None
        }
    }
}

fn repo_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn rel_l2(a: &[f32], b: &[f32]) -> f32 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt() as f32
}

/// The reference backend's logits for a prompt (one step) then greedy decoding, and the
/// tokens it fed.
fn reference_run(
    gguf: &Gguf<'_>,
    config: ModelConfig,
    prompt: &[u32],
    n_decode: usize,
    f16_kv: bool,
    n_ctx: usize,
) -> (Vec<Vec<f32>>, Vec<u32>) {
    let model = Model::load(gguf, config, Vec::new(), |view, role| {
        tern_core::backend::Backend::prepare(&Reference, view, role)
    })
    .unwrap();
    let mut kv: Box<dyn KvCache> = if f16_kv {
        Box::new(DenseKv::<half::f16, _>::zeroed(config.n_layer, n_ctx, config.kv_width()).unwrap())
    } else {
        Box::new(DenseKv::<f32, _>::zeroed(config.n_layer, n_ctx, config.kv_width()).unwrap())
    };
    let mut runner = Runner {
        backend: &Reference,
        model: &model,
        parallel: &Sequential,
        embeddings: None,
    };
    let mut fed = prompt.to_vec();
    let mut all = Vec::new();
    let mut step = |tokens: &[u32], pos: usize, kv: &mut dyn KvCache| {
        let plan = Plan::new(&config, tokens.len(), n_ctx, LogitRows::Last).unwrap();
        let mut arena = vec![0u8; plan.arena_bytes() + Arena::ALIGN];
        runner
            .step(&plan, kv, Arena::new(&mut arena), tokens, pos)
            .unwrap()
            .to_vec()
    };
    all.push(step(prompt, 0, kv.as_mut()));
    for _ in 0..n_decode {
        let next = argmax(all.last().unwrap());
        let pos = fed.len();
        fed.push(next);
        all.push(step(&[next], pos, kv.as_mut()));
    }
    (all, fed)
}

/// The tokens and first position of step `i` of [`reference_run`]: the prompt, then one
/// fed token at a time.
fn step_input<'a>(prompt: &'a [u32], fed: &'a [u32], i: usize) -> (&'a [u32], usize) {
    if i == 0 {
        (prompt, 0)
    } else {
        let pos = prompt.len() + i - 1;
        (&fed[pos..pos + 1], pos)
    }
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Feeds the reference's tokens on the device and compares every step's logits.
fn compare(path: &str, prompt: &[u32], f16_kv: bool) {
    let Some(gpu) = open_gpu() else { return };
    let bytes = repo_file(path);
    let gguf = Gguf::parse(&bytes).unwrap();
    let config = ModelConfig::from_gguf(&gguf).unwrap();
    let n_ctx = 64;
    let n_decode = 12;
    let (want, fed) = reference_run(&gguf, config, prompt, n_decode, f16_kv, n_ctx);

    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let format = if f16_kv { KvFormat::F16 } else { KvFormat::F32 };
    let mut session = DeviceSession::new(&model, n_ctx, 16, format).unwrap();
    let mut counts = None;
    for (i, want) in want.iter().enumerate() {
        let (tokens, pos) = step_input(prompt, &fed, i);
        let plan = Plan::new(&config, tokens.len(), n_ctx, LogitRows::Last).unwrap();
        let got = session.step(&plan, tokens, pos).unwrap();
        if let Some(k) = (0..got.len()).find(|&k| got[k].to_bits() != want[k].to_bits()) {
            panic!(
                "{path} (f16 KV: {f16_kv}): step {i}, logit {k}: {} on the device, {} on \
                 the reference (row relative L2 {:e})",
                got[k],
                want[k],
                rel_l2(got, want)
            );
        }
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

/// Every fixture file: each weight format (Q5_0 and Q8_0 among them in the K-quant mixes),
/// both RoPE styles, biases, q/k norms, grouped heads.
#[test]
fn every_fixture_matches_the_reference_bit_for_bit() {
    for arch in ["llama", "qwen2", "qwen3"] {
        for kind in [
            "f32", "f16", "q8_0", "q4_0", "q4_1", "q4_k_m", "q5_k_m", "q6_k",
        ] {
            let path = format!("testdata/fixtures/{arch}/{arch}-{kind}.gguf");
            compare(&path, &[1, 2, 3, 4, 5], true);
        }
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
    let reference = Model::load(&gguf, config, Vec::new(), |view, role| {
        tern_core::backend::Backend::prepare(&Reference, view, role)
    })
    .unwrap();
    let mut kv = DenseKv::<half::f16, _>::zeroed(config.n_layer, n_ctx, config.kv_width()).unwrap();
    let mut arena = vec![0u8; plan.arena_bytes() + Arena::ALIGN];
    let want = Runner {
        backend: &Reference,
        model: &reference,
        parallel: &Sequential,
        embeddings: None,
    }
    .step(&plan, &mut kv, Arena::new(&mut arena), &tokens, 0)
    .unwrap()
    .to_vec();

    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 2, KvFormat::F16).unwrap();
    let small = session.step_bytes();
    let got = session.step(&plan, &tokens, 0).unwrap();
    assert_eq!(got.len(), tokens.len() * config.n_vocab);
    assert!(
        got.iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
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
    let plan = Plan::new(&config, 2, 8, LogitRows::Last).unwrap();
    let err = |r: Result<&mut [f32], tern_backend_opencl::DeviceStepError>| {
        r.map(|_| ()).unwrap_err().to_string()
    };
    assert!(
        err(session.step(&plan, &[1], 0)).contains("2"),
        "token count"
    );
    assert!(err(session.step(&plan, &[1, 999_999], 0)).contains("999999"));
    assert!(err(session.step(&plan, &[1, 2], 7)).contains("context"));
    // The session still works after refusing.
    assert!(session.step(&plan, &[1, 2], 0).is_ok());
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
    let (want, fed) = reference_run(&gguf, config, &[1], 120, false, n_ctx);
    let model = DeviceModel::load(gpu, &gguf, config).unwrap();
    let mut session = DeviceSession::new(&model, n_ctx, 16, KvFormat::F32).unwrap();
    for (pos, want) in want.iter().enumerate() {
        let plan = Plan::new(&config, 1, n_ctx, LogitRows::Last).unwrap();
        let got = session.step(&plan, &fed[pos..pos + 1], pos).unwrap();
        let same = got
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "position {pos}: {} on the device, {} on the reference",
            got[0], want[0]
        );
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
    for (i, (r, e)) in replayed.iter().zip(&enqueued).enumerate() {
        let same = r.iter().zip(e).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same,
            "step {i}: the two paths differ (relative L2 {:e})",
            rel_l2(r, e)
        );
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
