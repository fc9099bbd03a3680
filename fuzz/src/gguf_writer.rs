//! Writes GGUF files, including wrong ones: the seed corpora need both.
//!
//! Values are written exactly as given, so a caller can declare counts and types that
//! contradict the bytes that follow; tensors are laid out one after another at the alignment.

use tern_core::DType;
use tern_core::gguf::{DEFAULT_ALIGNMENT, MAGIC, ValueType};

/// One metadata value.
#[derive(Clone, Debug)]
pub enum Meta {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Bool(bool),
    Str(String),
    Strings(Vec<String>),
    F32s(Vec<f32>),
    I32s(Vec<i32>),
    /// Any type id followed by any bytes: for values no valid writer produces.
    Raw {
        type_id: u32,
        bytes: Vec<u8>,
    },
}

impl Meta {
    fn type_id(&self) -> u32 {
        let ty = match self {
            Meta::U32(_) => ValueType::U32,
            Meta::I32(_) => ValueType::I32,
            Meta::U64(_) => ValueType::U64,
            Meta::F32(_) => ValueType::F32,
            Meta::Bool(_) => ValueType::Bool,
            Meta::Str(_) => ValueType::String,
            Meta::Strings(_) | Meta::F32s(_) | Meta::I32s(_) => ValueType::Array,
            Meta::Raw { type_id, .. } => return *type_id,
        };
        ty.id()
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Meta::U32(v) => out.extend(v.to_le_bytes()),
            Meta::I32(v) => out.extend(v.to_le_bytes()),
            Meta::U64(v) => out.extend(v.to_le_bytes()),
            Meta::F32(v) => out.extend(v.to_le_bytes()),
            Meta::Bool(v) => out.push(u8::from(*v)),
            Meta::Str(s) => write_string(out, s.as_bytes()),
            Meta::Strings(items) => {
                write_array_header(out, ValueType::String, items.len());
                items.iter().for_each(|s| write_string(out, s.as_bytes()));
            }
            Meta::F32s(items) => {
                write_array_header(out, ValueType::F32, items.len());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
            Meta::I32s(items) => {
                write_array_header(out, ValueType::I32, items.len());
                items.iter().for_each(|v| out.extend(v.to_le_bytes()));
            }
            Meta::Raw { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn write_array_header(out: &mut Vec<u8>, elem: ValueType, len: usize) {
    out.extend(elem.id().to_le_bytes());
    out.extend((len as u64).to_le_bytes());
}

/// A tensor: its declared shape and type, and the bytes written for it.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    /// ggml order: `dims[0]` is the row length.
    pub dims: Vec<u64>,
    pub dtype: DType,
    pub data: Vec<u8>,
    /// Written instead of `dtype`'s id.
    pub raw_type: Option<u32>,
    /// Written instead of the offset where the data actually lies.
    pub raw_offset: Option<u64>,
}

impl Tensor {
    pub fn new(name: String, dims: Vec<u64>, dtype: DType, data: Vec<u8>) -> Tensor {
        Tensor {
            name,
            dims,
            dtype,
            data,
            raw_type: None,
            raw_offset: None,
        }
    }
}

/// A GGUF file under construction.
#[derive(Clone, Debug, Default)]
pub struct GgufWriter {
    pub metadata: Vec<(String, Meta)>,
    pub tensors: Vec<Tensor>,
}

impl GgufWriter {
    pub fn set(&mut self, key: &str, value: Meta) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.metadata.push((key.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// The file's bytes: header, metadata, tensor infos, padding, data (GGUF version 3).
    pub fn to_bytes(&self) -> Vec<u8> {
        let alignment = self
            .metadata
            .iter()
            .find_map(|(k, v)| match (k.as_str(), v) {
                ("general.alignment", Meta::U32(a)) if a.is_power_of_two() => Some(*a as usize),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT);
        let mut out = MAGIC.to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key.as_bytes());
            out.extend(value.type_id().to_le_bytes());
            value.write(&mut out);
        }
        let mut offset = 0usize;
        for t in &self.tensors {
            write_string(&mut out, t.name.as_bytes());
            out.extend((t.dims.len() as u32).to_le_bytes());
            t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(t.raw_type.unwrap_or(t.dtype as u32).to_le_bytes());
            out.extend(t.raw_offset.unwrap_or(offset as u64).to_le_bytes());
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
