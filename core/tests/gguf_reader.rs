//! The GGUF reader on real files: stories260K and the tiny llama / qwen2 / qwen3 fixtures.

use std::path::{Path, PathBuf};
use tern_core::DType;
use tern_core::gguf::{Gguf, TensorInfo, Value, ValueType};

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn get_u32(g: &Gguf<'_>, key: &str) -> u32 {
    g.get(key)
        .and_then(|v| v.as_u32())
        .unwrap_or_else(|| panic!("{key}"))
}

/// Every tensor's bytes are a sub-slice of the file, inside the data section, of exactly the
/// size its type and shape need.
fn assert_tensor_data_inside(g: &Gguf<'_>, bytes: &[u8]) {
    let file = bytes.as_ptr_range();
    let mut count = 0;
    for t in g.tensors() {
        let n = usize::try_from(t.n_elements()).unwrap();
        assert_eq!(Some(t.data.len()), t.dtype.bytes_for(n), "{}", t.name);
        let start = t.data.as_ptr() as usize - file.start as usize;
        assert_eq!(start, g.data_offset() + t.offset as usize, "{}", t.name);
        assert!(start + t.data.len() <= bytes.len(), "{}", t.name);
        assert_eq!(t.offset as usize % g.alignment(), 0, "{}", t.name);
        count += 1;
    }
    assert_eq!(count, g.tensor_count());
}

/// The llama2.c stories260K shapes: dim 64, 5 layers, 8 heads / 4 KV heads, ffn 172, vocab 512.
fn expected_stories_tensors() -> Vec<(String, Vec<u64>)> {
    let mut v = vec![("token_embd.weight".to_string(), vec![64, 512])];
    for l in 0..5 {
        for (part, dims) in [
            ("attn_norm", vec![64]),
            ("attn_q", vec![64, 64]),
            ("attn_k", vec![64, 32]),
            ("attn_v", vec![64, 32]),
            ("attn_output", vec![64, 64]),
            ("ffn_norm", vec![64]),
            ("ffn_gate", vec![64, 172]),
            ("ffn_down", vec![172, 64]),
            ("ffn_up", vec![64, 172]),
        ] {
            v.push((format!("blk.{l}.{part}.weight"), dims));
        }
    }
    v.push(("output_norm.weight".to_string(), vec![64]));
    v
}

fn check_stories_metadata(g: &Gguf<'_>) {
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.metadata_count(), 26);
    assert_eq!(g.metadata().count(), 26);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(get_u32(g, "llama.embedding_length"), 64);
    assert_eq!(get_u32(g, "llama.block_count"), 5);
    assert_eq!(get_u32(g, "llama.context_length"), 512);
    assert_eq!(get_u32(g, "llama.feed_forward_length"), 172);
    assert_eq!(get_u32(g, "llama.attention.head_count"), 8);
    assert_eq!(get_u32(g, "llama.attention.head_count_kv"), 4);
    let eps = g
        .get("llama.attention.layer_norm_rms_epsilon")
        .and_then(|v| v.as_f32())
        .unwrap();
    assert!((eps - 1e-5).abs() < 1e-9);
    assert_eq!(
        g.get("tokenizer.ggml.model").and_then(|v| v.as_str()),
        Some("llama")
    );
    assert_eq!(get_u32(g, "tokenizer.ggml.bos_token_id"), 1);
    assert_eq!(get_u32(g, "tokenizer.ggml.eos_token_id"), 2);
    assert_eq!(
        g.get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool()),
        Some(true)
    );

    let tokens = g
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .unwrap();
    assert_eq!(tokens.elem_type(), ValueType::String);
    assert_eq!(tokens.len(), 512);
    let strings: Vec<&str> = tokens.strings().unwrap().collect();
    assert_eq!(strings.len(), 512);
    assert_eq!(&strings[..3], ["<unk>", "<s>", "</s>"]);
    assert_eq!(strings[3], "<0x00>");

    let scores = g
        .get("tokenizer.ggml.scores")
        .and_then(|v| v.as_array())
        .unwrap();
    assert_eq!((scores.elem_type(), scores.len()), (ValueType::F32, 512));
    assert!(
        scores
            .iter()
            .all(|v| v.as_f32().is_some_and(f32::is_finite))
    );
    let types = g
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.as_array())
        .unwrap();
    assert_eq!((types.elem_type(), types.len()), (ValueType::I32, 512));
    let first: Vec<i64> = types.iter().take(4).map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(first, [2, 3, 3, 6]);

    // Every key found by iteration is found by lookup, with the same type.
    for (key, value) in g.metadata() {
        let again = g.get(key).unwrap();
        assert_eq!(again.value_type(), value.value_type(), "{key}");
    }
}

