//! Whole-file tests on small synthesized GGUF files.

extern crate std;

use super::*;
use crate::dtype::DType;
use std::vec::Vec;

/// Writes GGUF files for tests, including wrong ones.
struct Builder {
    version: u32,
    alignment: usize,
    metadata: Vec<u8>,
    metadata_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data: Vec<u8>,
}

fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

fn array(elem: ValueType, len: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem.id().to_le_bytes().to_vec();
    v.extend(len.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

impl Builder {
    fn new() -> Builder {
        Builder {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            metadata_count: 0,
            infos: Vec::new(),
            tensor_count: 0,
            data: Vec::new(),
        }
    }

    fn kv(mut self, key: &[u8], ty: ValueType, value: &[u8]) -> Builder {
        self.metadata.extend(string(key));
        self.metadata.extend(ty.id().to_le_bytes());
        self.metadata.extend_from_slice(value);
        self.metadata_count += 1;
        self
    }

    fn alignment(mut self, a: u32) -> Builder {
        // Lay out with the default when the value is invalid; parse must reject it anyway.
        self.alignment = if a.is_power_of_two() {
            a as usize
        } else {
            DEFAULT_ALIGNMENT
        };
        self.kv(ALIGNMENT_KEY.as_bytes(), ValueType::U32, &a.to_le_bytes())
    }

    /// A tensor info with no data written for it.
    fn info(mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> Builder {
        self.infos.extend(string(name.as_bytes()));
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(type_id.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }

    /// A tensor whose data follows the previous one's, filled with its index byte.
    fn tensor(mut self, name: &str, dims: &[u64], dtype: DType) -> Builder {
        let n: u64 = dims.iter().product();
        let size = dtype.bytes_for(n as usize).unwrap();
        self.data
            .resize(self.data.len().next_multiple_of(self.alignment), 0);
        let offset = self.data.len() as u64;
        let fill = self.tensor_count as u8 + 1;
        self.data.resize(self.data.len() + size, fill);
        self.info(name, dims, dtype as u32, offset)
    }

    fn build(&self) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend(self.version.to_le_bytes());
        f.extend(self.tensor_count.to_le_bytes());
        f.extend(self.metadata_count.to_le_bytes());
        f.extend(&self.metadata);
        f.extend(&self.infos);
        f.resize(f.len().next_multiple_of(self.alignment), 0);
        f.extend(&self.data);
        f
    }
}

/// A file with every value type, nested arrays and three tensors.
fn rich() -> Builder {
    let mut strings = string(b"<unk>");
    strings.extend(string("▁the".as_bytes()));
    let mut nested = array(ValueType::U8, 2, &[1, 2]);
    nested.extend(array(ValueType::U8, 0, &[]));
    Builder::new()
        .kv(
            b"general.architecture",
            ValueType::String,
            &string(b"llama"),
        )
        .kv(b"u8", ValueType::U8, &[200])
        .kv(b"i8", ValueType::I8, &[0xff])
        .kv(b"u16", ValueType::U16, &500u16.to_le_bytes())
        .kv(b"i16", ValueType::I16, &(-500i16).to_le_bytes())
        .kv(b"u32", ValueType::U32, &70000u32.to_le_bytes())
        .kv(b"i32", ValueType::I32, &(-70000i32).to_le_bytes())
        .kv(b"f32", ValueType::F32, &1.5f32.to_le_bytes())
        .kv(b"bool", ValueType::Bool, &[1])
        .kv(b"u64", ValueType::U64, &(1u64 << 40).to_le_bytes())
        .kv(b"i64", ValueType::I64, &(-1i64).to_le_bytes())
        .kv(b"f64", ValueType::F64, &0.25f64.to_le_bytes())
        .kv(
            b"tokens",
            ValueType::Array,
            &array(ValueType::String, 2, &strings),
        )
        .kv(
            b"scores",
            ValueType::Array,
            &array(ValueType::F32, 2, &[0, 0, 128, 63, 0, 0, 0, 64]),
        )
        .kv(
            b"nested",
            ValueType::Array,
            &array(ValueType::Array, 2, &nested),
        )
        .tensor("token_embd.weight", &[32, 4], DType::Q8_0)
        .tensor("norm", &[8], DType::F32)
        .tensor("blk.0.w", &[256, 2], DType::Q4_K)
}

#[test]
fn parses_every_value_type() {
    let bytes = rich().build();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.metadata_count(), 15);
    assert_eq!(g.metadata().len(), 15);
    assert_eq!(g.architecture(), Some("llama"));
    assert!(matches!(g.get("u8"), Some(Value::U8(200))));
    assert!(matches!(g.get("i8"), Some(Value::I8(-1))));
    assert_eq!(g.get("u16").unwrap().as_u32(), Some(500));
    assert_eq!(g.get("i16").unwrap().as_i64(), Some(-500));
    assert_eq!(g.get("u32").unwrap().as_u64(), Some(70000));
    assert_eq!(g.get("i32").unwrap().as_i64(), Some(-70000));
    assert_eq!(g.get("f32").unwrap().as_f32(), Some(1.5));
    assert_eq!(g.get("bool").unwrap().as_bool(), Some(true));
    assert_eq!(g.get("u64").unwrap().as_u64(), Some(1 << 40));
    assert_eq!(g.get("i64").unwrap().as_u64(), None);
    assert!(matches!(g.get("f64"), Some(Value::F64(v)) if v == 0.25));
    assert!(g.get("missing").is_none());

    let tokens = g.get("tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.elem_type(), ValueType::String);
    assert_eq!(
        tokens.strings().unwrap().collect::<Vec<_>>(),
        ["<unk>", "▁the"]
    );
    let scores: Vec<f32> = g
        .get("scores")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f32().unwrap())
        .collect();
    assert_eq!(scores, [1.0, 2.0]);
    let nested = g.get("nested").unwrap().as_array().unwrap();
    let lens: Vec<usize> = nested.iter().map(|v| v.as_array().unwrap().len()).collect();
    assert_eq!(lens, [2, 0]);
}

#[test]
fn tensors_point_at_exactly_their_bytes() {
    let bytes = rich().build();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.tensor_count(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset() % 32, 0);
    let all: Vec<_> = g.tensors().collect();
    assert_eq!(all.len(), 3);
    for (i, t) in all.iter().enumerate() {
        assert_eq!(
            t.data.len(),
            t.dtype.bytes_for(t.n_elements() as usize).unwrap()
        );
        assert!(t.data.iter().all(|&b| b == i as u8 + 1), "{}", t.name);
        let start = g.data_offset() + t.offset as usize;
        assert_eq!(t.data.as_ptr(), bytes[start..].as_ptr());
    }
    let w = g.tensor("blk.0.w").unwrap();
    assert_eq!(
        (w.dtype, w.n_dims, w.dims),
        (DType::Q4_K, 2, [256, 2, 1, 1])
    );
    assert_eq!(w.data.len(), 2 * 144);
    assert!(g.tensor("blk.0").is_none());
}

#[test]
fn version_2_is_read_and_others_are_not() {
    let mut b = rich();
    b.version = 2;
    assert!(Gguf::parse(&b.build()).is_ok());
    for version in [0, 1, 4, 3 << 24] {
        b.version = version;
        assert_eq!(
            Gguf::parse(&b.build()).unwrap_err(),
            GgufError::UnsupportedVersion { version }
        );
    }
}

#[test]
fn an_empty_file_body_is_valid() {
    let bytes = Builder::new().build();
    assert_eq!(bytes.len(), 32);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(
        (g.metadata_count(), g.tensor_count(), g.data_offset()),
        (0, 0, 32)
    );
    assert!(g.data().is_empty());
    // Without the padding too.
    let g = Gguf::parse(&bytes[..24]).unwrap();
    assert_eq!(g.tensors().count(), 0);
}

#[test]
fn custom_alignment_is_applied() {
    let bytes = Builder::new()
        .alignment(64)
        .tensor("a", &[4], DType::F32)
        .tensor("b", &[4], DType::F32)
        .build();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("b").unwrap().offset, 64);
}

#[test]
fn bad_alignments_are_rejected() {
    for a in [0, 3, 48] {
        let bytes = Builder::new().alignment(a).build();
        assert!(
            matches!(
                Gguf::parse(&bytes),
                Err(GgufError::BadAlignment { alignment, pos: 24 }) if alignment == a
            ),
            "{a}"
        );
    }
    let bytes = Builder::new()
        .kv(
            ALIGNMENT_KEY.as_bytes(),
            ValueType::U64,
            &32u64.to_le_bytes(),
        )
        .build();
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        GgufError::AlignmentNotU32 {
            found: ValueType::U64,
            pos: 24
        }
    );
}

