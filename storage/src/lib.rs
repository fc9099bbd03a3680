//! tern-storage: where model bytes live, DRAM or flash ([`Tier`]).
//!
//! [`ReadAt`] is the one capability the engine needs from a storage tier: positioned reads
//! that do not disturb each other, so embedding rows or spilled KV blocks can be fetched on
//! demand. It builds on `embedded-io`'s error types and works without `std`, so firmware can
//! plug in a raw flash driver; [`FlashRows`] serves a model's embedding rows from any such
//! source, one row per token. With `std`, [`FileReader`] reads with `pread` and
//! [`MappedFile`] maps a file read-only so weights are paged in, not copied, and
//! [`pack_cache`] keeps a backend's repacked weights in a verified file to map on later loads.
//! On unix, [`spill_kv`] is a KV cache that keeps its newest positions in DRAM and the rest
//! in a file, prefetched a layer ahead.
#![cfg_attr(not(feature = "std"), no_std)]

mod flash_rows;
mod read_at;
mod slice;
mod tier;

#[cfg(feature = "std")]
mod file;
#[cfg(feature = "std")]
mod mmap;
#[cfg(feature = "std")]
pub mod pack_cache;
#[cfg(all(feature = "std", unix))]
pub mod spill_kv;

pub use flash_rows::{FlashRows, RowTable, RowTableError};
pub use read_at::{ReadAt, ReadExactAtError};
pub use slice::SliceReader;
pub use tier::Tier;

#[cfg(feature = "std")]
pub use file::FileReader;
#[cfg(feature = "std")]
pub use mmap::MappedFile;

#[cfg(all(test, feature = "std"))]
mod test_util;
