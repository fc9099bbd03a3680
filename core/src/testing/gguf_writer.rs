//! Writes GGUF files for tests and fuzz seeds, wrong ones included.
//!
//! A file is metadata entries and tensors, laid out as real files are: version 3, the tensor
//! infos padded to the alignment `general.alignment` sets (32 without it), then each
//! tensor's data padded to it. Everything else is written exactly as given, so a test can
//! declare keys, types, counts, shapes and offsets that contradict the bytes that follow.

use std::string::String;
use std::vec::Vec;

use crate::DType;
use crate::gguf::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC, ValueType};

/// One metadata value, or an element of an array.
#[derive(Clone, Debug, PartialEq)]
pub enum Meta {
    /// GGUF type 0.
    U8(u8),
    /// GGUF type 1.
    I8(i8),
    /// GGUF type 2.
    U16(u16),
    /// GGUF type 3.
    I16(i16),
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 5.
    I32(i32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 7, one byte.
    Bool(bool),
    /// GGUF type 8: a u64 length, then the bytes.
    Str(String),
    /// Elements are written as given, after `elem`'s id and their count: they need not be
    /// of type `elem`, and may be arrays themselves.
    Array {
        /// The element type the array declares.
        elem: ValueType,
        /// The elements, written one after the other.
        items: Vec<Meta>,
    },
    /// GGUF type 10.
    U64(u64),
    /// GGUF type 11.
    I64(i64),
    /// GGUF type 12.
    F64(f64),
    /// Any type id and any bytes: for values no valid writer produces.
    Raw {
        /// The type id written before the value.
        type_id: u32,
        /// The value's bytes, written as they are.
        bytes: Vec<u8>,
    },
}

impl Meta {
    /// A string value.
    pub fn str(s: &str) -> Meta {
        Meta::Str(s.into())
    }

    /// An array declaring elements of type `elem`, holding `items` as given.
    pub fn array(elem: ValueType, items: impl IntoIterator<Item = Meta>) -> Meta {
        let items = items.into_iter().collect();
        Meta::Array { elem, items }
    }

    /// An array of strings.
    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Meta {
        let items = items.into_iter().map(|s| Meta::str(s.as_ref()));
        Meta::array(ValueType::String, items)
    }

    /// An array of f32.
    pub fn f32s(items: impl IntoIterator<Item = f32>) -> Meta {
        Meta::array(ValueType::F32, items.into_iter().map(Meta::F32))
    }

    /// An array of i32.
    pub fn i32s(items: impl IntoIterator<Item = i32>) -> Meta {
        Meta::array(ValueType::I32, items.into_iter().map(Meta::I32))
    }

    /// The type id written before the value in a metadata entry.
    pub fn type_id(&self) -> u32 {
        let ty = match self {
            Meta::U8(_) => ValueType::U8,
            Meta::I8(_) => ValueType::I8,
            Meta::U16(_) => ValueType::U16,
            Meta::I16(_) => ValueType::I16,
            Meta::U32(_) => ValueType::U32,
            Meta::I32(_) => ValueType::I32,
            Meta::F32(_) => ValueType::F32,
            Meta::Bool(_) => ValueType::Bool,
            Meta::Str(_) => ValueType::String,
            Meta::Array { .. } => ValueType::Array,
            Meta::U64(_) => ValueType::U64,
            Meta::I64(_) => ValueType::I64,
            Meta::F64(_) => ValueType::F64,
            Meta::Raw { type_id, .. } => return *type_id,
        };
        ty.id()
    }

