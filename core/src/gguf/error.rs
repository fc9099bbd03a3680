//! Everything that can be wrong with a GGUF file, and where.

use super::name::ShortName;
use super::value::ValueType;
use crate::dtype::DType;
use core::fmt;

/// The part of the file a structural error was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The fixed 24-byte header: magic, version and the two counts.
    Header,
    /// Metadata entry `index`; `key` is empty while the key itself is being read.
    Metadata {
        /// Index of the entry among the file's metadata entries, from 0.
        index: usize,
        /// The entry's key (its first bytes when it is long).
        key: ShortName,
    },
    /// Tensor info entry `index`; `name` is empty while the name itself is being read.
    TensorInfo {
        /// Index of the entry among the file's tensor infos, from 0.
        index: usize,
        /// The tensor's name (its first bytes when it is long).
        name: ShortName,
    },
}

impl Location {
    pub(crate) fn metadata(index: usize, key: &str) -> Location {
        Location::Metadata {
            index,
            key: ShortName::new(key),
        }
    }

    pub(crate) fn tensor_info(index: usize, name: &str) -> Location {
        Location::TensorInfo {
            index,
            name: ShortName::new(name),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Header => f.write_str("the header"),
            Location::Metadata { index, key } if key.is_empty() => {
                write!(f, "metadata entry {index}")
            }
            Location::Metadata { index, key } => write!(f, "metadata entry {index} ('{key}')"),
            Location::TensorInfo { index, name } if name.is_empty() => {
                write!(f, "tensor info {index}")
            }
            Location::TensorInfo { index, name } => write!(f, "tensor info {index} ('{name}')"),
        }
    }
}

/// Which count in the file claims more entries than the remaining bytes can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// The header's metadata (key/value) count.
    Metadata,
    /// The header's tensor count.
    Tensors,
    /// An array value's element count.
    ArrayElements,
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Count::Metadata => "metadata entry",
            Count::Tensors => "tensor",
            Count::ArrayElements => "array element",
        })
    }
}

