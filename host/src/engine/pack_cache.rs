//! The packed-weight cache, engine side: the CPU backend's repacked weights are written to a
//! verified cache file once (`tern_storage::pack_cache`) and mapped on later loads, so they
//! are file-backed pages the OS can evict instead of anonymous memory, and a second load skips
//! the repacking.
//!
//! A cache that is missing, stale, corrupt or truncated is rebuilt; one that cannot be written
//! (read-only or missing directory, full disk) leaves the engine running on the weights it
//! packed in memory. Either way the outcome is one [`CacheStatus`] line for the user.

use std::fmt;
use std::path::{Path, PathBuf};

use tern_core::cpu::Cpu;
use tern_core::gguf::Gguf;
use tern_core::model::{Model, ModelConfig};
use tern_storage::pack_cache::{CacheError, CacheKey, PackCache, PackCacheWriter};

use super::compute::{CpuModel, HostKernels};

/// What became of the cache on this load.
#[derive(Debug)]
pub enum CacheStatus {
    /// Weights mapped from this valid cache file.
    Mapped(PathBuf),
    /// No cache yet: weights packed and written here.
    Written(PathBuf),
    /// The file there could not be used (the reason); weights packed and written anew.
    Rebuilt { path: PathBuf, reason: String },
    /// Weights packed in memory; the cache could not be written (the reason).
    NotWritten { path: PathBuf, reason: String },
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheStatus::Mapped(p) => write!(f, "packed weights mapped from {}", p.display()),
            CacheStatus::Written(p) => write!(f, "packed weights cached in {}", p.display()),
            CacheStatus::Rebuilt { path, reason } => write!(
                f,
                "packed-weight cache {} was unusable ({reason}); rebuilt it",
                path.display()
            ),
            CacheStatus::NotWritten { path, reason } => write!(
                f,
                "cannot write the packed-weight cache {} ({reason}); running without it",
                path.display()
            ),
        }
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/tern`, else `$HOME/.cache/tern`.
pub fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("tern"))
}

/// The key of `gguf`'s cache for `backend`: a hash of the whole model file.
pub(super) fn key(backend: &Cpu<HostKernels>, gguf: &Gguf<'_>) -> CacheKey {
    CacheKey::new(gguf.bytes(), &backend.packing())
}

/// A CPU model with its weights from (or written to) the cache for `key` in `dir`, the
/// mapped cache the weights borrow (kept alive by the engine for as long as the model), and
/// what happened. `pack` loads the model packing in memory, as without a cache.
pub(super) fn load(
    backend: &Cpu<HostKernels>,
    gguf: &Gguf<'static>,
    config: ModelConfig,
    (dir, key): (&Path, CacheKey),
    pack: impl FnOnce() -> Result<CpuModel, String>,
) -> Result<(CpuModel, Option<PackCache>, CacheStatus), String> {
    let path = dir.join(key.file_name());
    let reason = match PackCache::open(&path, &key) {
        Ok(cache) => match from_cache(backend, gguf, config, &cache) {
            Some(model) => return Ok((model, Some(cache), CacheStatus::Mapped(path))),
            None => Some("its weights do not fit this model".to_string()),
        },
        Err(CacheError::Missing) => None,
        Err(e) => Some(e.to_string()),
    };
    let packed = pack()?;
    if let Err(e) = write(dir, &path, &key, &packed) {
        let status = CacheStatus::NotWritten {
            path,
            reason: e.to_string(),
        };
        return Ok((packed, None, status));
    }
    // Map what was just written and let the packed copies go: from here on the weights are
    // file-backed, as on the next load.
    let status = match reason {
        Some(reason) => CacheStatus::Rebuilt {
            path: path.clone(),
            reason,
        },
        None => CacheStatus::Written(path.clone()),
    };
    match PackCache::open(&path, &key) {
        Ok(cache) => match from_cache(backend, gguf, config, &cache) {
            Some(model) => Ok((model, Some(cache), status)),
            None => Ok((packed, None, status)),
        },
        Err(e) => {
            let reason = format!("it does not read back: {e}");
            Ok((packed, None, CacheStatus::NotWritten { path, reason }))
        }
    }
}

/// The model with every packed weight read in place from `cache`, or `None` where the cache
/// does not hold exactly this model's weights in this backend's layout.
fn from_cache(
    backend: &Cpu<HostKernels>,
    gguf: &Gguf<'static>,
    config: ModelConfig,
    cache: &PackCache,
) -> Option<CpuModel> {
    let mut next = 0;
    let model = Model::load(gguf, config, Vec::new(), |view, role| {
        let i = next;
        next += 1;
        if i >= cache.len() {
            return Err(());
        }
        // SAFETY: the blob lives in `cache`'s mapping, which the engine keeps (declared after
        // the model it owns, so dropped after it) for as long as the model; the mapping never
        // moves or changes while it lives.
        let blob: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &[u8]>(cache.blob(i)) };
        backend.prepare_cached(view, role, blob).ok_or(())
    })
    .ok()?;
    (next == cache.len()).then_some(model)
}

/// Writes `model`'s packed weights as the cache file `path` (creating `dir`).
fn write(dir: &Path, path: &Path, key: &CacheKey, model: &CpuModel) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut writer = PackCacheWriter::create(path, key)?;
    for weight in model.weights() {
        writer.push(weight.packed.as_ref().map_or(&[][..], |p| p.bytes()))?;
    }
    writer.finish()
}
