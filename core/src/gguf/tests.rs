//! Whole-file tests on small synthesized GGUF files.

extern crate std;

use super::*;
use crate::dtype::DType;
use crate::testing::gguf_writer::{GgufWriter, Meta, Tensor};
use std::vec;
use std::vec::Vec;

/// A file with every value type, nested arrays and three tensors, each filled with its
/// index + 1.
fn rich() -> GgufWriter {
    let bytes = |items: &[u8]| Meta::array(ValueType::U8, items.iter().map(|&b| Meta::U8(b)));
    let nested = Meta::array(ValueType::Array, [bytes(&[1, 2]), bytes(&[])]);
    GgufWriter::new()
        .kv("general.architecture", Meta::str("llama"))
        .kv("u8", Meta::U8(200))
        .kv("i8", Meta::I8(-1))
        .kv("u16", Meta::U16(500))
        .kv("i16", Meta::I16(-500))
        .kv("u32", Meta::U32(70000))
        .kv("i32", Meta::I32(-70000))
        .kv("f32", Meta::F32(1.5))
        .kv("bool", Meta::Bool(true))
        .kv("u64", Meta::U64(1 << 40))
        .kv("i64", Meta::I64(-1))
        .kv("f64", Meta::F64(0.25))
        .kv("tokens", Meta::strings(["<unk>", "▁the"]))
        .kv("scores", Meta::f32s([1.0, 2.0]))
        .kv("nested", nested)
        .tensor(Tensor::filled(
            "token_embd.weight",
            &[32, 4],
            DType::Q8_0,
            1,
        ))
        .tensor(Tensor::filled("norm", &[8], DType::F32, 2))
        .tensor(Tensor::filled("blk.0.w", &[256, 2], DType::Q4_K, 3))
}

#[test]
fn parses_every_value_type() {
    let bytes = rich().to_bytes();
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
    let bytes = rich().to_bytes();
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
    assert!(Gguf::parse(&b.to_bytes()).is_ok());
    for version in [0, 1, 4, 3 << 24] {
        b.version = version;
        assert_eq!(
            Gguf::parse(&b.to_bytes()).unwrap_err(),
            GgufError::UnsupportedVersion { version }
        );
    }
}

#[test]
fn an_empty_file_body_is_valid() {
    let bytes = GgufWriter::new().to_bytes();
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
    let bytes = GgufWriter::new()
        .alignment(64)
        .tensor(Tensor::filled("a", &[4], DType::F32, 1))
        .tensor(Tensor::filled("b", &[4], DType::F32, 2))
        .to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("b").unwrap().offset, 64);
}

#[test]
fn bad_alignments_are_rejected() {
    for a in [0, 3, 48] {
        let bytes = GgufWriter::new().alignment(a).to_bytes();
        assert!(
            matches!(
                Gguf::parse(&bytes),
                Err(GgufError::BadAlignment { alignment, pos: 24 }) if alignment == a
            ),
            "{a}"
        );
    }
    let bytes = GgufWriter::new()
        .kv(ALIGNMENT_KEY, Meta::U64(32))
        .to_bytes();
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
    let bytes = GgufWriter::new()
        .kv("a", Meta::U8(1))
        .kv("b", Meta::U8(1))
        .kv("a", Meta::U8(2))
        .to_bytes();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::DuplicateKey { key, pos }) if key == "a" && pos == 24 + 2 * 14
    ));
    let bytes = GgufWriter::new()
        .tensor(Tensor::filled("w", &[8], DType::F32, 1))
        .tensor(Tensor::filled("v", &[8], DType::F32, 2))
        .tensor(Tensor::filled("w", &[8], DType::F32, 3))
        .to_bytes();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::DuplicateTensor { tensor, .. }) if tensor == "w"
    ));
}

