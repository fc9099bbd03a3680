//! The engine: a loaded model (file bytes, configuration, prepared weights, tokenizer) from
//! which sessions are made.

mod backends;
mod backing;
mod buffers;
mod chat;
mod model_bytes;
mod owned_session;
mod pack_cache;
mod session;
mod tiers;

pub use backends::{CpuDevice, DeviceList, cpu_device, list_devices};
pub use chat::{ChatOptions, ChatReply};
pub use model_bytes::ModelBytes;
pub use owned_session::OwnedSession;
pub use pack_cache::{CacheStatus, default_dir as default_pack_cache_dir};
pub use session::{GenerateOptions, GenerationStats, Session, StopReason};
pub use tern_core::kv::{KvType, KvTypes};
pub use tern_storage::Tier;
pub use tiers::FlashIo;

use std::fs::File;
use std::path::{Path, PathBuf};

use tern_core::backend::Parallel;
use tern_core::exec::{ExecError, Executor};
use tern_core::gguf::Gguf;
use tern_core::model::ModelConfig;

pub use backends::HostKernels;
use backends::LoadFailure;
use backing::{Backing, Loaded, LoadedModel};
use chat::ChatSetup;

use crate::chat::ChatTemplate;
use crate::error::EngineError;
use crate::threads::{MAX_THREADS, ThreadPool, physical_cores};
use crate::tokenizer::Tokenizer;

/// Which backend computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The CPU backend: repacked weights, integer kernels for this CPU, all threads.
    #[default]
    Cpu,
    /// The scalar reference backend: slow, plain, the oracle.
    Reference,
    /// A Vulkan device ([`EngineOptions::device`], else the first GPU, else the first
    /// device of any kind): weights, KV cache and activations in device memory.
    Vulkan,
    /// An OpenCL device ([`EngineOptions::device`], else the first GPU, else the first
    /// device of any kind) of the library [`EngineOptions::opencl_library`] names (else the
    /// usual names): weights, KV cache and activations in device memory.
    OpenCl,
    /// A real GPU when one answers, through Vulkan, else OpenCL (never a CPU implementation
    /// such as lavapipe or PoCL), else the CPU backend; [`Engine::backend_note`] says why
    /// the CPU was chosen.
    Auto,
}

/// How an engine loads a model and sizes its sessions.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Context length of sessions; `None` picks the model's trained context, capped at 4096.
    pub n_ctx: Option<usize>,
    /// Most tokens fed to the model in one step during prefill.
    pub n_batch: usize,
    /// Type of the KV cache's keys: f16 halves f32's memory, q8_0 takes 0.53 of f16's (the
    /// CPU backends read it with integer dot products). Not FP8, which keys cannot bear.
    pub cache_type_k: KvType,
    /// Type of the KV cache's values: as keys, or FP8 E4M3 (a quarter of f32's memory). The
    /// GPU backends keep keys and values of one type, f32 or f16.
    pub cache_type_v: KvType,
    /// Which backend computes.
    pub backend: BackendKind,
    /// The GPU device to use, as `tern devices` numbers them for the backend; `None` picks
    /// one.
    pub device: Option<usize>,
    /// The OpenCL library to open (a vendor's `libmali.so` on a board without an ICD
    /// loader); `None`: `TERN_OPENCL_LIB`, else the usual names.
    pub opencl_library: Option<PathBuf>,
    /// Trade the reference's bits for speed on a GPU backend: Vulkan multiplies Q4_0, Q8_0
    /// and F16 matrices in f16 arithmetic (W4A16) where the device has shaderFloat16;
    /// OpenCL multiplies Q4_0, Q4_1 and Q8_0 matrices with work-group reductions over a
    /// planar weight layout. Results stay within stated bounds of the reference's.
    pub gpu_fast: bool,
    /// Threads that compute, the caller's included; 0 picks the number of physical cores.
    pub threads: usize,
    /// Pin each worker thread to its own core: for a process that owns the machine.
    pub pin_threads: bool,
    /// Directory of packed-weight caches (CPU backend): the first load writes the repacked
    /// weights there, later loads map them instead of repacking. `None`: no cache.
    pub pack_cache: Option<PathBuf>,
    /// Directory of compiled GPU programs (OpenCL): the first start compiles and writes
    /// them there, later starts load them. `None`: compile on every start.
    pub program_cache: Option<PathBuf>,
    /// Where the embedding table lives: [`Tier::Flash`] reads each token's row from the
    /// model file, so the table never occupies memory; [`Tier::Mapped`] reads rows in place
    /// from the mapped file (pages stay resident once touched); [`Tier::Dram`] copies the
    /// table into memory. `None`: flash for a model loaded from a file, else mapped.
    pub embeddings: Option<Tier>,
    /// Keep only the newest this many positions of the KV cache in DRAM and spill older ones
    /// to a file in `kv_spill_dir`, prefetched a layer ahead. `None` keeps it all in DRAM.
    pub kv_dram_tokens: Option<usize>,
    /// Directory of KV spill files; `None`: the user's cache directory (see
    /// [`default_pack_cache_dir`]), else the system's temporary directory.
    pub kv_spill_dir: Option<PathBuf>,
}

