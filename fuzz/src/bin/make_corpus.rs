//! Writes the committed seed files under `fuzz/seeds/`:
//!
//! - `gguf/`: tiny valid models of every architecture and several formats (`ok-`), and
//!   hand-made bad files (`bad-`), each breaking one thing: every corruption the GGUF reader
//!   names, and valid files with absurd hyperparameters or tokenizers. The name says what is
//!   wrong; `ok-` files with odd contents are ones Tern runs anyway.
//! - `tokenizer_encode/`, `tokenizer_decode/`: texts and id sequences for each tokenizer.
//! - `sampling/`, `region_fusion/`: seeded random bytes of up to 4 KiB, so that runs start
//!   from inputs long enough to fill the lists those targets build (libFuzzer otherwise
//!   starts from empty inputs and lengthens them slowly). `cpu_kernels` needs none: its data
//!   comes from a generator seeded by the input, and its runs go further from short inputs.
//!
//! `cargo run --release --bin make_corpus` (from `fuzz/`) rewrites them; the output depends
//! on nothing but this program.

use std::path::{Path, PathBuf};

use tern_core::DType;
use tern_core::gguf::ValueType;
use tern_core::sample::Xoshiro256;
use tern_core::testing::gguf_writer::{GgufWriter, Meta};
use tern_fuzz::tiny_model::{TinySpec, tiny_model};
use tern_fuzz::tokenizers;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let gguf = root.join("gguf");
    reset(&gguf);
    for (name, bytes) in valid_models().into_iter().chain(bad_files()) {
        write(&gguf, &format!("{name}.gguf"), &bytes);
    }
    tokenizer_seeds(&root);
    let _ = std::fs::remove_dir_all(root.join("cpu_kernels"));
    for target in ["sampling", "region_fusion"] {
        random_seeds(&root.join(target));
    }
}

fn random_seeds(dir: &Path) {
    reset(dir);
    let mut rng = Xoshiro256::seed_from_u64(0x5eed);
    for (i, len) in [64, 128, 256, 512, 1024, 2048, 4096, 4096]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        write(dir, &format!("random-{i}"), &bytes);
    }
}

fn reset(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the seed folder");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn valid_models() -> Vec<(String, Vec<u8>)> {
    let mut specs = Vec::new();
    for dtype in [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
    ] {
        specs.push(TinySpec::llama(dtype));
    }
    specs.push(TinySpec {
        tied: true,
        ..TinySpec::llama(DType::Q8_0)
    });
    specs.push(TinySpec {
        arch: "qwen2",
        bpe: true,
        tied: true,
        ..TinySpec::llama(DType::Q8_0)
    });
    specs.push(TinySpec {
        arch: "qwen3",
        n_head: 4,
        n_head_kv: 1,
        tied: true,
        ..TinySpec::llama(DType::Q4_0)
    });
    specs.push(TinySpec {
        n_layer: 2,
        ..TinySpec::llama(DType::Q4_0)
    });
    // Heads of 1024 and a trained context of 2^24: a small file whose full context would
    // need a 256 GiB KV cache.
    specs.push(TinySpec {
        key_length: Some(1024),
        n_head_kv: 4,
        context_length: 1 << 24,
        ..TinySpec::llama(DType::Q4_0)
    });
    // K-quants need rows of 256.
    specs.push(TinySpec {
        n_embd: 256,
        n_head: 2,
        n_head_kv: 1,
        n_ff: 256,
        ..TinySpec::llama(DType::Q4_K)
    });
    specs
        .iter()
        .map(|s| {
            let tied = if s.tied { "-tied" } else { "" };
            let bpe = if s.bpe { "-bpe" } else { "" };
            let layers = if s.n_layer > 1 { "-2layers" } else { "" };
            let wide = if s.key_length.is_some() {
                "-heads-1024-context-2pow24"
            } else {
                ""
            };
            let name = format!("ok-{}-{}{tied}{bpe}{layers}{wide}", s.arch, s.dtype.name());
            (name.to_lowercase(), tiny_model(s).to_bytes())
        })
        .collect()
}

/// The valid model every bad file starts from.
fn base() -> GgufWriter {
    tiny_model(&TinySpec::llama(DType::Q8_0))
}

fn with(change: impl FnOnce(&mut GgufWriter)) -> Vec<u8> {
    let mut w = base();
    change(&mut w);
    w.to_bytes()
}

/// The base file with `patch` applied to its bytes.
fn patched(patch: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = base().to_bytes();
    patch(&mut bytes);
    bytes
}