fn check_stories_tensors(g: &Gguf<'_>, dtype_of: impl Fn(&str) -> DType) {
    let expected = expected_stories_tensors();
    let tensors: Vec<TensorInfo<'_>> = g.tensors().collect();
    assert_eq!(g.tensor_count(), 47);
    assert_eq!(tensors.len(), expected.len());
    for (t, (name, dims)) in tensors.iter().zip(&expected) {
        assert_eq!(t.name, name);
        assert_eq!(t.shape(), dims.as_slice(), "{name}");
        assert_eq!(t.dtype, dtype_of(name), "{name}");
        let looked_up = g.tensor(name).unwrap();
        assert_eq!(looked_up.offset, t.offset);
        assert_eq!(looked_up.data.as_ptr(), t.data.as_ptr());
    }
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.dims, [64, 512, 1, 1]);
    assert_eq!(embd.n_dims, 2);
    assert_eq!(embd.n_elements(), 64 * 512);
    assert_eq!(embd.offset, 0);
    assert!(
        g.tensor("output.weight").is_none(),
        "stories260K ties the output head"
    );
}

#[test]
fn gguf_stories260k_f32() {
    let bytes = read("models/stories260K-f32.gguf");
    let g = Gguf::parse(&bytes).unwrap();
    check_stories_metadata(&g);
    check_stories_tensors(&g, |_| DType::F32);
    assert_tensor_data_inside(&g, &bytes);
    assert_eq!(g.data_offset(), 14464);
    // The data section is exactly the tensors, padded between them.
    let last = g.tensor("output_norm.weight").unwrap();
    assert_eq!(
        g.data_offset() + last.offset as usize + last.data.len(),
        bytes.len()
    );
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.data.len(), 64 * 512 * 4);
    let first = f32::from_le_bytes(embd.data[..4].try_into().unwrap());
    assert!(first.is_finite());
}

#[test]
fn gguf_stories260k_q8_0() {
    let bytes = read("models/stories260K-q8_0.gguf");
    let g = Gguf::parse(&bytes).unwrap();
    check_stories_metadata(&g);
    assert_eq!(get_u32(&g, "general.file_type"), 7);
    // Norms stay F32; ffn_down rows (172) are not whole Q8_0 blocks, so it stays F32 too.
    check_stories_tensors(&g, |name| {
        if name.ends_with("norm.weight") || name.contains("ffn_down") {
            DType::F32
        } else {
            DType::Q8_0
        }
    });
    assert_tensor_data_inside(&g, &bytes);
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.data.len(), 64 * 512 / 32 * 34);
}

#[test]
fn gguf_fixtures_parse_with_data_inside_the_file() {
    let mut files = 0;
    for arch in ["llama", "qwen2", "qwen3"] {
        let dir = repo_path(&format!("testdata/fixtures/{arch}"));
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty(), "{}", dir.display());
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let what = path.display();
            assert_eq!(g.architecture(), Some(arch), "{what}");
            assert_eq!(get_u32(&g, &format!("{arch}.block_count")), 2, "{what}");
            assert_eq!(
                get_u32(&g, &format!("{arch}.embedding_length")),
                256,
                "{what}"
            );
            let tokens = g
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .unwrap();
            assert_eq!(tokens.strings().unwrap().count(), 512, "{what}");
            assert_tensor_data_inside(&g, &bytes);
            let embd = g.tensor("token_embd.weight").unwrap();
            assert_eq!(embd.shape(), [256, 512], "{what}");
            files += 1;
        }
    }
    assert_eq!(files, 24);
}

#[test]
fn gguf_k_quant_fixture_types() {
    let bytes = read("testdata/fixtures/qwen3/qwen3-q4_k_m.gguf");
    let g = Gguf::parse(&bytes).unwrap();
    let mut seen: Vec<DType> = g.tensors().map(|t| t.dtype).collect();
    seen.sort_by_key(|t| *t as u32);
    seen.dedup();
    assert_eq!(seen, [DType::F32, DType::Q4_K, DType::Q6_K]);
    // qwen3's per-head q/k norms are one head_dim long.
    let q_norm = g.tensor("blk.0.attn_q_norm.weight").unwrap();
    assert_eq!((q_norm.dtype, q_norm.shape()), (DType::F32, &[64u64][..]));
    for t in g.tensors().filter(|t| t.dtype.is_quantized()) {
        assert_eq!(t.dims[0] % t.dtype.block_len() as u64, 0, "{}", t.name);
    }
    assert!(matches!(
        g.get("qwen3.attention.head_count"),
        Some(Value::U32(8))
    ));
}

/// `Model::weights` lists every weight in the order `Model::load` prepared them.
#[test]
fn weights_come_back_in_preparation_order() {
    use tern_core::model::{Model, ModelConfig};
    for file in [
        "models/stories260K-f32.gguf",
        "testdata/fixtures/qwen3/qwen3-q4_0.gguf",
    ] {
        let bytes = read(file);
        let g = Gguf::parse(&bytes).unwrap();
        let config = ModelConfig::from_gguf(&g).unwrap();
        let mut next = 0usize;
        let model = Model::load(&g, config, Vec::new(), |view, _| {
            next += 1;
            Ok::<_, ()>((next - 1, view.name))
        })
        .unwrap();
        let order: Vec<usize> = model.weights().map(|w| w.0).collect();
        assert_eq!(order, (0..next).collect::<Vec<_>>(), "{file}");
        assert_eq!(model.weights().next().unwrap().1, "token_embd.weight");
    }
}