impl EngineOptions {
    /// The KV cache's key and value types.
    pub fn kv_types(&self) -> KvTypes {
        KvTypes {
            keys: self.cache_type_k,
            values: self.cache_type_v,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            n_ctx: None,
            n_batch: 512,
            cache_type_k: KvType::default(),
            cache_type_v: KvType::default(),
            backend: BackendKind::default(),
            device: None,
            opencl_library: None,
            gpu_fast: false,
            threads: 0,
            pin_threads: false,
            pack_cache: None,
            program_cache: None,
            embeddings: None,
            kv_dram_tokens: None,
            kv_spill_dir: None,
        }
    }
}

/// A loaded model, ready to make sessions.
pub struct Engine {
    /// The model file's bytes, the parsed file and the backend's executor.
    model: LoadedModel,
    cache_status: Option<CacheStatus>,
    backend_note: Option<String>,
    embeddings: tiers::EmbeddingStore,
    tokenizer: Tokenizer,
    /// The template chats render with, and the tokens its replies end at.
    chat: ChatSetup,
    name: String,
    n_ctx: usize,
    options: EngineOptions,
    pool: ThreadPool,
}

impl Engine {
    /// Maps and loads the GGUF model at `path`.
    pub fn load(path: impl AsRef<Path>, options: EngineOptions) -> Result<Engine, EngineError> {
        let path = path.as_ref();
        let bytes = open_model(path)?;
        // A second handle for embedding rows read on demand.
        let file = File::open(path).map_err(|source| EngineError::Open {
            path: path.into(),
            source,
        })?;
        Engine::from_parts(bytes, Some(file), path.display().to_string(), options)
    }

    /// Loads the model compiled into the binary.
    pub fn load_bundled(options: EngineOptions) -> Result<Engine, EngineError> {
        Engine::from_bytes(
            ModelBytes::Static(crate::bundled::STORIES260K_Q8_0),
            crate::bundled::NAME.into(),
            options,
        )
    }

    /// Loads a model from bytes the engine will own; `name` labels messages.
    pub fn from_bytes(
        bytes: ModelBytes,
        name: String,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        Engine::from_parts(bytes, None, name, options)
    }

