//! What a session reads from tiers other than DRAM: embedding rows from flash (or a copy of
//! the table) and a KV cache that spills to a file. Each keeps the I/O error behind a failed
//! step so the engine's error says what the OS said.

use std::fs::File;
use std::io;
use std::path::Path;

use tern_core::exec::{EmbedError, EmbeddingRows, StepError};
use tern_core::kv::{
    DenseKv, KvCache, KvElement, KvError, KvTypes, WithKvTypes, storage_len, with_kv_types,
};
use tern_core::model::WeightView;
use tern_storage::spill_kv::{KvShape, SpillElement, SpillKv, SpillStats};
use tern_storage::{FileReader, FlashRows, ReadAt, RowTable, SliceReader, Tier};

use super::buffers::{check_fits, filled_vec};
use crate::error::EngineError;

/// Bytes a session has read from and written to flash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashIo {
    /// Embedding rows read on demand.
    pub embedding_bytes_read: u64,
    /// Spilled KV rows read back (prefetched or on demand).
    pub kv_bytes_read: u64,
    /// Spilled KV rows written to the spill file.
    pub kv_bytes_written: u64,
}

/// A session's source of embedding rows, with what it has read.
pub(super) trait RowSource: EmbeddingRows + Send {
    fn bytes_read(&self) -> u64;
    fn take_error(&mut self) -> Option<io::Error>;
}

impl<R, B> RowSource for FlashRows<R, B>
where
    R: ReadAt + Send,
    R::Error: std::error::Error + Send + Sync + 'static,
    B: AsMut<[u8]> + Send,
{
    fn bytes_read(&self) -> u64 {
        FlashRows::bytes_read(self)
    }

    fn take_error(&mut self) -> Option<io::Error> {
        FlashRows::take_error(self).map(io::Error::other)
    }
}

/// Rows of `table` read from `file` (its own handle) one token at a time.
fn flash_rows(file: &File, table: RowTable) -> io::Result<Box<dyn RowSource>> {
    let reader = FileReader::from_file(file.try_clone()?)?;
    let row = vec![0u8; table.row_bytes()];
    FlashRows::new(reader, table, row)
        .map(|rows| Box::new(rows) as Box<dyn RowSource>)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Rows of `table` decoded from a copy of it in memory.
fn dram_rows<'e>(copy: &'e [u8], table: RowTable) -> Box<dyn RowSource + 'e> {
    let row = vec![0u8; table.row_bytes()];
    let table = RowTable { offset: 0, ..table };
    // The copy was made from this very table, so its shape always fits.
    Box::new(FlashRows::new(SliceReader::new(copy), table, row).expect("a copy of the table"))
}

/// A session's KV cache: wholly in DRAM, or its older positions spilled to flash.
pub(super) enum SessionKv {
    Dram(Box<dyn KvCache + Send + Sync>),
    Spilled(Box<dyn Spilled>),
}

/// A spilling cache of any key and value types.
pub(super) trait Spilled: KvCache + Send + Sync {
    fn stats(&self) -> SpillStats;
    fn take_error(&mut self) -> Option<io::Error>;
}

impl<K: SpillElement, V: SpillElement> Spilled for SpillKv<K, V> {
    fn stats(&self) -> SpillStats {
        SpillKv::stats(self)
    }

    fn take_error(&mut self) -> Option<io::Error> {
        SpillKv::take_error(self)
    }
}

/// Where a session keeps its KV cache.
pub(super) struct KvPlan<'a> {
    pub kv_types: KvTypes,
    pub shape: KvShape,
    /// Positions to keep in DRAM; older ones go to a file in `spill_dir`.
    pub dram_tokens: Option<usize>,
    pub spill_dir: &'a Path,
}

impl SessionKv {
    pub fn new(plan: KvPlan<'_>) -> Result<SessionKv, EngineError> {
        with_kv_types(plan.kv_types, plan)
    }

    pub fn cache(&mut self) -> &mut dyn KvCache {
        match self {
            SessionKv::Dram(kv) => &mut **kv,
            SessionKv::Spilled(kv) => &mut **kv,
        }
    }

    /// Bytes in DRAM and on flash, for a cache of `types`.
    pub fn tiers(&self, types: KvTypes) -> (u64, u64) {
        match self {
            SessionKv::Dram(kv) => {
                let positions = kv.n_layer() * kv.n_ctx();
                ((positions * types.position_bytes(kv.width())) as u64, 0)
            }
            SessionKv::Spilled(kv) => {
                let s = kv.stats();
                (s.dram_bytes, s.flash_bytes)
            }
        }
    }

    pub fn io(&self) -> (u64, u64) {
        match self {
            SessionKv::Dram(_) => (0, 0),
            SessionKv::Spilled(kv) => {
                let s = kv.stats();
                (s.bytes_read, s.bytes_written)
            }
        }
    }

    fn take_error(&mut self) -> Option<io::Error> {
        match self {
            SessionKv::Dram(_) => None,
            SessionKv::Spilled(kv) => kv.take_error(),
        }
    }
}

