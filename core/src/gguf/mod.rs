//! Zero-copy GGUF (versions 2 and 3) reader.
//!
//! A GGUF file is a 24-byte header (magic `GGUF`, version, tensor count, metadata count), the
//! metadata entries, the tensor infos, padding to `general.alignment` (default 32), and the
//! tensor data. All integers are little-endian; strings are a u64 length and UTF-8 bytes.
//!
//! [`Gguf::parse`] checks the whole file once, up front: every length, count, string, type,
//! shape, offset and size, so that a model loader never meets a malformed file half-way
//! through loading. It keeps no tables (there is no heap to keep them in), only the positions
//! of the sections; the accessors re-walk the validated bytes, which cannot fail. Lookups by
//! key or tensor name are therefore linear scans: cheap next to loading the data they lead to.
//!
//! Nothing here allocates, panics on bad input, or loops more often than the file has bytes:
//! every count is compared with the bytes left before the loop over it starts.

mod array;
mod cursor;
mod error;
mod metadata;
mod name;
mod read;
mod seen;
mod tensor_info;
mod value;

pub use array::{ArrayIter, ArrayValue, StringIter};
pub use error::{Count, GgufError, Location};
pub use metadata::MetadataIter;
pub use name::ShortName;
pub use read::MAX_ARRAY_DEPTH;
pub use tensor_info::{MAX_DIMS, TensorInfo, TensorIter};
pub use value::{Value, ValueType};

use cursor::Cursor;
use error::Fault;
use read::Check;
use seen::SeenFilter;
use tensor_info::RawTensorIter;

/// The first four bytes of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";

/// Data alignment when the file has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: usize = 32;

/// The metadata key that sets the data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";

/// A validated GGUF file, borrowing its bytes (typically a memory map).
#[derive(Clone, Copy)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    version: u32,
    alignment: usize,
    metadata_count: usize,
    metadata_start: usize,
    tensor_count: usize,
    tensors_start: usize,
    data_offset: usize,
}

impl<'a> Gguf<'a> {
    /// Validates the whole file and returns a view of it, or the first problem found.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, GgufError> {
        let mut cur = Cursor::new(bytes, 0);
        let header = |f: Fault| f.at(Location::Header);
        let found = cur.array::<4>().map_err(header)?;
        if found != MAGIC {
            return Err(GgufError::BadMagic { found });
        }
        let version = cur.u32().map_err(header)?;
        if !matches!(version, 2 | 3) {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let tensor_count_pos = cur.pos();
        let tensor_count = cur.u64().map_err(header)?;
        let metadata_count_pos = cur.pos();
        let metadata_count = cur.u64().map_err(header)?;

        // Reject impossible counts before looping over them.
        let metadata_count = fit_count(
            metadata_count,
            metadata::MIN_ENTRY_BYTES,
            cur.remaining(),
            Count::Metadata,
            metadata_count_pos,
        )?;
        let after_metadata = cur
            .remaining()
            .saturating_sub(metadata_count.saturating_mul(metadata::MIN_ENTRY_BYTES));
        fit_count(
            tensor_count,
            tensor_info::MIN_ENTRY_BYTES,
            after_metadata,
            Count::Tensors,
            tensor_count_pos,
        )?;

        let metadata_start = cur.pos();
        let alignment = validate_metadata(bytes, &mut cur, metadata_count)?;

        let tensors_start = cur.pos();
        let tensor_count = fit_count(
            tensor_count,
            tensor_info::MIN_ENTRY_BYTES,
            cur.remaining(),
            Count::Tensors,
            tensor_count_pos,
        )?;
        for index in 0..tensor_count {
            tensor_info::read_entry(&mut cur, index, alignment)?;
        }
        // Past the end only for a file that is too short anyway (reported per tensor below).
        let data_offset = cur
            .pos()
            .checked_next_multiple_of(alignment)
            .unwrap_or(usize::MAX);

        let gguf = Gguf {
            bytes,
            version,
            alignment,
            metadata_count,
            metadata_start,
            tensor_count,
            tensors_start,
            data_offset,
        };
        gguf.validate_tensor_data()?;
        Ok(gguf)
    }