    /// Loads a model from its bytes and, where it came from a file, that file.
    fn from_parts(
        bytes: ModelBytes,
        file: Option<File>,
        name: String,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let model_err = |message: String| EngineError::Model {
            model: name.clone(),
            message,
        };
        let needs_cpu = check_options(&options)?;
        // What the load yields besides the borrowers, handed out of the closure.
        let mut tokenizer = None;
        let mut chat = None;
        let mut cache_status = None;
        let mut backend_note = None;
        let mut n_ctx = 0;
        let model = LoadedModel::try_new(Backing::new(bytes), |backing| {
            let gguf = Gguf::parse(backing.bytes()).map_err(|e| EngineError::Gguf {
                model: name.clone(),
                message: e.to_string(),
            })?;
            let config = ModelConfig::from_gguf(&gguf).map_err(|e| model_err(e.to_string()))?;
            let t = Tokenizer::from_gguf(&gguf).map_err(|source| EngineError::Tokenizer {
                model: name.clone(),
                source,
            })?;
            if t.n_vocab() != config.n_vocab {
                return Err(model_err(format!(
                    "the tokenizer has {} tokens, the model {}",
                    t.n_vocab(),
                    config.n_vocab
                )));
            }
            chat = Some(ChatSetup::new(ChatTemplate::from_gguf(&gguf, &name), &t));
            tokenizer = Some(t);
            n_ctx = context_size(&options, &config)?;
            check_kv_blocks(&options, &config).map_err(EngineError::Option)?;
            let chosen =
                backends::load(&options, needs_cpu, &gguf, config, backing).map_err(|failure| {
                    match failure {
                        LoadFailure::Model(message) => model_err(message),
                        LoadFailure::Backend(e) => EngineError::Backend(e),
                    }
                })?;
            cache_status = chosen.cache_status;
            backend_note = chosen.backend_note;
            Ok::<_, EngineError>(Loaded {
                gguf,
                executor: chosen.executor,
            })
        })?;
        let embeddings = {
            let (backing, loaded) = (model.borrow_owner(), model.borrow_dependent());
            match loaded.executor.embedding_table() {
                // The executor keeps its own copy (on a device).
                None => tiers::EmbeddingStore::Mapped,
                Some(table) => {
                    let default = if file.is_some() {
                        Tier::Flash
                    } else {
                        Tier::Mapped
                    };
                    let tier = options.embeddings.unwrap_or(default);
                    tiers::EmbeddingStore::new(tier, &table, backing.bytes(), file, |part| {
                        backing.release(part)
                    })?
                }
            }
        };
        let n_threads = match options.threads {
            0 => physical_cores(),
            n => n,
        };
        let pool = if options.pin_threads {
            ThreadPool::pinned(n_threads)
        } else {
            ThreadPool::new(n_threads)
        };
        let pool = pool
            .map_err(|e| EngineError::Option(format!("cannot start {n_threads} threads: {e}")))?;
        Ok(Engine {
            model,
            cache_status,
            backend_note,
            embeddings,
            tokenizer: tokenizer.expect("set by a successful load"),
            chat: chat.expect("set by a successful load"),
            name,
            n_ctx,
            options,
            pool,
        })
    }

    /// The loaded model's shape and hyperparameters, as its metadata gives them.
    pub fn config(&self) -> &ModelConfig {
        self.executor().config()
    }

    /// What became of the packed-weight cache on this load (`None` without one).
    pub fn pack_cache_status(&self) -> Option<&CacheStatus> {
        self.cache_status.as_ref()
    }

    /// Why `--backend auto` runs on the CPU (`None` when it did not, or was not asked).
    pub fn backend_note(&self) -> Option<&str> {
        self.backend_note.as_deref()
    }

    /// The weights by memory tier.
    pub fn memory(&self) -> crate::memory::EngineMemory {
        let w = self.executor().weight_memory();
        crate::memory::EngineMemory {
            weights_dram: w.dram,
            weights_mapped: w.mapped,
            weights_cached: w.cached,
            weights_device: w.device,
            embeddings: w.embeddings,
            embeddings_tier: self.embeddings.tier(),
        }
    }

    /// A session's source of embedding rows, `None` where the backend reads the table itself.
    fn row_source(&self) -> Result<Option<Box<dyn tiers::RowSource + '_>>, EngineError> {
        self.embeddings
            .row_source()
            .map_err(|source| EngineError::Open {
                path: self.name.clone().into(),
                source,
            })
    }

    /// Where sessions put their KV spill files.
    pub fn kv_spill_dir(&self) -> PathBuf {
        self.options
            .kv_spill_dir
            .clone()
            .or_else(pack_cache::default_dir)
            .unwrap_or_else(std::env::temp_dir)
    }

    /// The model's tokenizer, built from the file's metadata.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The parsed model file.
    pub fn gguf(&self) -> &Gguf<'_> {
        &self.model.borrow_dependent().gguf
    }

    /// How the model is named in messages (its path, or the bundled model's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Context length of this engine's sessions.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The options the engine was loaded with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Threads that compute, the caller's included.
    pub fn n_threads(&self) -> usize {
        self.pool.n_threads()
    }

    /// The threads that compute; sessions run their steps on it.
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// The backend that computes, with the CPU's instruction set: "cpu (x86-avx2)".
    pub fn backend_name(&self) -> String {
        self.executor().describe().into()
    }

    /// A fresh session (empty KV cache) over this model.
    pub fn session(&self) -> Result<Session<'_>, EngineError> {
        Session::new(self)
    }

    /// The model on the backend that computes.
    pub(crate) fn executor(&self) -> &dyn Executor {
        &*self.model.borrow_dependent().executor
    }
}