/// Why a GGUF file was rejected. `pos` is always a byte position in the file; `offset` is a
/// tensor data offset as the file states it (relative to the data section).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufError {
    /// The first four bytes are not `GGUF`.
    BadMagic {
        /// The file's first four bytes.
        found: [u8; 4],
    },
    /// Only versions 2 and 3 (identical little-endian layouts) are read.
    UnsupportedVersion {
        /// The version the header states, read little-endian.
        version: u32,
    },
    /// The file ends inside a structure: `needed` bytes at `pos`, only `available` left.
    Truncated {
        /// The structure being read.
        at: Location,
        /// Byte offset in the file of the read that failed.
        pos: usize,
        /// Bytes the read needed.
        needed: u64,
        /// Bytes from `pos` to the end of the file.
        available: usize,
    },
    /// A count that the remaining `available` bytes cannot hold even at the smallest possible
    /// entry size; rejected before any loop runs over it.
    CountTooLarge {
        /// The structure the count belongs to: the header, or the entry holding the array.
        at: Location,
        /// Which count it is.
        what: Count,
        /// Byte offset in the file of the count.
        pos: usize,
        /// The count as the file states it.
        count: u64,
        /// Bytes left to hold the entries: after the count, less (for the tensor count) what
        /// the metadata entries take at their smallest.
        available: usize,
    },
    /// A string's length prefix (at `pos`) reaches past the end of the file.
    StringPastEnd {
        /// The entry the string belongs to.
        at: Location,
        /// Byte offset in the file of the length prefix.
        pos: usize,
        /// The string's length in bytes, as the prefix states it.
        len: u64,
        /// Bytes from just after the prefix to the end of the file.
        available: usize,
    },
    /// A string that is not UTF-8; `pos` is the first bad byte.
    InvalidUtf8 {
        /// The entry the string belongs to.
        at: Location,
        /// Byte offset in the file of the first byte that is not valid UTF-8.
        pos: usize,
    },
    /// A metadata value type id outside GGUF's 0..=12.
    UnknownValueType {
        /// The metadata entry being read.
        at: Location,
        /// Byte offset in the file of the type id.
        pos: usize,
        /// The type id as the file states it.
        type_id: u32,
    },
    /// A bool stored as a byte other than 0 or 1.
    InvalidBool {
        /// The metadata entry being read.
        at: Location,
        /// Byte offset in the file of the bool.
        pos: usize,
        /// The byte found there.
        byte: u8,
    },
    /// Arrays nested deeper than [`MAX_ARRAY_DEPTH`](super::MAX_ARRAY_DEPTH).
    ArrayTooDeep {
        /// The metadata entry being read.
        at: Location,
        /// Byte offset in the file of the array that nests one level too deep.
        pos: usize,
    },
    /// The same metadata key twice; `pos` is the second entry.
    DuplicateKey {
        /// The key (its first bytes when it is long).
        key: ShortName,
        /// Byte offset in the file of the second entry with that key.
        pos: usize,
    },
    /// `general.alignment` stored as something other than u32.
    AlignmentNotU32 {
        /// The type the value has instead.
        found: ValueType,
        /// Byte offset in the file of the `general.alignment` entry.
        pos: usize,
    },
    /// `general.alignment` zero or not a power of two.
    BadAlignment {
        /// The alignment the file states, in bytes.
        alignment: u32,
        /// Byte offset in the file of the `general.alignment` entry.
        pos: usize,
    },
    /// More than [`MAX_DIMS`](super::MAX_DIMS) dimensions.
    TooManyDims {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// The dimension count the file states.
        n_dims: u32,
        /// Byte offset in the file of the dimension count.
        pos: usize,
    },
    /// A zero dimension: the tensor would hold no data.
    ZeroDim {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// Which dimension is zero, in ggml order (0 is the row length).
        axis: usize,
        /// Byte offset in the file of that dimension.
        pos: usize,
    },
    /// The element count overflows (u64, i64 as ggml needs, or usize), or its byte size does.
    DimsOverflow {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// Byte offset in the file of the tensor's first dimension.
        pos: usize,
    },
    /// A `ggml_type` id Tern does not read (unknown, or known to ggml but unsupported).
    UnsupportedDType {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// The `ggml_type` id the file states.
        type_id: u32,
        /// Byte offset in the file of the type id.
        pos: usize,
    },
    /// The row length (`dims[0]`) is not a whole number of the type's blocks.
    RowNotWholeBlocks {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// Elements per row (`dims[0]`).
        row_len: u64,
        /// The tensor's type, whose block length does not divide `row_len`.
        dtype: DType,
        /// Byte offset in the file of the tensor's first dimension.
        pos: usize,
    },
    /// A tensor data offset that is not a multiple of the file's alignment.
    MisalignedTensor {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// The data offset as the file states it, in bytes from the data section's start.
        offset: u64,
        /// The file's alignment in bytes (`general.alignment`, else 32).
        alignment: usize,
        /// Byte offset in the file of the offset field.
        pos: usize,
    },
    /// A tensor whose data would start at or after the end of the file.
    TensorOffsetPastEnd {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// The data offset as the file states it, in bytes from the data section's start.
        offset: u64,
        /// Byte offset in the file where the data section starts.
        data_offset: usize,
        /// Length of the file in bytes.
        file_len: usize,
        /// Byte offset in the file of the offset field.
        pos: usize,
    },
    /// A tensor whose data starts inside the file but runs past its end (a truncated file, or
    /// dimensions too large for the data).
    TensorDataPastEnd {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// The data offset as the file states it, in bytes from the data section's start.
        offset: u64,
        /// Bytes of data the tensor's type and dimensions call for.
        size: usize,
        /// Byte offset in the file where the data section starts.
        data_offset: usize,
        /// Length of the file in bytes.
        file_len: usize,
        /// Byte offset in the file of the offset field.
        pos: usize,
    },
    /// The same tensor name twice; `pos` is the second entry.
    DuplicateTensor {
        /// The tensor's name (its first bytes when it is long).
        tensor: ShortName,
        /// Byte offset in the file of the second entry with that name.
        pos: usize,
    },
    /// Two tensors whose data ranges overlap.
    TensorOverlap {
        /// The name of the later tensor in the file (its first bytes when it is long).
        tensor: ShortName,
        /// The name of an earlier tensor whose data it overlaps.
        other: ShortName,
        /// Byte offset in the file of the later tensor's offset field.
        pos: usize,
    },
}