    /// The format version the header states: 2 or 3 (the same little-endian layout).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of every tensor's data, in bytes.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// Absolute position of the tensor data section; tensor offsets are relative to it.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The tensor data section, up to the end of the file.
    pub fn data(&self) -> &'a [u8] {
        self.bytes.get(self.data_offset..).unwrap_or(&[])
    }

    /// Number of metadata entries the header states (all validated by [`Gguf::parse`]).
    pub fn metadata_count(&self) -> usize {
        self.metadata_count
    }

    /// Metadata entries in file order.
    pub fn metadata(&self) -> MetadataIter<'a> {
        MetadataIter::new(self.bytes, self.metadata_start, self.metadata_count)
    }

    /// The value of metadata `key` (keys are unique; parse rejects repeats).
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// `general.architecture`, which prefixes the model's hyperparameter keys.
    pub fn architecture(&self) -> Option<&'a str> {
        self.get("general.architecture")?.as_str()
    }

    /// Number of tensors the header states (all validated by [`Gguf::parse`]).
    pub fn tensor_count(&self) -> usize {
        self.tensor_count
    }

    /// Tensors in file order.
    pub fn tensors(&self) -> TensorIter<'a> {
        TensorIter::new(self.raw_tensors(), self.data())
    }

    /// The tensor called `name` (names are unique; parse rejects repeats).
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| t.name == name)
    }

    fn raw_tensors(&self) -> RawTensorIter<'a> {
        RawTensorIter::new(
            self.bytes,
            self.tensors_start,
            self.tensor_count,
            self.alignment,
        )
    }

    /// Checks what needs the data section's position: every tensor's data lies inside the
    /// file, no two tensors share a name or overlap.
    fn validate_tensor_data(&self) -> Result<(), GgufError> {
        let file_len = self.bytes.len();
        let data_len = file_len.saturating_sub(self.data_offset) as u64;
        let mut names = SeenFilter::new();
        // Writers lay data out in tensor order, so overlap is usually ruled out by comparing
        // with the furthest end so far; only out-of-order data needs the walk back.
        let mut max_end = 0u64;
        for (index, t) in self.raw_tensors().enumerate() {
            if names.insert(t.name.as_bytes())
                && self.raw_tensors().take(index).any(|u| u.name == t.name)
            {
                return Err(GgufError::DuplicateTensor {
                    tensor: t.short_name(),
                    pos: t.pos,
                });
            }
            if t.offset >= data_len {
                return Err(GgufError::TensorOffsetPastEnd {
                    tensor: t.short_name(),
                    offset: t.offset,
                    data_offset: self.data_offset,
                    file_len,
                    pos: t.offset_pos,
                });
            }
            let end = t.end().filter(|&end| end <= data_len).ok_or_else(|| {
                GgufError::TensorDataPastEnd {
                    tensor: t.short_name(),
                    offset: t.offset,
                    size: t.size,
                    data_offset: self.data_offset,
                    file_len,
                    pos: t.offset_pos,
                }
            })?;
            if t.offset < max_end {
                let overlapping = self
                    .raw_tensors()
                    .take(index)
                    .find(|u| u.offset < end && u.end().is_none_or(|u_end| t.offset < u_end));
                if let Some(u) = overlapping {
                    return Err(GgufError::TensorOverlap {
                        tensor: t.short_name(),
                        other: u.short_name(),
                        pos: t.offset_pos,
                    });
                }
            }
            max_end = max_end.max(end);
        }
        Ok(())
    }
}

/// `count` as usize when `available` bytes can hold that many entries of at least
/// `min_bytes` each.
fn fit_count(
    count: u64,
    min_bytes: usize,
    available: usize,
    what: Count,
    pos: usize,
) -> Result<usize, GgufError> {
    usize::try_from(count)
        .ok()
        .filter(|&n| n <= available / min_bytes)
        .ok_or(GgufError::CountTooLarge {
            at: Location::Header,
            what,
            pos,
            count,
            available,
        })
}

/// Validates `count` metadata entries at the cursor and returns the data alignment.
fn validate_metadata(bytes: &[u8], cur: &mut Cursor<'_>, count: usize) -> Result<usize, GgufError> {
    let start = cur.pos();
    let mut alignment = DEFAULT_ALIGNMENT;
    let mut keys = SeenFilter::new();
    for index in 0..count {
        let pos = cur.pos();
        let (key, value) = metadata::read_entry(cur, index, Check::Full)?;
        if keys.insert(key.as_bytes())
            && MetadataIter::new(bytes, start, index).any(|(k, _)| k == key)
        {
            return Err(GgufError::DuplicateKey {
                key: ShortName::new(key),
                pos,
            });
        }
        if key == ALIGNMENT_KEY {
            alignment = match value {
                Value::U32(a) if a.is_power_of_two() => {
                    usize::try_from(a).map_err(|_| GgufError::BadAlignment { alignment: a, pos })?
                }
                Value::U32(a) => return Err(GgufError::BadAlignment { alignment: a, pos }),
                other => {
                    return Err(GgufError::AlignmentNotU32 {
                        found: other.value_type(),
                        pos,
                    });
                }
            };
        }
    }
    Ok(alignment)
}

impl core::fmt::Debug for Gguf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Gguf")
            .field("len", &self.bytes.len())
            .field("version", &self.version)
            .field("metadata_count", &self.metadata_count)
            .field("tensor_count", &self.tensor_count)
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

#[cfg(test)]
mod tests;