#[test]
fn duplicates_are_rejected() {
    let bytes = Builder::new()
        .kv(b"a", ValueType::U8, &[1])
        .kv(b"b", ValueType::U8, &[1])
        .kv(b"a", ValueType::U8, &[2])
        .build();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::DuplicateKey { key, pos }) if key == "a" && pos == 24 + 2 * 14
    ));
    let bytes = Builder::new()
        .tensor("w", &[8], DType::F32)
        .tensor("v", &[8], DType::F32)
        .tensor("w", &[8], DType::F32)
        .build();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::DuplicateTensor { tensor, .. }) if tensor == "w"
    ));
}

#[test]
fn overlapping_data_is_rejected_and_out_of_order_data_is_not() {
    let parse = |b: Builder| {
        let mut b = b;
        b.data = [0; 64].to_vec();
        Gguf::parse(&b.build()).map(|_| ())
    };
    let f32_id = DType::F32 as u32;
    assert!(
        parse(
            Builder::new()
                .info("a", &[8], f32_id, 0)
                .info("b", &[8], f32_id, 32)
        )
        .is_ok()
    );
    assert!(
        parse(
            Builder::new()
                .info("b", &[8], f32_id, 32)
                .info("a", &[8], f32_id, 0)
        )
        .is_ok(),
        "disjoint, out of order"
    );
    let e = parse(
        Builder::new()
            .info("a", &[16], f32_id, 0)
            .info("b", &[8], f32_id, 32),
    );
    assert!(matches!(
        e,
        Err(GgufError::TensorOverlap { tensor, other, .. }) if tensor == "b" && other == "a"
    ));
    let e = parse(
        Builder::new()
            .info("b", &[8], f32_id, 32)
            .info("a", &[8], f32_id, 0)
            .info("c", &[4], f32_id, 32),
    );
    assert!(matches!(
        e,
        Err(GgufError::TensorOverlap { tensor, other, .. }) if tensor == "c" && other == "b"
    ));
}