/// Position just past the first occurrence of `needle`.
fn after(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in the base file")
        + needle.len()
}

fn set_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn bad_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    let good = base().to_bytes();

    // The container: every fault the GGUF reader names.
    files.push(("bad-empty", Vec::new()));
    files.push(("bad-magic-only", b"GGUF".to_vec()));
    files.push((
        "bad-bad-magic",
        patched(|b| b[..4].copy_from_slice(b"GGML")),
    ));
    files.push(("bad-version-1", patched(|b| b[4] = 1)));
    files.push(("bad-version-4", patched(|b| b[4] = 4)));
    files.push(("bad-header-truncated", good[..20].to_vec()));
    files.push(("bad-truncated-in-metadata", good[..200].to_vec()));
    files.push((
        "bad-truncated-in-tensor-data",
        good[..good.len() - 1].to_vec(),
    ));
    files.push(("bad-truncated-half", good[..good.len() / 2].to_vec()));
    files.push((
        "bad-tensor-count-huge",
        patched(|b| set_u64(b, 8, u64::MAX)),
    ));
    files.push((
        "bad-metadata-count-huge",
        patched(|b| set_u64(b, 16, 1 << 40)),
    ));
    files.push(("bad-metadata-count-short", patched(|b| set_u64(b, 16, 3))));
    files.push((
        "bad-key-length-huge",
        patched(|b| set_u64(b, 24, u64::MAX - 7)),
    ));
    files.push((
        "bad-key-invalid-utf8",
        patched(|b| {
            let at = after(b, b"general.name") - 1;
            b[at] = 0xff;
        }),
    ));
    files.push((
        "bad-value-type-unknown",
        patched(|b| {
            let at = after(b, b"general.name");
            b[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
        }),
    ));
    files.push((
        "bad-string-value-past-end",
        patched(|b| {
            let at = after(b, b"general.name") + 4;
            set_u64(b, at, 1 << 50);
        }),
    ));
    files.push((
        "bad-bool-is-2",
        with(|w| {
            w.set(
                "tokenizer.ggml.add_bos_token",
                Meta::Raw {
                    type_id: 7,
                    bytes: vec![2],
                },
            )
        }),
    ));
    files.push((
        "bad-arrays-nested-too-deep",
        with(|w| w.set("x.deep", deep_array(12))),
    ));
    files.push((
        "bad-array-count-huge",
        with(|w| {
            // u32 elements, u64::MAX of them, none written.
            let mut bytes = ValueType::U32.id().to_le_bytes().to_vec();
            bytes.extend(u64::MAX.to_le_bytes());
            let type_id = ValueType::Array.id();
            w.set("x.array", Meta::Raw { type_id, bytes });
        }),
    ));
    files.push((
        "bad-duplicate-key",
        with(|w| w.metadata.push(("general.name".into(), Meta::str("again")))),
    ));
    files.push((
        "bad-duplicate-tensor",
        with(|w| {
            let copy = w.tensors[1].clone();
            w.tensors.push(copy);
        }),
    ));
    files.push((
        "bad-alignment-zero",
        with(|w| w.set("general.alignment", Meta::U32(0))),
    ));
    files.push((
        "bad-alignment-not-power-of-two",
        with(|w| w.set("general.alignment", Meta::U32(48))),
    ));
    files.push((
        "bad-alignment-not-u32",
        with(|w| w.set("general.alignment", Meta::U64(32))),
    ));
    files.push((
        "ok-alignment-64",
        with(|w| w.set("general.alignment", Meta::U32(64))),
    ));
    files.push((
        "bad-tensor-too-many-dims",
        with(|w| w.tensors[1].dims = vec![32, 1, 1, 1, 1]),
    ));
    files.push((
        "bad-tensor-zero-dim",
        with(|w| w.tensors[1].dims = vec![32, 0]),
    ));
    files.push((
        "bad-tensor-dims-overflow",
        with(|w| w.tensors[0].dims = vec![32, u64::MAX / 16, 1 << 10]),
    ));
    files.push((
        "bad-tensor-unknown-type",
        with(|w| w.tensors[0].type_id = 99),
    ));
    files.push((
        "bad-tensor-type-q8_1-unsupported",
        with(|w| w.tensors[0].type_id = 9),
    ));
    files.push((
        "bad-tensor-row-not-whole-blocks",
        with(|w| w.tensors[0].dims = vec![33, 25]),
    ));
    files.push((
        "bad-tensor-offset-misaligned",
        with(|w| w.tensors[1].offset = Some(1)),
    ));
    files.push((
        "bad-tensor-offset-past-end",
        with(|w| w.tensors[2].offset = Some(1 << 40)),
    ));
    files.push((
        "bad-tensor-data-past-end",
        with(|w| w.tensors[0].dims = vec![32, 1 << 20]),
    ));
    files.push((
        "bad-tensors-overlap",
        with(|w| w.tensors[2].offset = Some(0)),
    ));

    // Valid files whose hyperparameters make no sense (`ok-`: odd, but Tern runs them).
    let key = |k: &str| format!("llama.{k}");
    let set = |k: &str, v: Meta| {
        let k = key(k);
        with(move |w| w.set(&k, v))
    };
    files.push(("bad-heads-zero", set("attention.head_count", Meta::U32(0))));
    files.push((
        "bad-heads-negative",
        set("attention.head_count", Meta::I32(-4)),
    ));
    files.push((
        "bad-heads-not-dividing-embedding",
        set("attention.head_count", Meta::U32(3)),
    ));
    files.push((
        "bad-heads-huge",
        set("attention.head_count", Meta::U64(1 << 40)),
    ));
    files.push((
        "bad-kv-heads-zero",
        set("attention.head_count_kv", Meta::U32(0)),
    ));
    files.push((
        "bad-kv-heads-not-dividing-heads",
        set("attention.head_count_kv", Meta::U32(3)),
    ));
    files.push((
        "bad-head-dim-odd",
        set("attention.key_length", Meta::U32(7)),
    ));
    files.push((
        "bad-value-length-differs",
        set("attention.value_length", Meta::U32(16)),
    ));
    files.push((
        "bad-rope-dims-odd",
        set("rope.dimension_count", Meta::U32(3)),
    ));
    files.push((
        "bad-rope-dims-over-head-dim",
        set("rope.dimension_count", Meta::U32(64)),
    ));
    files.push(("bad-rope-base-zero", set("rope.freq_base", Meta::F32(0.0))));
    files.push((
        "bad-rope-base-nan",
        set("rope.freq_base", Meta::F32(f32::NAN)),
    ));
    files.push((
        "bad-rope-scaling-yarn",
        set("rope.scaling.type", Meta::str("yarn")),
    ));
    files.push((
        "bad-rope-scaling-factor-negative",
        with(|w| {
            w.set(&key("rope.scaling.type"), Meta::str("linear"));
            w.set(&key("rope.scaling.factor"), Meta::F32(-2.0));
        }),
    ));
    files.push(("bad-context-zero", set("context_length", Meta::U32(0))));
    files.push((
        "bad-context-huge",
        set("context_length", Meta::U64(1 << 40)),
    ));
    files.push((
        "ok-context-2pow24",
        set("context_length", Meta::U32(1 << 24)),
    ));
    files.push(("bad-layers-zero", set("block_count", Meta::U32(0))));
    files.push((
        "bad-layers-huge",
        set("block_count", Meta::U32(1_000_000_000)),
    ));
    files.push((
        "bad-layers-more-than-tensors",
        set("block_count", Meta::U32(2)),
    ));
    files.push((
        "bad-embedding-huge",
        set("embedding_length", Meta::U64(1 << 40)),
    ));
    files.push((
        "bad-embedding-mismatch",
        set("embedding_length", Meta::U32(64)),
    ));
    files.push(("bad-ffn-zero", set("feed_forward_length", Meta::U32(0))));
    files.push((
        "bad-rms-eps-negative",
        set("attention.layer_norm_rms_epsilon", Meta::F32(-1.0)),
    ));
    files.push((
        "bad-rms-eps-nan",
        set("attention.layer_norm_rms_epsilon", Meta::F32(f32::NAN)),
    ));
    files.push((
        "bad-rms-eps-missing",
        with(|w| w.remove(&key("attention.layer_norm_rms_epsilon"))),
    ));
    files.push((
        "bad-embedding-length-missing",
        with(|w| w.remove(&key("embedding_length"))),
    ));
    files.push(("bad-vocab-size-zero", set("vocab_size", Meta::U32(0))));
    files.push(("bad-vocab-size-mismatch", set("vocab_size", Meta::U32(7))));
    files.push((
        "bad-architecture-unknown",
        with(|w| w.set("general.architecture", Meta::str("mamba"))),
    ));
    files.push((
        "bad-architecture-not-string",
        with(|w| w.set("general.architecture", Meta::U32(1))),
    ));
    files.push((
        "bad-architecture-missing",
        with(|w| w.remove("general.architecture")),
    ));
    files.push((
        "bad-tensor-missing",
        with(|w| w.tensors.retain(|t| t.name != "blk.0.ffn_up.weight")),
    ));
    files.push((
        "bad-tensor-wrong-shape",
        with(|w| {
            let t = w.tensor_mut("blk.0.ffn_up.weight").expect("in the base");
            t.dims = vec![t.dims[1], t.dims[0]];
        }),
    ));
    files.push((
        "ok-norm-q8_0",
        with(|w| {
            let t = w.tensor_mut("output_norm.weight").expect("in the base");
            t.type_id = DType::Q8_0 as u32;
            t.data = vec![0; DType::Q8_0.bytes_for(32).expect("one block")];
        }),
    ));

    // Tokenizers that cannot be built.
    let tok = |k: &str, v: Meta| {
        let k = format!("tokenizer.ggml.{k}");
        with(move |w| w.set(&k, v))
    };
    files.push((
        "bad-tokenizer-vocab-empty",
        tok("tokens", Meta::array(ValueType::String, [])),
    ));
    files.push((
        "bad-tokenizer-tokens-not-strings",
        tok("tokens", Meta::i32s([1, 2])),
    ));
    files.push((
        "bad-tokenizer-model-unknown",
        tok("model", Meta::str("bert")),
    ));
    files.push((
        "bad-tokenizer-scores-short",
        tok("scores", Meta::f32s([0.0; 3])),
    ));
    files.push((
        "bad-tokenizer-types-short",
        tok("token_type", Meta::i32s([1; 3])),
    ));
    files.push((
        "ok-tokenizer-bos-out-of-range",
        tok("bos_token_id", Meta::U32(1 << 30)),
    ));
    files.push((
        "ok-tokenizer-bos-negative",
        tok("bos_token_id", Meta::I32(-1)),
    ));
    files.push((
        "bad-tokenizer-model-missing",
        with(|w| w.remove("tokenizer.ggml.model")),
    ));
    files.push((
        "ok-tokenizer-all-control",
        tok("token_type", Meta::i32s([3; 25])),
    ));
    let bpe = |k: &str, v: Meta| {
        let mut w = tiny_model(&TinySpec {
            arch: "qwen2",
            bpe: true,
            tied: true,
            ..TinySpec::llama(DType::Q8_0)
        });
        w.set(&format!("tokenizer.ggml.{k}"), v);
        w.to_bytes()
    };
    files.push((
        "bad-tokenizer-merge-malformed",
        bpe("merges", Meta::strings(["Ġt"])),
    ));
    files.push((
        "bad-tokenizer-pre-unknown",
        bpe("pre", Meta::str("no-such-pre")),
    ));
    files.push((
        "bad-tokenizer-merges-missing",
        bpe("merges", Meta::array(ValueType::U32, [])),
    ));

    files
        .into_iter()
        .map(|(name, bytes)| (name.to_owned(), bytes))
        .collect()
}