    /// The value's bytes, without its type id: how array elements are written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Meta::U8(v) => out.push(*v),
            Meta::I8(v) => out.extend(v.to_le_bytes()),
            Meta::U16(v) => out.extend(v.to_le_bytes()),
            Meta::I16(v) => out.extend(v.to_le_bytes()),
            Meta::U32(v) => out.extend(v.to_le_bytes()),
            Meta::I32(v) => out.extend(v.to_le_bytes()),
            Meta::F32(v) => out.extend(v.to_le_bytes()),
            Meta::Bool(v) => out.push(u8::from(*v)),
            Meta::Str(s) => write_string(out, s.as_bytes()),
            Meta::Array { elem, items } => {
                out.extend(elem.id().to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                items.iter().for_each(|item| item.write(out));
            }
            Meta::U64(v) => out.extend(v.to_le_bytes()),
            Meta::I64(v) => out.extend(v.to_le_bytes()),
            Meta::F64(v) => out.extend(v.to_le_bytes()),
            Meta::Raw { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// A tensor: its info as declared and the data written for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// The tensor's name as the info declares it.
    pub name: String,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    /// A [`DType`]'s id, or any number.
    pub type_id: u32,
    /// Written as given, whatever the declared shape needs: empty for an info with no data.
    pub data: Vec<u8>,
    /// Written instead of the offset where the data lies.
    pub offset: Option<u64>,
}

impl Tensor {
    /// A tensor of `dtype` holding `data`.
    pub fn new(name: &str, dims: &[u64], dtype: DType, data: Vec<u8>) -> Tensor {
        Tensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id: dtype as u32,
            data,
            offset: None,
        }
    }

    /// A tensor whose data is as long as its shape needs, every byte `byte`.
    pub fn filled(name: &str, dims: &[u64], dtype: DType, byte: u8) -> Tensor {
        let n = dims.iter().product::<u64>() as usize;
        let size = dtype.bytes_for(n).expect("whole blocks");
        Tensor::new(name, dims, dtype, std::vec![byte; size])
    }

    /// The same tensor, declaring its data at `offset` wherever the data lies.
    pub fn at(self, offset: u64) -> Tensor {
        Tensor {
            offset: Some(offset),
            ..self
        }
    }

    /// The tensor info entry, with `data_offset` unless an offset was declared.
    pub fn info_bytes(&self, data_offset: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, self.name.as_bytes());
        out.extend((self.dims.len() as u32).to_le_bytes());
        self.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
        out.extend(self.type_id.to_le_bytes());
        out.extend(self.offset.unwrap_or(data_offset).to_le_bytes());
        out
    }
}

/// A GGUF file under construction: build it with the methods that take `self`, change a
/// built one with those that take `&mut self`, or set the fields directly.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufWriter {
    /// The format version written after the magic (3 unless set).
    pub version: u32,
    /// In file order; keys are bytes so that they can be invalid UTF-8 (or repeat).
    pub metadata: Vec<(Vec<u8>, Meta)>,
    /// In file order: infos first, then each tensor's data.
    pub tensors: Vec<Tensor>,
    /// Written instead of the number of metadata entries.
    pub metadata_count: Option<u64>,
    /// Written instead of the number of tensors.
    pub tensor_count: Option<u64>,
}

impl Default for GgufWriter {
    fn default() -> GgufWriter {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
            metadata_count: None,
            tensor_count: None,
        }
    }
}

impl GgufWriter {
    /// An empty version 3 file.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// The same file, declaring `version`.
    pub fn version(self, version: u32) -> GgufWriter {
        GgufWriter { version, ..self }
    }

    /// The same file, declaring `count` metadata entries whatever it holds.
    pub fn metadata_count(self, count: u64) -> GgufWriter {
        GgufWriter {
            metadata_count: Some(count),
            ..self
        }
    }

    /// The same file, declaring `count` tensors whatever it holds.
    pub fn tensor_count(self, count: u64) -> GgufWriter {
        GgufWriter {
            tensor_count: Some(count),
            ..self
        }
    }

    /// Appends a metadata entry, even one whose key is already there.
    pub fn kv(mut self, key: impl AsRef<[u8]>, value: Meta) -> GgufWriter {
        self.metadata.push((key.as_ref().to_vec(), value));
        self
    }

    /// Appends `general.alignment` as a u32; the data is laid out at it when it is a power
    /// of two.
    pub fn alignment(self, alignment: u32) -> GgufWriter {
        self.kv(ALIGNMENT_KEY, Meta::U32(alignment))
    }

