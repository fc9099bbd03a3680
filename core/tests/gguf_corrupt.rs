//! Corrupt GGUF files, each made from the bundled stories260K F32 file (patched or truncated)
//! or synthesized, must be rejected with the specific error; random damage must never panic.

use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;
use tern_core::DType;
use tern_core::gguf::{Count, Gguf, GgufError, Location, Value, ValueType};
use tern_core::testing::gguf_writer::{GgufWriter, Meta, Tensor};

fn stories() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/stories260K-f32.gguf");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

fn parse_err(bytes: &[u8]) -> GgufError {
    match Gguf::parse(bytes) {
        Ok(g) => panic!("corrupt file parsed: {g:?}"),
        Err(e) => {
            // Every error must describe itself.
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

fn put_u32(bytes: &mut [u8], pos: usize, v: u32) {
    bytes[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], pos: usize, v: u64) {
    bytes[pos..pos + 8].copy_from_slice(&v.to_le_bytes());
}

/// Byte positions of the fields of one tensor info in a file.
struct InfoFields {
    name: usize,
    n_dims: usize,
    dims: usize,
    type_id: usize,
    offset: usize,
}

/// Finds the tensor info of `name` by its length-prefixed name (the vocabulary of stories260K
/// holds no tensor names) and the fields after it.
fn info_fields(bytes: &[u8], name: &str) -> InfoFields {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend(name.as_bytes());
    let start = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{name} not found"));
    let n_dims = start + needle.len();
    let dims_count = u32::from_le_bytes(bytes[n_dims..n_dims + 4].try_into().unwrap()) as usize;
    let dims = n_dims + 4;
    let type_id = dims + 8 * dims_count;
    InfoFields {
        name: start + 8,
        n_dims,
        dims,
        type_id,
        offset: type_id + 4,
    }
}

fn patched(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = stories().to_vec();
    f(&mut bytes);
    bytes
}

#[test]
fn gguf_corrupt_bad_magic() {
    let bytes = patched(|b| b[..4].copy_from_slice(b"GGML"));
    assert_eq!(parse_err(&bytes), GgufError::BadMagic { found: *b"GGML" });
}

#[test]
fn gguf_corrupt_unsupported_version() {
    for version in [1, 4] {
        let bytes = patched(|b| put_u32(b, 4, version));
        assert_eq!(parse_err(&bytes), GgufError::UnsupportedVersion { version });
    }
}

#[test]
fn gguf_corrupt_truncated_header() {
    let e = parse_err(&stories()[..20]);
    assert_eq!(
        e,
        GgufError::Truncated {
            at: Location::Header,
            pos: 16,
            needed: 8,
            available: 4
        }
    );
    assert!(matches!(
        parse_err(&stories()[..2]),
        GgufError::Truncated {
            at: Location::Header,
            ..
        }
    ));
}

#[test]
fn gguf_corrupt_truncated_metadata_and_tensor_infos() {
    // Inside the token list (metadata entry 17).
    let e = parse_err(&stories()[..5000]);
    assert!(
        matches!(
            e,
            GgufError::Truncated { at: Location::Metadata { index: 17, key }, .. }
            | GgufError::StringPastEnd { at: Location::Metadata { index: 17, key }, .. }
                if key == "tokenizer.ggml.tokens"
        ),
        "{e}"
    );
    // Inside the tensor infos.
    let f = info_fields(stories(), "blk.2.attn_v.weight");
    let e = parse_err(&stories()[..f.dims + 3]);
    assert!(
        matches!(
            e,
            GgufError::Truncated { at: Location::TensorInfo { name, .. }, .. } if name == "blk.2.attn_v.weight"
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_truncated_tensor_data() {
    let bytes = stories();
    let e = parse_err(&bytes[..bytes.len() - 100]);
    assert!(
        matches!(
            e,
            GgufError::TensorDataPastEnd { tensor, size: 256, .. } if tensor == "output_norm.weight"
        ),
        "{e}"
    );
    // Cut inside the tensor infos' padding: no data at all.
    let e = parse_err(&bytes[..14440]);
    assert!(
        matches!(e, GgufError::TensorOffsetPastEnd { tensor, .. } if tensor == "token_embd.weight"),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_string_length_past_the_end() {
    // The first key's length.
    let e = parse_err(&patched(|b| put_u64(b, 24, 1 << 40)));
    assert!(
        matches!(
            e,
            GgufError::StringPastEnd { at: Location::Metadata { index: 0, .. }, pos: 24, len, .. }
                if len == 1 << 40
        ),
        "{e}"
    );
    // A string inside the token array: the first token, "<unk>".
    let mut needle = 5u64.to_le_bytes().to_vec();
    needle.extend(b"<unk>");
    let pos = stories().windows(13).position(|w| w == needle).unwrap();
    let e = parse_err(&patched(|b| put_u64(b, pos, u64::MAX)));
    assert!(
        matches!(
            e,
            GgufError::StringPastEnd { at: Location::Metadata { key, .. }, len: u64::MAX, .. }
                if key == "tokenizer.ggml.tokens"
        ),
        "{e}"
    );
    // A tensor name.
    let f = info_fields(stories(), "blk.0.ffn_up.weight");
    let e = parse_err(&patched(|b| put_u64(b, f.name - 8, 1 << 20)));
    assert!(
        matches!(
            e,
            GgufError::StringPastEnd {
                at: Location::TensorInfo { .. },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_invalid_utf8_and_value_types() {
    let e = parse_err(&patched(|b| b[32] = 0xff));
    assert!(
        matches!(
            e,
            GgufError::InvalidUtf8 {
                pos: 32,
                at: Location::Metadata { index: 0, .. }
            }
        ),
        "{e}"
    );
    // general.architecture's type (a string, 8) at 24 + 8 + 20.
    let e = parse_err(&patched(|b| put_u32(b, 52, 13)));
    assert!(
        matches!(
            e,
            GgufError::UnknownValueType {
                pos: 52,
                type_id: 13,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_tensor_offset_past_the_end() {
    let bytes = stories();
    let f = info_fields(bytes, "output_norm.weight");
    let e = parse_err(&patched(|b| put_u64(b, f.offset, bytes.len() as u64)));
    assert!(
        matches!(
            e,
            GgufError::TensorOffsetPastEnd { tensor, pos, file_len, .. }
                if tensor == "output_norm.weight" && pos == f.offset && file_len == bytes.len()
        ),
        "{e}"
    );
    let e = parse_err(&patched(|b| put_u64(b, f.offset, u64::MAX - 31)));
    assert!(matches!(e, GgufError::TensorOffsetPastEnd { .. }), "{e}");
}

#[test]
fn gguf_corrupt_tensor_size_past_the_end() {
    // token_embd.weight [64, 512] -> [64, 5120]: ten times the bytes, past the end of the file.
    let f = info_fields(stories(), "token_embd.weight");
    let e = parse_err(&patched(|b| put_u64(b, f.dims + 8, 5120)));
    assert!(
        matches!(
            e,
            GgufError::TensorDataPastEnd { tensor, offset: 0, size, .. }
                if tensor == "token_embd.weight" && size == 64 * 5120 * 4
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_misaligned_data_offset() {
    let f = info_fields(stories(), "blk.0.attn_norm.weight");
    let e = parse_err(&patched(|b| put_u64(b, f.offset, 131072 + 4)));
    assert!(
        matches!(
            e,
            GgufError::MisalignedTensor { tensor, offset: 131076, alignment: 32, .. }
                if tensor == "blk.0.attn_norm.weight"
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_unknown_dtype() {
    let f = info_fields(stories(), "token_embd.weight");
    for type_id in [1000, 10, 4] {
        let e = parse_err(&patched(|b| put_u32(b, f.type_id, type_id)));
        assert!(
            matches!(
                e,
                GgufError::UnsupportedDType { tensor, type_id: t, .. }
                    if tensor == "token_embd.weight" && t == type_id
            ),
            "{e}"
        );
    }
}

#[test]
fn gguf_corrupt_dimension_product_overflows() {
    let f = info_fields(stories(), "token_embd.weight");
    let e = parse_err(&patched(|b| {
        put_u64(b, f.dims, 1 << 33);
        put_u64(b, f.dims + 8, 1 << 33);
    }));
    assert!(
        matches!(e, GgufError::DimsOverflow { tensor, pos, .. } if tensor == "token_embd.weight" && pos == f.dims),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_other_tensor_shapes() {
    let f = info_fields(stories(), "token_embd.weight");
    let e = parse_err(&patched(|b| put_u32(b, f.n_dims, 5)));
    assert!(matches!(e, GgufError::TooManyDims { n_dims: 5, .. }), "{e}");
    let e = parse_err(&patched(|b| put_u64(b, f.dims + 8, 0)));
    assert!(matches!(e, GgufError::ZeroDim { axis: 1, .. }), "{e}");
    // [64, 32] as Q4_K: 64-element rows are not 256-element blocks.
    let f = info_fields(stories(), "blk.0.attn_k.weight");
    let e = parse_err(&patched(|b| put_u32(b, f.type_id, 12)));
    assert!(
        matches!(e, GgufError::RowNotWholeBlocks { row_len: 64, .. }),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_tensor_count_of_2_pow_63() {
    let e = parse_err(&patched(|b| put_u64(b, 8, 1 << 63)));
    assert!(
        matches!(
            e,
            GgufError::CountTooLarge { what: Count::Tensors, count, pos: 8, .. } if count == 1 << 63
        ),
        "{e}"
    );
    let e = parse_err(&patched(|b| put_u64(b, 16, u64::MAX)));
    assert!(
        matches!(
            e,
            GgufError::CountTooLarge {
                what: Count::Metadata,
                pos: 16,
                ..
            }
        ),
        "{e}"
    );
    // Huge array length: the token list claims 2^62 strings.
    let mut needle = ValueType::String.id().to_le_bytes().to_vec();
    needle.extend(512u64.to_le_bytes());
    let pos = stories().windows(12).position(|w| w == needle).unwrap();
    let e = parse_err(&patched(|b| put_u64(b, pos + 4, 1 << 62)));
    assert!(
        matches!(
            e,
            GgufError::CountTooLarge {
                what: Count::ArrayElements,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn gguf_corrupt_duplicates_and_overlap() {
    // Same-length rename: blk.0.attn_k.weight -> blk.0.attn_q.weight.
    let f = info_fields(stories(), "blk.0.attn_k.weight");
    let e = parse_err(&patched(|b| b[f.name + 11] = b'q'));
    assert!(
        matches!(e, GgufError::DuplicateTensor { tensor, .. } if tensor == "blk.0.attn_q.weight"),
        "{e}"
    );
    // blk.0.attn_q.weight's data moved onto token_embd.weight's.
    let f = info_fields(stories(), "blk.0.attn_q.weight");
    let e = parse_err(&patched(|b| put_u64(b, f.offset, 0)));
    assert!(
        matches!(
            e,
            GgufError::TensorOverlap { tensor, other, .. }
                if tensor == "blk.0.attn_q.weight" && other == "token_embd.weight"
        ),
        "{e}"
    );
    // Same-length key rename: tokenizer.ggml.bos_token_id -> tokenizer.ggml.eos_token_id.
    let key = b"tokenizer.ggml.bos_token_id";
    let pos = stories().windows(key.len()).position(|w| w == key).unwrap();
    let e = parse_err(&patched(|b| b[pos + 15] = b'e'));
    assert!(
        matches!(e, GgufError::DuplicateKey { key, .. } if key == "tokenizer.ggml.eos_token_id"),
        "{e}"
    );
}

/// The file of `w` with one F32 tensor "t" of 8 elements: for cases easier to synthesize than
/// to patch.
fn with_tensor(w: GgufWriter) -> Vec<u8> {
    w.tensor(Tensor::filled("t", &[8], DType::F32, 0))
        .to_bytes()
}

#[test]
fn gguf_corrupt_synthesized_metadata() {
    let ok = with_tensor(GgufWriter::new().alignment(64));
    assert_eq!(Gguf::parse(&ok).unwrap().alignment(), 64);

    for bad in [0u32, 24, 1 << 31 | 1] {
        let bytes = with_tensor(GgufWriter::new().alignment(bad));
        assert!(
            matches!(parse_err(&bytes), GgufError::BadAlignment { alignment, .. } if alignment == bad)
        );
    }
    let bytes = with_tensor(GgufWriter::new().kv("general.alignment", Meta::I32(32)));
    assert!(matches!(
        parse_err(&bytes),
        GgufError::AlignmentNotU32 {
            found: ValueType::I32,
            ..
        }
    ));

    let bytes = with_tensor(GgufWriter::new().kv("a", Meta::U8(1)).kv("a", Meta::U8(2)));
    assert!(matches!(parse_err(&bytes), GgufError::DuplicateKey { key, .. } if key == "a"));

    let bool_2 = Meta::Raw {
        type_id: ValueType::Bool.id(),
        bytes: vec![2],
    };
    let bytes = with_tensor(GgufWriter::new().kv("flag", bool_2));
    assert!(matches!(
        parse_err(&bytes),
        GgufError::InvalidBool { byte: 2, .. }
    ));

    // Arrays of arrays are fine; nesting without end is not.
    let inner = [
        Meta::array(ValueType::U8, [Meta::U8(1), Meta::U8(2), Meta::U8(3)]),
        Meta::strings(["hi"]),
    ];
    let nested = Meta::array(ValueType::Array, inner);
    let bytes = with_tensor(GgufWriter::new().kv("nested", nested));
    let g = Gguf::parse(&bytes).unwrap();
    let outer = g.get("nested").and_then(|v| v.as_array()).unwrap();
    let inner: Vec<_> = outer.iter().map(|v| v.as_array().unwrap()).collect();
    assert_eq!(inner[0].iter().map(|v| v.as_u32().unwrap()).sum::<u32>(), 6);
    assert_eq!(inner[1].strings().unwrap().collect::<Vec<_>>(), ["hi"]);
    assert_eq!(g.tensor("t").unwrap().data.len(), 32);

    let deep = (0..1000).fold(Meta::array(ValueType::U8, []), |inner, _| {
        Meta::array(ValueType::Array, [inner])
    });
    let bytes = with_tensor(GgufWriter::new().kv("deep", deep));
    assert!(matches!(parse_err(&bytes), GgufError::ArrayTooDeep { .. }));
}

/// Parses `bytes` and, when it is accepted, reads everything it offers.
fn parse_and_walk(bytes: &[u8]) {
    fn walk_value(v: Value<'_>) {
        match v {
            Value::Array(a) => a.iter().for_each(walk_value),
            Value::String(s) => assert!(s.len() < 1 << 30),
            _ => {}
        }
    }
    let Ok(g) = Gguf::parse(bytes) else { return };
    assert_eq!(g.metadata().count(), g.metadata_count());
    for (key, value) in g.metadata() {
        walk_value(value);
        assert!(g.get(key).is_some());
    }
    let range = bytes.as_ptr_range();
    assert_eq!(g.tensors().count(), g.tensor_count());
    for t in g.tensors() {
        let n = usize::try_from(t.n_elements()).unwrap();
        assert_eq!(Some(t.data.len()), t.dtype.bytes_for(n));
        let d = t.data.as_ptr_range();
        assert!(range.start <= d.start && d.end <= range.end);
    }
}

/// Positions before the end of the tensor infos (and a little past), where damage matters.
const HEADER_REGION: usize = 14464 + 64;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn gguf_random_truncation_never_panics(len in 0usize..=1054592) {
        let bytes = stories();
        parse_and_walk(&bytes[..len.min(bytes.len())]);
    }

    #[test]
    fn gguf_random_byte_flips_never_panic(
        flips in proptest::collection::vec(
            (prop_oneof![4 => 0usize..HEADER_REGION, 1 => 0usize..1054592], 1u8..=255),
            1..6,
        ),
        cut in proptest::option::of(0usize..1054592),
    ) {
        let mut bytes = stories().to_vec();
        for (pos, x) in flips {
            if let Some(b) = bytes.get_mut(pos) {
                *b ^= x;
            }
        }
        if let Some(len) = cut {
            bytes.truncate(len);
        }
        parse_and_walk(&bytes);
    }
}