/// An array of arrays, `depth` deep, holding one u8 at the bottom.
fn deep_array(depth: usize) -> Meta {
    (0..depth).fold(Meta::array(ValueType::U8, [Meta::U8(7)]), |inner, _| {
        Meta::array(ValueType::Array, [inner])
    })
}

const TEXTS: &[&str] = &[
    "Once upon a time, there was a little girl named Lily.",
    "Hello, world! 123 4567 ",
    "<|im_start|>user\nhi<|im_end|><s></s>",
    "  leading spaces\n\ttabs\r\n",
    "ünïcödé 日本語 🦀 Ωμέγα",
    "\u{2581}mark and don't it's",
    "",
];

fn tokenizer_seeds(root: &Path) {
    let encode = root.join("tokenizer_encode");
    let decode = root.join("tokenizer_decode");
    reset(&encode);
    reset(&decode);
    for (which, t) in tokenizers::all().iter().enumerate() {
        for (i, text) in TEXTS.iter().enumerate() {
            let flags = (i % 4) as u8;
            let mut seed = vec![which as u8, flags];
            seed.extend_from_slice(text.as_bytes());
            write(&encode, &format!("t{which}-text{i}"), &seed);

            let mut seed = vec![which as u8];
            for id in t.encode(text, flags & 1 != 0, flags & 2 != 0) {
                seed.extend((id as u16).to_le_bytes());
            }
            write(&decode, &format!("t{which}-ids{i}"), &seed);
        }
    }
}
