//! How the engine computes: the options `run`, `bench` and `perplexity` share (backend,
//! threads, batch, caches, memory tiers), and the engine options they make.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use tern::engine::{BackendKind, EngineOptions, KvType, Tier, default_pack_cache_dir};
use tern::threads::{MAX_THREADS, physical_cores};

/// How the engine computes: options `run`, `bench` and `perplexity` share.
#[derive(Args, Debug)]
pub(super) struct ComputeArgs {
    /// Most prompt tokens fed per step
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    pub batch_size: usize,
    /// Type of the KV cache's keys (llama.cpp's -ctk): q8_0 takes 0.53 of f16's memory
    /// [default: --kv-type, else f16]
    #[arg(long, value_enum, value_name = "TYPE")]
    cache_type_k: Option<KvTypeArg>,
    /// Type of the KV cache's values (llama.cpp's -ctv); fp8 (E4M3) is for values only
    /// [default: --kv-type, else f16]
    #[arg(long, value_enum, value_name = "TYPE")]
    cache_type_v: Option<KvTypeArg>,
    /// Type of the KV cache's keys and values both (--cache-type-k/-v set one half)
    #[arg(long, value_enum, value_name = "TYPE")]
    kv_type: Option<KvTypeArg>,
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
    #[arg(long, value_name = "N", value_parser = parse_kv_dram_tokens)]
    kv_dram_tokens: Option<usize>,
    /// Directory of KV spill files, deleted as they are made (on unix); it must exist, or
    /// its parent must (only the last component is created) [default: the packed-weight
    /// cache's default directory]
    #[arg(
        long,
        value_name = "DIR",
        requires = "kv_dram_tokens",
        value_parser = parse_spill_dir
    )]
    kv_spill_dir: Option<PathBuf>,
}

impl ComputeArgs {
    /// Engine options for `model` (`None`: the bundled one) with a context of `n_ctx`
    /// (`None`: the model's) fed `n_batch` tokens at a time. More threads than physical
    /// cores get a warning on stderr: they run, but usually slower than one per core.
    pub(super) fn options(
        &self,
        model: Option<&Path>,
        n_ctx: Option<usize>,
        n_batch: usize,
    ) -> EngineOptions {
        if let Some(threads) = self.threads {
            let cores = physical_cores();
            if threads > cores {
                eprintln!(
                    "warning: {threads} threads on {cores} physical cores; threads that share \
                     a core usually make each step slower"
                );
            }
        }
        EngineOptions {
            n_ctx,
            n_batch,
            cache_type_k: self
                .cache_type_k
                .or(self.kv_type)
                .map_or(KvType::F16, KvType::from),
            cache_type_v: self
                .cache_type_v
                .or(self.kv_type)
                .map_or(KvType::F16, KvType::from),
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

    /// Where compiled GPU programs are kept: small, so always, unless caches are off.
    fn program_cache_dir(&self) -> Option<PathBuf> {
        match (self.no_pack_cache, &self.pack_cache) {
            (true, _) => None,
            (false, Some(dir)) => Some(dir.clone()),
            (false, None) => default_pack_cache_dir(),
        }
    }

    /// Where packed weights are cached: the directory given, none with `--no-pack-cache`,
    /// else the default directory for model files large enough that repacking them takes
    /// noticeable time (small ones repack faster than a cache file is checked).
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
    #[value(name = "q8_0")]
    Q8_0,
    Fp8,
}

impl From<KvTypeArg> for KvType {
    fn from(arg: KvTypeArg) -> KvType {
        match arg {
            KvTypeArg::F32 => KvType::F32,
            KvTypeArg::F16 => KvType::F16,
            KvTypeArg::Q8_0 => KvType::Q8_0,
            KvTypeArg::Fp8 => KvType::Fp8,
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

/// `--kv-dram-tokens N`: 0 would promise that no position stays in DRAM, but the newest
/// ones always do (the spill cache keeps at least a block of them).
fn parse_kv_dram_tokens(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(0) => Err("at least 1: the newest positions always stay in DRAM".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a count of positions")),
    }
}

/// `--kv-spill-dir DIR`: an existing directory, or a new one in an existing directory, so
/// that a mistyped path does not grow a tree of directories.
fn parse_spill_dir(text: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(text);
    if dir.is_dir() {
        return Ok(dir);
    }
    if dir.exists() {
        return Err(format!("`{text}` is not a directory"));
    }
    let parent = match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return Err("not a directory path".into()),
    };
    match parent.is_dir() {
        true => Ok(dir),
        false => Err(format!(
            "no directory `{}`: only the last component of the path is created",
            parent.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_kv_dram_tokens, parse_spill_dir};

    #[test]
    fn a_spill_dir_needs_an_existing_parent() {
        let tmp = std::env::temp_dir();
        let tmp = tmp.to_str().unwrap();
        assert!(parse_spill_dir(tmp).is_ok());
        assert!(parse_spill_dir(&format!("{tmp}/tern-new-spill-dir")).is_ok());
        assert!(parse_spill_dir("relative-new-dir").is_ok());
        let err = parse_spill_dir(&format!("{tmp}/tern-no-such-parent/spill")).unwrap_err();
        assert!(err.contains("tern-no-such-parent`"), "{err}");
        let err = parse_spill_dir("/etc/passwd").unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn kv_dram_tokens_must_keep_a_position() {
        assert_eq!(parse_kv_dram_tokens("4"), Ok(4));
        assert!(
            parse_kv_dram_tokens("0")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(parse_kv_dram_tokens("-1").unwrap_err().contains("`-1`"));
    }
}