#[test]
fn absurd_counts_are_rejected_before_looping() {
    let mut b = Builder::new();
    b.metadata_count = 1 << 63;
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::CountTooLarge {
            what: Count::Metadata,
            pos: 16,
            ..
        })
    ));
    let mut b = rich();
    b.tensor_count = u64::MAX;
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::CountTooLarge {
            what: Count::Tensors,
            pos: 8,
            ..
        })
    ));
    // Plausible at the header, impossible once the metadata has been read.
    let mut b = rich();
    let after_metadata = b.build().len() - 24 - b.metadata.len();
    b.tensor_count = (after_metadata / tensor_info::MIN_ENTRY_BYTES + 1) as u64;
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::CountTooLarge {
            what: Count::Tensors,
            ..
        })
    ));
}

#[test]
fn bad_strings_and_types_are_located() {
    let bytes = Builder::new()
        .kv(b"ok", ValueType::U8, &[1])
        .kv(b"bad\xff", ValueType::U8, &[1])
        .build();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidUtf8 {
            at: Location::Metadata { index: 1, key },
            pos,
        }) if key.is_empty() && pos == 24 + 15 + 8 + 3
    ));
    let bytes = Builder::new().kv(b"k", ValueType::Bool, &[2]).build();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidBool { byte: 2, at: Location::Metadata { key, .. }, .. }) if key == "k"
    ));
    let mut bytes = Builder::new().kv(b"k", ValueType::U8, &[1]).build();
    bytes[33..37].copy_from_slice(&77u32.to_le_bytes());
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::UnknownValueType {
            type_id: 77,
            pos: 33,
            ..
        })
    ));
}

#[test]
fn tensor_data_must_lie_inside_the_file() {
    let bytes = rich().build();
    let last = rich().data.len();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Gguf::parse(cut),
        Err(GgufError::TensorDataPastEnd { tensor, .. }) if tensor == "blk.0.w"
    ));
    let mut b = rich().info("far", &[8], 0, last.next_multiple_of(32) as u64);
    b.data.resize(last, 0);
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::TensorOffsetPastEnd { tensor, .. }) if tensor == "far"
    ));
    let mut b = rich().info("huge", &[8], 0, !31);
    b.data.resize(last, 0);
    assert!(matches!(
        Gguf::parse(&b.build()),
        Err(GgufError::TensorOffsetPastEnd { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = rich().build();
    for len in 0..bytes.len() {
        assert!(Gguf::parse(&bytes[..len]).is_err(), "prefix of {len} bytes");
    }
}

/// Reads everything a parsed file offers, as a caller would.
fn walk(g: &Gguf<'_>) -> usize {
    fn walk_value(v: Value<'_>) -> usize {
        match v {
            Value::Array(a) => a.iter().map(walk_value).sum::<usize>() + 1,
            Value::String(s) => s.len(),
            _ => 1,
        }
    }
    let mut n = 0;
    for (k, v) in g.metadata() {
        n += k.len() + walk_value(v);
        assert!(g.get(k).is_some());
    }
    for t in g.tensors() {
        assert_eq!(
            Some(t.data.len()),
            t.dtype.bytes_for(t.n_elements() as usize)
        );
        n += t.data.len();
    }
    n
}

#[test]
fn single_byte_corruptions_never_panic() {
    let bytes = rich().build();
    let header_len = bytes.len() - rich().data.len();
    for pos in 0..header_len {
        for flip in [0x01, 0x80, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[pos] ^= flip;
            if let Ok(g) = Gguf::parse(&corrupt) {
                walk(&g);
            }
        }
    }
}
