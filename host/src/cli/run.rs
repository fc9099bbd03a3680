//! `tern run`: generation with streamed output and a line of timings.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tern::engine::{
    BackendKind, CacheStatus, Engine, EngineOptions, GenerateOptions, KvType, Tier,
    default_pack_cache_dir,
};
use tern::error::EngineError;
use tern::threads::MAX_THREADS;
use tern_core::sample::SamplerParams;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// GGUF model file [default: the bundled stories260K Q8_0 model]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Text to continue
    #[arg(short, long, default_value = "")]
    prompt: String,
    /// Read the prompt from this file instead (must be UTF-8)
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "prompt")]
    file: Option<PathBuf>,
    /// Most tokens to generate
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n_predict: usize,
    /// Sampling temperature; 0 picks the most likely token every time
    #[arg(long = "temp", default_value_t = 0.8)]
    temperature: f32,
    /// Keep only the K most likely tokens (0: all)
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches P (1: all)
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than P times the most likely one (0: none)
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Penalty for repeating recent tokens (1: none)
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Random seed [default: from the clock]
    #[arg(short, long)]
    seed: Option<u64>,
    /// Context size in tokens [default: the model's, at most 4096]
    #[arg(short = 'c', long = "ctx-size")]
    ctx_size: Option<usize>,
    /// Print where memory goes (weights, embeddings, KV cache, arena, process RSS) after
    /// loading and at the end
    #[arg(long)]
    memory_report: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// How the engine computes: options `run` and `bench` share.
#[derive(Args, Debug)]
pub(super) struct ComputeArgs {
    /// Most prompt tokens fed per step
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch_size: usize,
    /// Element type of the KV cache
    #[arg(long, value_enum, default_value_t = KvTypeArg::F16)]
    kv_type: KvTypeArg,
    /// Compute backend
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
    /// The GPU device, as `tern devices` numbers them for the backend [default: the first
    /// GPU; for `--backend vulkan|opencl` without a GPU, the first device of any kind]
    #[arg(long, value_name = "N")]
    device: Option<usize>,
    /// The OpenCL library to open, for boards whose driver ships no ICD loader (a vendor's
    /// libmali.so, libPVROCL.so) [default: $TERN_OPENCL_LIB, else libOpenCL.so.1, then the
    /// vendor libraries' usual names]
    #[arg(long, value_name = "PATH")]
    opencl_lib: Option<PathBuf>,
    /// On a GPU backend, trade the reference's bits for speed, within stated bounds:
    /// Vulkan multiplies Q4_0, Q8_0 and F16 matrices in f16 arithmetic where the device has
    /// shaderFloat16; OpenCL multiplies Q4_0, Q4_1 and Q8_0 matrices with work-group
    /// reductions over a planar weight layout
    #[arg(long, visible_alias = "gpu-f16")]
    gpu_fast: bool,
    /// Threads that compute [default: the number of physical cores]
    #[arg(short = 't', long, value_name = "N", value_parser = parse_threads)]
    threads: Option<usize>,
    /// Pin each thread to its own core (on a machine busy with other work, pinned threads
    /// cannot move to a free core and wait instead)
    #[arg(long)]
    pin: bool,
    /// Directory of caches: the first load of a model writes the CPU backend's repacked
    /// weights there (later loads map them instead of repacking), and the OpenCL backend its
    /// compiled programs (later starts skip the compiler) [default: $XDG_CACHE_HOME/tern,
    /// else ~/.cache/tern; packed weights only for model files of 64 MiB or more]
    #[arg(long, value_name = "DIR")]
    pack_cache: Option<PathBuf>,
    /// Repack the weights and compile the GPU programs on every load; read and write no
    /// cache
    #[arg(long, conflicts_with = "pack_cache")]
    no_pack_cache: bool,
    /// Where the embedding table lives: flash reads each token's row from the model file
    /// (the table never occupies memory), mapped reads rows in place from the mapped file
    /// (pages stay resident once touched), dram copies the table into memory [default:
    /// flash for a model file, mapped for the bundled model]
    #[arg(long, value_enum, value_name = "TIER")]
    embeddings: Option<TierArg>,
    /// Keep only the newest N positions of the KV cache in DRAM; older ones go to a spill
    /// file (see --kv-spill-dir) and are read back a layer ahead of attention [default: all
    /// in DRAM]
    #[arg(long, value_name = "N")]
    kv_dram_tokens: Option<usize>,
    /// Directory of KV spill files, deleted as they are made (on unix) [default: the
    /// packed-weight cache's default directory]
    #[arg(long, value_name = "DIR", requires = "kv_dram_tokens")]
    kv_spill_dir: Option<PathBuf>,
}