/// The name ggml gives a `ggml_type` id, to explain rejected ids; `None` when ggml has none.
fn ggml_type_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 40] = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0",
        "TQ2_0", "", "", "", "MXFP4",
    ];
    let name = *NAMES.get(usize::try_from(id).ok()?)?;
    (!name.is_empty()).then_some(name)
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError as E;
        match *self {
            E::BadMagic { found } => write!(
                f,
                "not a GGUF file: starts with b\"{}\" instead of b\"GGUF\"",
                found.escape_ascii()
            ),
            E::UnsupportedVersion { version } => {
                write!(
                    f,
                    "unsupported GGUF version {version}; Tern reads versions 2 and 3"
                )?;
                if matches!(version.swap_bytes(), 2 | 3) {
                    f.write_str(" (this looks like a big-endian file)")?;
                }
                Ok(())
            }
            E::Truncated {
                at,
                pos,
                needed,
                available,
            } => write!(
                f,
                "file truncated in {at}: {needed} bytes needed at byte {pos}, {available} left"
            ),
            E::CountTooLarge {
                at,
                what,
                pos,
                count,
                available,
            } => write!(
                f,
                "{what} count {count} at byte {pos} (in {at}) cannot fit in the {available} \
                 bytes that remain"
            ),
            E::StringPastEnd {
                at,
                pos,
                len,
                available,
            } => write!(
                f,
                "string length {len} at byte {pos} (in {at}) runs past the end of the file \
                 ({available} bytes left)"
            ),
            E::InvalidUtf8 { at, pos } => {
                write!(f, "invalid UTF-8 at byte {pos} in a string of {at}")
            }
            E::UnknownValueType { at, pos, type_id } => write!(
                f,
                "unknown metadata value type {type_id} at byte {pos} (in {at}); GGUF defines 0..=12"
            ),
            E::InvalidBool { at, pos, byte } => {
                write!(
                    f,
                    "bool byte {byte} at byte {pos} (in {at}) is neither 0 nor 1"
                )
            }
            E::ArrayTooDeep { at, pos } => write!(
                f,
                "arrays nested deeper than {} levels at byte {pos} (in {at})",
                super::MAX_ARRAY_DEPTH
            ),
            E::DuplicateKey { key, pos } => {
                write!(
                    f,
                    "metadata key '{key}' appears twice (again at byte {pos})"
                )
            }
            E::AlignmentNotU32 { found, pos } => write!(
                f,
                "general.alignment at byte {pos} is a {found}; GGUF requires a u32"
            ),
            E::BadAlignment { alignment, pos } => write!(
                f,
                "general.alignment {alignment} at byte {pos} is not a nonzero power of two"
            ),
            E::TooManyDims {
                tensor,
                n_dims,
                pos,
            } => write!(
                f,
                "tensor '{tensor}' has {n_dims} dimensions (byte {pos}); at most {} are allowed",
                super::MAX_DIMS
            ),
            E::ZeroDim { tensor, axis, pos } => {
                write!(
                    f,
                    "tensor '{tensor}' has size 0 in dimension {axis} (byte {pos})"
                )
            }
            E::DimsOverflow { tensor, pos } => write!(
                f,
                "tensor '{tensor}' (dimensions at byte {pos}) has more elements or bytes than \
                 can be addressed"
            ),
            E::UnsupportedDType {
                tensor,
                type_id,
                pos,
            } => match ggml_type_name(type_id) {
                Some(name) => write!(
                    f,
                    "tensor '{tensor}' has type {name} (ggml type {type_id}, byte {pos}), which \
                     Tern does not support"
                ),
                None => write!(
                    f,
                    "tensor '{tensor}' has unknown ggml type {type_id} (byte {pos})"
                ),
            },
            E::RowNotWholeBlocks {
                tensor,
                row_len,
                dtype,
                pos,
            } => write!(
                f,
                "tensor '{tensor}' (byte {pos}): row length {row_len} is not a multiple of the \
                 {dtype} block length {}",
                dtype.block_len()
            ),
            E::MisalignedTensor {
                tensor,
                offset,
                alignment,
                pos,
            } => write!(
                f,
                "tensor '{tensor}' data offset {offset} (byte {pos}) is not a multiple of the \
                 alignment {alignment}"
            ),
            E::TensorOffsetPastEnd {
                tensor,
                offset,
                data_offset,
                file_len,
                pos,
            } => write!(
                f,
                "tensor '{tensor}' data offset {offset} (byte {pos}) points past the end of the \
                 file: data section starts at byte {data_offset}, file is {file_len} bytes"
            ),
            E::TensorDataPastEnd {
                tensor,
                offset,
                size,
                data_offset,
                file_len,
                pos,
            } => write!(
                f,
                "tensor '{tensor}' (byte {pos}) needs {size} bytes at data offset {offset}, \
                 past the end of the file (data section starts at byte {data_offset}, file is \
                 {file_len} bytes): truncated file or wrong dimensions"
            ),
            E::DuplicateTensor { tensor, pos } => {
                write!(
                    f,
                    "tensor name '{tensor}' appears twice (again at byte {pos})"
                )
            }
            E::TensorOverlap { tensor, other, pos } => write!(
                f,
                "data of tensor '{tensor}' (byte {pos}) overlaps the data of tensor '{other}'"
            ),
        }
    }
}