    /// Appends a tensor.
    pub fn tensor(mut self, tensor: Tensor) -> GgufWriter {
        self.tensors.push(tensor);
        self
    }

    /// Replaces the value of `key`, or appends it.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: Meta) {
        let key = key.as_ref();
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key.to_vec(), value)),
        }
    }

    /// Removes every entry of `key`.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.metadata.retain(|(k, _)| k != key.as_ref());
    }

    /// The first tensor named `name`.
    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// The data alignment: the first `general.alignment` that is a u32 power of two, else
    /// the default (a file declaring a bad one is laid out as if it had none).
    pub fn data_alignment(&self) -> usize {
        let key = ALIGNMENT_KEY.as_bytes();
        self.metadata
            .iter()
            .find_map(|(k, v)| match v {
                Meta::U32(a) if k == key && a.is_power_of_two() => Some(*a as usize),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The metadata entries as they follow the header.
    pub fn metadata_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend(value.type_id().to_le_bytes());
            value.write(&mut out);
        }
        out
    }

    /// The file: header, metadata, tensor infos, padding, each tensor's data and padding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let alignment = self.data_alignment();
        let tensor_count = self.tensor_count.unwrap_or(self.tensors.len() as u64);
        let metadata_count = self.metadata_count.unwrap_or(self.metadata.len() as u64);
        let mut out = MAGIC.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(tensor_count.to_le_bytes());
        out.extend(metadata_count.to_le_bytes());
        out.extend(self.metadata_bytes());
        let mut offset = 0;
        for t in &self.tensors {
            out.extend(t.info_bytes(offset as u64));
            offset = (offset + t.data.len()).next_multiple_of(alignment);
        }
        out.resize(out.len().next_multiple_of(alignment), 0);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            out.resize(out.len().next_multiple_of(alignment), 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u64_at(bytes: &[u8], pos: usize) -> u64 {
        u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap())
    }

    #[test]
    fn declared_header_fields_are_written_as_given() {
        let w = GgufWriter::new()
            .kv("a", Meta::U8(1))
            .version(7)
            .metadata_count(1 << 63)
            .tensor_count(5);
        let bytes = w.to_bytes();
        assert_eq!(bytes[..8], [b'G', b'G', b'U', b'F', 7, 0, 0, 0]);
        assert_eq!((u64_at(&bytes, 8), u64_at(&bytes, 16)), (5, 1 << 63));
        let entry = [1, 0, 0, 0, 0, 0, 0, 0, b'a', 0, 0, 0, 0, 1];
        assert_eq!(w.metadata_bytes(), entry);
        assert_eq!(bytes[24..38], entry);
        assert_eq!(bytes.len(), 64);
    }

    #[test]
    fn data_lies_at_the_alignment_and_declared_offsets_do_not_move_it() {
        let w = GgufWriter::new()
            .alignment(64)
            .tensor(Tensor::filled("a", &[4], DType::F32, 1))
            .tensor(Tensor::filled("b", &[4], DType::F32, 2).at(3));
        assert_eq!(w.data_alignment(), 64);
        let bytes = w.to_bytes();
        let infos_at = 24 + w.metadata_bytes().len();
        let infos = [w.tensors[0].info_bytes(0), w.tensors[1].info_bytes(64)].concat();
        assert_eq!(bytes[infos_at..infos_at + infos.len()], infos);
        assert_eq!(u64_at(&infos, infos.len() - 8), 3);
        let data = [
            [1; 16], [0; 16], [0; 16], [0; 16], [2; 16], [0; 16], [0; 16], [0; 16],
        ];
        let data_at = (infos_at + infos.len()).next_multiple_of(64);
        assert_eq!(bytes[data_at..], data.concat());
    }

    #[test]
    fn a_bad_alignment_is_written_but_not_followed() {
        for bad in [Meta::U32(48), Meta::U64(64), Meta::U32(0)] {
            let w = GgufWriter::new().kv(ALIGNMENT_KEY, bad);
            assert_eq!(w.data_alignment(), DEFAULT_ALIGNMENT);
        }
    }
}