impl ComputeArgs {
    /// Engine options for `model` (`None`: the bundled one) with a context of `n_ctx`
    /// (`None`: the model's) fed `n_batch` tokens at a time.
    pub(super) fn options(
        &self,
        model: Option<&Path>,
        n_ctx: Option<usize>,
        n_batch: usize,
    ) -> EngineOptions {
        EngineOptions {
            n_ctx,
            n_batch,
            kv_type: self.kv_type.into(),
            backend: self.backend.into(),
            device: self.device,
            opencl_library: self.opencl_lib.clone(),
            gpu_fast: self.gpu_fast,
            threads: self.threads.unwrap_or(0),
            pin_threads: self.pin,
            pack_cache: self.pack_cache_dir(model),
            program_cache: self.program_cache_dir(),
            embeddings: self.embeddings.map(Tier::from),
            kv_dram_tokens: self.kv_dram_tokens,
            kv_spill_dir: self.kv_spill_dir.clone(),
        }
    }

    /// Where packed weights are cached: the directory given, none with `--no-pack-cache`,
    /// else the default directory for model files large enough that repacking them takes
    /// noticeable time (small ones repack faster than a cache file is checked).
    /// Where compiled GPU programs are kept: small, so always, unless caches are off.
    fn program_cache_dir(&self) -> Option<PathBuf> {
        match (self.no_pack_cache, &self.pack_cache) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => default_pack_cache_dir(),
        }
    }

    fn pack_cache_dir(&self, model: Option<&Path>) -> Option<PathBuf> {
        const WORTH_CACHING: u64 = 64 << 20;
        if self.no_pack_cache {
            return None;
        }
        if let Some(dir) = &self.pack_cache {
            return Some(dir.clone());
        }
        let size = std::fs::metadata(model?).ok()?.len();
        (size >= WORTH_CACHING)
            .then(default_pack_cache_dir)
            .flatten()
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum TierArg {
    Flash,
    Mapped,
    Dram,
}

impl From<TierArg> for Tier {
    fn from(arg: TierArg) -> Tier {
        match arg {
            TierArg::Flash => Tier::Flash,
            TierArg::Mapped => Tier::Mapped,
            TierArg::Dram => Tier::Dram,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum KvTypeArg {
    F32,
    F16,
}

impl From<KvTypeArg> for KvType {
    fn from(arg: KvTypeArg) -> KvType {
        match arg {
            KvTypeArg::F32 => KvType::F32,
            KvTypeArg::F16 => KvType::F16,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum BackendArg {
    /// Repacked weights and integer SIMD kernels for this CPU, on all threads
    Cpu,
    /// A Vulkan device: weights, KV cache and activations in device memory (see `tern
    /// devices`)
    Vulkan,
    /// An OpenCL device: weights, KV cache and activations in device memory (see `tern
    /// devices`)
    Opencl,
    /// A real GPU when one answers, through Vulkan, else OpenCL (never a CPU implementation
    /// such as lavapipe or PoCL), else the CPU
    Auto,
    /// The plain scalar backend every other backend is checked against
    Reference,
}

impl From<BackendArg> for BackendKind {
    fn from(arg: BackendArg) -> BackendKind {
        match arg {
            BackendArg::Cpu => BackendKind::Cpu,
            BackendArg::Vulkan => BackendKind::Vulkan,
            BackendArg::Opencl => BackendKind::OpenCl,
            BackendArg::Auto => BackendKind::Auto,
            BackendArg::Reference => BackendKind::Reference,
        }
    }
}

/// `-t N`: 0 means the default (physical cores); more than [`MAX_THREADS`] is refused.
pub(super) fn parse_threads(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a thread count"))?;
    if n > MAX_THREADS {
        return Err(format!("at most {MAX_THREADS} threads"));
    }
    Ok(n)
}

pub fn run(args: RunArgs) -> Result<(), EngineError> {
    let prompt = match &args.file {
        Some(path) => read_text(path, "prompt")?,
        None => args.prompt.clone(),
    };
    let sampler = SamplerParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        min_p: args.min_p,
        repeat_penalty: args.repeat_penalty,
        repeat_last_n: args.repeat_last_n,
        seed: args.seed.unwrap_or_else(clock_seed),
    };
    sampler
        .validate()
        .map_err(|e| EngineError::Option(e.to_string()))?;
    let options = args.compute.options(
        args.model.as_deref(),
        args.ctx_size,
        args.compute.batch_size,
    );
    let engine = load(args.model.as_deref(), options)?;
    let mut session = engine.session()?;
    if args.memory_report {
        eprint!("memory after loading:\n{}", session.memory_report());
    }
    let generate = GenerateOptions {
        max_tokens: args.n_predict,
        sampler,
    };
    let mut out = std::io::stdout().lock();
    // The prompt is echoed with the first generated text, so that a prompt the model
    // refuses (too long for the context) is not printed before its error.
    let mut echo = Some(prompt.as_bytes());
    let stats = session.generate(&prompt, &generate, |text| {
        let echoed = echo.take().map_or(Ok(()), |p| out.write_all(p));
        // A closed pipe (e.g. `| head`) ends generation quietly.
        match echoed
            .and_then(|()| out.write_all(text.as_bytes()))
            .and_then(|()| out.flush())
        {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })?;
    if let Some(prompt) = echo {
        let _ = out.write_all(prompt);
    }
    let _ = writeln!(out);
    eprintln!(
        "prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | backend {}, {} threads | stop: {:?}",
        stats.prompt_tokens,
        stats.prompt_tokens_per_second(),
        stats.generated.len(),
        stats.generated_tokens_per_second(),
        engine.backend_name(),
        engine.n_threads(),
        stats.stop,
    );
    if args.memory_report {
        eprint!("memory at the end:\n{}", session.memory_report());
    }
    Ok(())
}

/// Loads the model, with a spinner on a terminal when loading takes more than a moment.
pub fn load(
    model: Option<&std::path::Path>,
    options: EngineOptions,
) -> Result<Engine, EngineError> {
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} loading {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(model.map_or_else(
        || tern::bundled::NAME.to_string(),
        |p| p.display().to_string(),
    ));
    let started = Instant::now();
    spinner.enable_steady_tick(Duration::from_millis(250));
    let engine = match model {
        Some(path) => Engine::load(path, options),
        None => Engine::load_bundled(options),
    };
    spinner.finish_and_clear();
    let engine = engine?;
    let elapsed = started.elapsed();
    if elapsed > Duration::from_millis(500) {
        eprintln!("loaded {} in {:.2} s", engine.name(), elapsed.as_secs_f64());
    }
    say_load_status(&engine);
    Ok(engine)
}

/// One stderr line on what became of the packed-weight cache (a cache found and mapped goes
/// without saying, anything else is news), and one on why `--backend auto` chose the CPU.
pub(super) fn say_load_status(engine: &Engine) {
    match engine.pack_cache_status() {
        None | Some(CacheStatus::Mapped(_)) => {}
        Some(status) => eprintln!("{status}"),
    }
    if let Some(note) = engine.backend_note() {
        eprintln!("{note}");
    }
}

/// The largest text file read: more text than a context of 2^24 tokens (Tern's limit)
/// holds at ~4 bytes a token, and a bound on what `-f /dev/zero` can cost.
const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Reads the UTF-8 file `-f` names; `what` names it in errors ("prompt", "text").
pub(super) fn read_text(path: &std::path::Path, what: &str) -> Result<String, EngineError> {
    let cannot_read = |e: std::io::Error| {
        EngineError::Option(format!("cannot read {what} file `{}`: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(EngineError::Option(format!(
            "{what} file `{}` is larger than {} MiB",
            path.display(),
            MAX_TEXT_FILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        EngineError::Option(format!(
            "{what} file `{}` is not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
