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
use std::sync::OnceLock;

use tern_core::cpu::{Cpu, CpuWeight};
use tern_core::gguf::Gguf;
use tern_core::model::{LayerWeights, Model, ModelConfig};
use tern_storage::pack_cache::{CacheError, CacheKey, PackCache, PackCacheWriter};

use super::backends::HostKernels;

/// What became of the cache on this load.
#[derive(Debug)]
pub enum CacheStatus {
    /// Weights mapped from this valid cache file.
    Mapped(PathBuf),
    /// No cache yet: weights packed and written here.
    Written(PathBuf),
    /// The file there could not be used (the reason); weights packed and written anew.
    Rebuilt {
        /// The cache file, now rewritten.
        path: PathBuf,
        /// Why the old file was refused.
        reason: String,
    },
    /// Weights packed in memory; the cache could not be written (the reason).
    NotWritten {
        /// Where the cache file would have gone.
        path: PathBuf,
        /// Why writing it failed.
        reason: String,
    },
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

/// The CPU backend's model, its weights borrowing the model file (and the packed-weight
/// cache).
pub(crate) type CpuModel<'a> = Model<CpuWeight<'a>, Vec<LayerWeights<CpuWeight<'a>>>>;

/// The key of `gguf`'s cache for `backend`: a hash of the whole model file.
pub(super) fn key(backend: &Cpu<HostKernels>, gguf: &Gguf<'_>) -> CacheKey {
    CacheKey::new(gguf.bytes(), &backend.packing())
}

/// A CPU model with its weights read from (or written to and read back from) the cache for
/// `key` in `dir`, and what happened. The cache the weights borrow goes into `mapped`, which
/// lives as long as the model file's bytes. `pack` loads the model packing in memory, as
/// without a cache.
pub(super) fn load<'a>(
    backend: &Cpu<HostKernels>,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    (dir, key): (&Path, CacheKey),
    mapped: &'a OnceLock<PackCache>,
    pack: impl FnOnce() -> Result<CpuModel<'a>, String>,
) -> Result<(CpuModel<'a>, CacheStatus), String> {
    let path = dir.join(key.file_name());
    let reason = match PackCache::open(&path, &key) {
        Ok(cache) => match adopt(backend, gguf, config, cache, mapped) {
            Some(model) => return Ok((model, CacheStatus::Mapped(path))),
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
        return Ok((packed, status));
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
        Ok(cache) => match adopt(backend, gguf, config, cache, mapped) {
            Some(model) => Ok((model, status)),
            None => Ok((packed, status)),
        },
        Err(e) => {
            let reason = format!("it does not read back: {e}");
            Ok((packed, CacheStatus::NotWritten { path, reason }))
        }
    }
}

/// The model read from `cache` once the cache is kept in `mapped`, or `None` (and `cache`
/// dropped) where it does not hold this model's weights.
fn adopt<'a>(
    backend: &Cpu<HostKernels>,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    cache: PackCache,
    mapped: &'a OnceLock<PackCache>,
) -> Option<CpuModel<'a>> {
    // Checked on a short borrow first (cheap: the weights only view the blobs), so a cache
    // that does not fit is not kept.
    from_cache(backend, gguf, config, &cache)?;
    mapped.set(cache).ok()?;
    from_cache(backend, gguf, config, mapped.get()?)
}

/// The model with every packed weight read in place from `cache`, or `None` where the cache
/// does not hold exactly this model's weights in this backend's layout.
fn from_cache<'a>(
    backend: &Cpu<HostKernels>,
    gguf: &Gguf<'a>,
    config: ModelConfig,
    cache: &'a PackCache,
) -> Option<CpuModel<'a>> {
    let mut next = 0;
    let model = Model::load(gguf, config, Vec::new(), |view, role| {
        let i = next;
        next += 1;
        if i >= cache.len() {
            return Err(());
        }
        backend.prepare_cached(view, role, cache.blob(i)).ok_or(())
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