/// The KV cache types the GPU backends keep (keys and values of one of them).
const GPU_KV_TYPES: [KvType; 2] = [KvType::F32, KvType::F16];

/// Refuses a q8_0 half on a model whose heads are not whole q8_0 blocks: the blocks run along
/// each head, so a block would straddle two heads.
fn check_kv_blocks(options: &EngineOptions, config: &ModelConfig) -> Result<(), String> {
    let types = options.kv_types();
    for (half, t) in [("keys", types.keys), ("values", types.values)] {
        if config.head_dim % t.block_len() != 0 {
            return Err(format!(
                "a {t} cache needs heads of a multiple of {} elements; this model's are {} \
                 (use f16 or f32 for its {half})",
                t.block_len(),
                config.head_dim
            ));
        }
    }
    Ok(())
}

/// Checks the options that need no model, and names the option, if any, that only the CPU
/// backends serve (the memory tiers).
fn check_options(options: &EngineOptions) -> Result<Option<&'static str>, EngineError> {
    if options.n_batch == 0 {
        return Err(EngineError::Option(
            "the batch size must be positive".into(),
        ));
    }
    if options.threads > MAX_THREADS {
        return Err(EngineError::Option(format!(
            "{} threads is more than the {MAX_THREADS} allowed",
            options.threads
        )));
    }
    let kv_types = options.kv_types();
    if !kv_types.keys.holds_keys() {
        return Err(EngineError::Option(format!(
            "{} holds values only; keys take f32, f16 or q8_0",
            kv_types.keys
        )));
    }
    let gpu_kv = GPU_KV_TYPES.iter().any(|&t| KvTypes::same(t) == kv_types);
    let needs_cpu = if options.kv_dram_tokens.is_some() {
        Some("--kv-dram-tokens")
    } else if matches!(options.embeddings, Some(Tier::Flash | Tier::Dram)) {
        Some("--embeddings flash|dram")
    } else if !gpu_kv {
        Some("a KV cache of q8_0, fp8 or mixed types")
    } else {
        None
    };
    if options.gpu_fast && matches!(options.backend, BackendKind::Cpu | BackendKind::Reference) {
        return Err(EngineError::Option(
            "--gpu-fast applies to the GPU backends (--backend vulkan, opencl or auto)".into(),
        ));
    }
    let gpu = match options.backend {
        BackendKind::Vulkan => Some("Vulkan"),
        BackendKind::OpenCl => Some("OpenCL"),
        _ => None,
    };
    if let Some(backend) = gpu
        && !gpu_kv
    {
        let error = ExecError::KvTypes {
            backend,
            asked: kv_types,
            supported: &GPU_KV_TYPES,
        };
        return Err(EngineError::Option(error.to_string()));
    }
    if let (Some(gpu), Some(option)) = (gpu, needs_cpu) {
        return Err(EngineError::Option(format!(
            "{option} applies to the CPU backends; the {gpu} backend keeps the KV cache \
             and the embedding table in device memory"
        )));
    }
    Ok(needs_cpu)
}

/// The context size of sessions: the one asked for, else the model's trained context capped
/// at 4096.
fn context_size(options: &EngineOptions, config: &ModelConfig) -> Result<usize, EngineError> {
    match options.n_ctx {
        Some(0) => Err(EngineError::Option(
            "the context size must be positive".into(),
        )),
        Some(n) if n > config.n_ctx_train => Err(EngineError::Option(format!(
            "a context of {n} tokens exceeds the {} the model was trained for",
            config.n_ctx_train
        ))),
        Some(n) => Ok(n),
        None => Ok(config.n_ctx_train.min(4096)),
    }
}

/// Maps the model file at `path`, with errors that name it (and a directory, pipe or device
/// given for a file: opening a pipe would wait for a writer for ever).
pub fn open_model(path: &Path) -> Result<ModelBytes, EngineError> {
    let open_error = |source| EngineError::Open {
        path: path.into(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(open_error)?;
    if metadata.is_dir() {
        return Err(EngineError::IsDirectory { path: path.into() });
    }
    if !metadata.is_file() {
        return Err(EngineError::NotAFile { path: path.into() });
    }
    ModelBytes::open(path).map_err(open_error)
}