/// A structural problem found by the low-level readers, which know positions but not which
/// entry they are reading; the entry's reader adds the [`Location`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Truncated {
        pos: usize,
        needed: u64,
        available: usize,
    },
    CountTooLarge {
        pos: usize,
        count: u64,
        available: usize,
    },
    StringPastEnd {
        pos: usize,
        len: u64,
        available: usize,
    },
    InvalidUtf8 {
        pos: usize,
    },
    UnknownValueType {
        pos: usize,
        type_id: u32,
    },
    InvalidBool {
        pos: usize,
        byte: u8,
    },
    ArrayTooDeep {
        pos: usize,
    },
}

impl Fault {
    /// The public error for this fault inside `at`.
    pub(crate) fn at(self, at: Location) -> GgufError {
        match self {
            Fault::Truncated {
                pos,
                needed,
                available,
            } => GgufError::Truncated {
                at,
                pos,
                needed,
                available,
            },
            Fault::CountTooLarge {
                pos,
                count,
                available,
            } => GgufError::CountTooLarge {
                at,
                what: Count::ArrayElements,
                pos,
                count,
                available,
            },
            Fault::StringPastEnd {
                pos,
                len,
                available,
            } => GgufError::StringPastEnd {
                at,
                pos,
                len,
                available,
            },
            Fault::InvalidUtf8 { pos } => GgufError::InvalidUtf8 { at, pos },
            Fault::UnknownValueType { pos, type_id } => {
                GgufError::UnknownValueType { at, pos, type_id }
            }
            Fault::InvalidBool { pos, byte } => GgufError::InvalidBool { at, pos, byte },
            Fault::ArrayTooDeep { pos } => GgufError::ArrayTooDeep { at, pos },
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn errors_stay_small() {
        // Returned by value from every parse; clippy's result_large_err limit is 128.
        assert!(core::mem::size_of::<GgufError>() <= 128);
    }

    #[test]
    fn messages_say_what_and_where() {
        let e = GgufError::UnsupportedVersion { version: 3 << 24 };
        assert!(e.to_string().contains("big-endian"));
        let e = GgufError::UnsupportedDType {
            tensor: ShortName::new("blk.0.ffn_up.weight"),
            type_id: 10,
            pos: 99,
        };
        let msg = e.to_string();
        assert!(msg.contains("Q2_K") && msg.contains("blk.0.ffn_up.weight") && msg.contains("99"));
        let e = Fault::Truncated {
            pos: 7,
            needed: 8,
            available: 3,
        }
        .at(Location::metadata(4, "general.name"));
        assert_eq!(
            e.to_string(),
            "file truncated in metadata entry 4 ('general.name'): 8 bytes needed at byte 7, 3 left"
        );
        let e = GgufError::BadMagic { found: *b"GG\0F" };
        assert!(e.to_string().contains("GG\\x00F"));
    }

    #[test]
    fn ggml_names_cover_known_ids() {
        assert_eq!(ggml_type_name(10), Some("Q2_K"));
        assert_eq!(ggml_type_name(30), Some("BF16"));
        assert_eq!(ggml_type_name(4), None);
        assert_eq!(ggml_type_name(1000), None);
    }
}