#[test]
fn overlapping_data_is_rejected_and_out_of_order_data_is_not() {
    // Each tensor's data lies where the layout puts it; the infos declare these offsets.
    let parse = |tensors: &[(&str, u64, u64)]| {
        let w = tensors
            .iter()
            .fold(GgufWriter::new(), |w, &(name, len, offset)| {
                w.tensor(Tensor::filled(name, &[len], DType::F32, 0).at(offset))
            });
        Gguf::parse(&w.to_bytes()).map(|_| ())
    };
    assert!(parse(&[("a", 8, 0), ("b", 8, 32)]).is_ok());
    assert!(
        parse(&[("b", 8, 32), ("a", 8, 0)]).is_ok(),
        "disjoint, out of order"
    );
    let e = parse(&[("a", 16, 0), ("b", 8, 32)]);
    assert!(matches!(
        e,
        Err(GgufError::TensorOverlap { tensor, other, .. }) if tensor == "b" && other == "a"
    ));
    let e = parse(&[("b", 8, 32), ("a", 8, 0), ("c", 4, 32)]);
    assert!(matches!(
        e,
        Err(GgufError::TensorOverlap { tensor, other, .. }) if tensor == "c" && other == "b"
    ));
}

#[test]
fn absurd_counts_are_rejected_before_looping() {
    let b = GgufWriter::new().metadata_count(1 << 63);
    assert!(matches!(
        Gguf::parse(&b.to_bytes()),
        Err(GgufError::CountTooLarge {
            what: Count::Metadata,
            pos: 16,
            ..
        })
    ));
    let b = rich().tensor_count(u64::MAX);
    assert!(matches!(
        Gguf::parse(&b.to_bytes()),
        Err(GgufError::CountTooLarge {
            what: Count::Tensors,
            pos: 8,
            ..
        })
    ));
    // Plausible at the header, impossible once the metadata has been read.
    let b = rich();
    let after_metadata = b.to_bytes().len() - 24 - b.metadata_bytes().len();
    let b = b.tensor_count((after_metadata / tensor_info::MIN_ENTRY_BYTES + 1) as u64);
    assert!(matches!(
        Gguf::parse(&b.to_bytes()),
        Err(GgufError::CountTooLarge {
            what: Count::Tensors,
            ..
        })
    ));
}

#[test]
fn bad_strings_and_types_are_located() {
    let bytes = GgufWriter::new()
        .kv("ok", Meta::U8(1))
        .kv(b"bad\xff", Meta::U8(1))
        .to_bytes();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidUtf8 {
            at: Location::Metadata { index: 1, key },
            pos,
        }) if key.is_empty() && pos == 24 + 15 + 8 + 3
    ));
    let bool_2 = Meta::Raw {
        type_id: ValueType::Bool.id(),
        bytes: vec![2],
    };
    let bytes = GgufWriter::new().kv("k", bool_2).to_bytes();
    assert!(matches!(
        Gguf::parse(&bytes),
        Err(GgufError::InvalidBool { byte: 2, at: Location::Metadata { key, .. }, .. }) if key == "k"
    ));
    let type_77 = Meta::Raw {
        type_id: 77,
        bytes: vec![1],
    };
    let bytes = GgufWriter::new().kv("k", type_77).to_bytes();
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
    let bytes = rich().to_bytes();
    let last = bytes.len() - Gguf::parse(&bytes).unwrap().data_offset();
    let cut = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Gguf::parse(cut),
        Err(GgufError::TensorDataPastEnd { tensor, .. }) if tensor == "blk.0.w"
    ));
    let no_data = |name| Tensor::new(name, &[8], DType::F32, vec![]);
    let b = rich().tensor(no_data("far").at(last.next_multiple_of(32) as u64));
    assert!(matches!(
        Gguf::parse(&b.to_bytes()),
        Err(GgufError::TensorOffsetPastEnd { tensor, .. }) if tensor == "far"
    ));
    let b = rich().tensor(no_data("huge").at(!31));
    assert!(matches!(
        Gguf::parse(&b.to_bytes()),
        Err(GgufError::TensorOffsetPastEnd { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = rich().to_bytes();
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
    let bytes = rich().to_bytes();
    let header_len = Gguf::parse(&bytes).unwrap().data_offset();
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