/// Puts the I/O error a tier kept behind a step's error, so the message says what the OS said.
pub(super) fn explain(
    error: EngineError,
    kv: &mut SessionKv,
    rows: Option<&mut (dyn RowSource + '_)>,
    model: &str,
    spill_dir: &Path,
) -> EngineError {
    match error {
        EngineError::Step(StepError::Kv(KvError::Flash { layer })) => EngineError::KvFlash {
            layer,
            dir: spill_dir.to_path_buf(),
            source: kv
                .take_error()
                .unwrap_or_else(|| io::Error::other("no cause recorded")),
        },
        EngineError::Step(StepError::Embed(EmbedError { token })) => EngineError::EmbeddingRead {
            token,
            model: model.into(),
            source: rows
                .and_then(|r| r.take_error())
                .unwrap_or_else(|| io::Error::other("no cause recorded")),
        },
        other => other,
    }
}

/// Makes a plan's cache for its key and value element types.
impl WithKvTypes for KvPlan<'_> {
    type Out = Result<SessionKv, EngineError>;

    fn call<K: KvElement + Send + Sync + 'static, V: KvElement + Send + Sync + 'static>(
        self,
    ) -> Result<SessionKv, EngineError> {
        let KvShape {
            n_layer,
            n_ctx,
            width,
        } = self.shape;
        match self.dram_tokens {
            Some(n) if n < n_ctx => {
                let cache =
                    SpillKv::<K, V>::create(self.spill_dir, self.shape, n).map_err(|source| {
                        EngineError::KvSpill {
                            dir: self.spill_dir.to_path_buf(),
                            source,
                        }
                    })?;
                Ok(SessionKv::Spilled(Box::new(cache)))
            }
            _ => Ok(SessionKv::Dram(Box::new(dense_kv::<K, V>(
                n_layer, n_ctx, width,
            )?))),
        }
    }
}

/// A zeroed KV cache: its keys and values each as large as `n_layer * n_ctx` rows of
/// `width` elements say, which a file and a context size can make as large as they like.
fn dense_kv<K: KvElement, V: KvElement>(
    n_layer: usize,
    n_ctx: usize,
    width: usize,
) -> Result<DenseKv<K, Vec<K>, V, Vec<V>>, EngineError> {
    const WHAT: &str = "KV cache";
    let kv_error = |e| EngineError::Step(StepError::Kv(e));
    let too_big = EngineError::OutOfMemory {
        what: WHAT,
        bytes: usize::MAX,
    };
    let n_keys = storage_len::<K>(n_layer, n_ctx, width).map_err(kv_error)?;
    let n_values = storage_len::<V>(n_layer, n_ctx, width).map_err(kv_error)?;
    let (Some(n_keys), Some(n_values)) = (n_keys, n_values) else {
        return Err(too_big);
    };
    // Keys and values together must fit, not only each on its own.
    let bytes = n_keys
        .saturating_mul(size_of::<K>())
        .saturating_add(n_values.saturating_mul(size_of::<V>()));
    check_fits(bytes, WHAT)?;
    let keys = filled_vec(n_keys, WHAT)?;
    let values = filled_vec(n_values, WHAT)?;
    DenseKv::new(n_layer, n_ctx, width, keys, values).map_err(kv_error)
}

/// Where an engine keeps its embedding table, sessions' row sources made from it.
pub(super) enum EmbeddingStore {
    /// Read in place from the model's bytes by the backend.
    Mapped,
    /// Rows read from the model file on demand.
    Flash { file: File, table: RowTable },
    /// A copy of the table in the process's memory.
    Dram { copy: Vec<u8>, table: RowTable },
}

impl EmbeddingStore {
    /// Puts `view` (the table, inside `model_bytes`) in `tier`; `file` is the model file, if
    /// the model came from one. `release` lets the OS drop the table's mapped pages.
    pub fn new(
        tier: Tier,
        view: &WeightView<'_>,
        model_bytes: &[u8],
        file: Option<File>,
        release: impl Fn(&[u8]),
    ) -> Result<EmbeddingStore, EngineError> {
        let offset = (view.data.as_ptr() as usize).checked_sub(model_bytes.as_ptr() as usize);
        let table = |offset: usize| RowTable {
            offset: offset as u64,
            dtype: view.dtype,
            rows: view.rows,
            cols: view.cols,
        };
        match (tier, file, offset) {
            (Tier::Mapped, ..) => Ok(EmbeddingStore::Mapped),
            (Tier::Flash, Some(file), Some(offset)) => {
                release(view.data);
                Ok(EmbeddingStore::Flash {
                    file,
                    table: table(offset),
                })
            }
            (Tier::Flash, ..) => Err(EngineError::Option(
                "embeddings on flash need a model loaded from a file".into(),
            )),
            (Tier::Dram, ..) => {
                let mut copy = filled_vec::<u8>(view.data.len(), "embedding table")?;
                copy.copy_from_slice(view.data);
                release(view.data);
                Ok(EmbeddingStore::Dram {
                    copy,
                    table: table(0),
                })
            }
        }
    }

    pub fn tier(&self) -> Tier {
        match self {
            EmbeddingStore::Mapped => Tier::Mapped,
            EmbeddingStore::Flash { .. } => Tier::Flash,
            EmbeddingStore::Dram { .. } => Tier::Dram,
        }
    }

    /// A session's own row source; `None` for a table the backend reads in place.
    pub fn row_source(&self) -> io::Result<Option<Box<dyn RowSource + '_>>> {
        Ok(match self {
            EmbeddingStore::Mapped => None,
            EmbeddingStore::Flash { file, table } => Some(flash_rows(file, *table)?),
            EmbeddingStore::Dram { copy, table } => Some(dram_rows(copy, *table)),
        })
    }
}
