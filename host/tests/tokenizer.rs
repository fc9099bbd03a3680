//! Tokenizers read from real GGUF files must give llama.cpp's ids.
//!
//! - stories260K (SentencePiece): the tokenizer vectors and prompts in
//!   `testdata/stories260K/reference.json`, and the reference texts decoded back.
//! - the llama / qwen2 / qwen3 fixtures (SentencePiece): `refs/summary.json` vectors.
//! - `testdata/gpt2_tokenizer/` (byte-level BPE, made by `scripts/gpt2_tokenizer/`): ids,
//!   pieces, BOS policy and end-of-generation ids recorded from llama.cpp, per pre-tokenizer.
//! - malformed tokenizer metadata is an error, never a panic.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use tern::tokenizer::{StreamDecoder, Tokenizer, TokenizerError, TokenizerModel};
use tern_core::gguf::{Gguf, ValueType};
use tern_core::testing::gguf_writer::{GgufWriter, Meta};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read_json(path: &str) -> Json {
    let text = std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn load(path: &Path) -> Tokenizer {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let gguf = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&gguf).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids(v: &Json) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

fn stream_decode(t: &Tokenizer, ids: &[u32]) -> String {
    let mut s = StreamDecoder::new(t);
    let mut out: String = ids.iter().map(|&i| s.push(i)).collect();
    out.push_str(&s.finish());
    out
}

#[test]
fn stories260k_vectors_match_llama_cpp() {
    let reference = read_json("testdata/stories260K/reference.json");
    for file in [
        "models/stories260K-f32.gguf",
        "models/stories260K-q8_0.gguf",
    ] {
        let t = load(&repo(file));
        assert_eq!(t.model(), TokenizerModel::Spm);
        assert_eq!((t.n_vocab(), t.bos(), t.eos()), (512, Some(1), Some(2)));
        assert!(t.add_bos());
        let vectors = reference["tokenizer_vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 13);
        for v in vectors {
            let text = v["text"].as_str().unwrap();
            let expected = ids(&v["llama_cpp_f32_ids"]);
            assert_eq!(
                ids(&v["runc_ids"]),
                expected,
                "{text:?}: the references disagree"
            );
            assert_eq!(t.encode(text, true, false), expected, "{file}: {text:?}");
            // Parsing special text changes nothing for plain text.
            assert_eq!(t.encode(text, true, true), expected, "{file}: {text:?}");
            assert_eq!(t.decode(&expected), text, "{file}: decode {text:?}");
        }
    }
}

#[test]
fn stories260k_prompts_and_generations_round_trip() {
    let reference = read_json("testdata/stories260K/reference.json");
    let t = load(&repo("models/stories260K-f32.gguf"));
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let prompt_ids = ids(&case["prompt_ids"]);
        assert_eq!(t.encode(prompt, true, false), prompt_ids, "{prompt:?}");
        for implementation in ["llama_cpp_f32", "hf_transformers"] {
            assert_eq!(ids(&case[implementation]["prompt_ids"]), prompt_ids);
        }
        // run.c's text is the prompt followed by the generation, decoded after BOS.
        let generated = ids(&case["runc"]["generated_ids"]);
        let all: Vec<u32> = prompt_ids.iter().chain(&generated).copied().collect();
        let text = case["runc"]["text"].as_str().unwrap();
        assert_eq!(t.decode(&all), text, "{prompt:?}");
        assert_eq!(stream_decode(&t, &all), text, "{prompt:?}");
        let mut after_prompt = StreamDecoder::after(&t, &prompt_ids);
        let mut continuation: String = generated.iter().map(|&i| after_prompt.push(i)).collect();
        continuation.push_str(&after_prompt.finish());
        assert_eq!(format!("{prompt}{continuation}"), text, "{prompt:?}");
    }
}

#[test]
fn fixture_vectors_match_llama_cpp() {
    let mut checked = 0;
    for arch in ["llama", "qwen2", "qwen3"] {
        let summary = read_json(&format!("testdata/fixtures/{arch}/refs/summary.json"));
        let dir = repo(&format!("testdata/fixtures/{arch}"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{arch}: no GGUF files");
        for file in &files {
            let t = load(file);
            // The prompt ids come from transformers, whose qwen2 tokenizer does not give
            // llama.cpp's ids for this vocabulary (compare `hf_ids` there); skip that one.
            if arch != "qwen2" {
                let prompt = summary["prompt"].as_str().unwrap();
                assert_eq!(t.encode(prompt, true, false), ids(&summary["prompt_ids"]));
            }
            for v in summary["tokenizer_vectors"].as_array().unwrap() {
                let text = v["text"].as_str().unwrap();
                let expected = ids(&v["llama_cpp_ids"]);
                assert_eq!(
                    t.encode(text, true, false),
                    expected,
                    "{}: {text:?}",
                    file.display()
                );
                assert_eq!(
                    t.decode(&expected),
                    text,
                    "{}: decode {text:?}",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} vectors");
}

#[test]
fn gpt2_vocab_matches_llama_cpp() {
    let reference = read_json("testdata/gpt2_tokenizer/reference.json");
    let pieces: Vec<Vec<u8>> = reference["pieces_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex(h.as_str().unwrap()))
        .collect();
    let variants = reference["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 4);
    for variant in variants {
        let file = variant["file"].as_str().unwrap();
        let t = load(&repo(&format!("testdata/gpt2_tokenizer/{file}")));
        let info = &variant["llama_cpp"];
        assert_eq!(t.model(), TokenizerModel::Bpe);
        assert_eq!(t.pre_tokenizer(), variant["pre"].as_str());
        assert_eq!(t.n_vocab() as u64, reference["n_vocab"].as_u64().unwrap());
        assert_eq!(t.bos().map(u64::from), info["bos"].as_u64(), "{file}");
        assert_eq!(t.eos().map(u64::from), info["eos"].as_u64(), "{file}");
        assert_eq!(t.add_bos(), info["add_bos"].as_bool().unwrap(), "{file}");
        assert_eq!(
            t.end_of_generation_ids(),
            ids(&info["end_of_generation"]),
            "{file}"
        );

        for (id, piece) in pieces.iter().enumerate() {
            assert_eq!(
                &*t.token_bytes(id as u32),
                &piece[..],
                "{file}: piece of {id}"
            );
        }

        let cases = variant["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 44);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let add_special = case["add_special"].as_bool().unwrap();
            let parse_special = case["parse_special"].as_bool().unwrap();
            let expected = ids(&case["llama_cpp_ids"]);
            let got = t.encode(text, add_special, parse_special);
            assert_eq!(
                got, expected,
                "{file}: {text:?} add_special={add_special} parse_special={parse_special}"
            );
            if !parse_special {
                // Nothing is parsed as a control token, so the text comes back whole.
                assert_eq!(t.decode(&got), text, "{file}: decode {text:?}");
            }
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn from_kvs(kvs: &[(&str, Meta)]) -> Result<Tokenizer, TokenizerError> {
    let writer = kvs.iter().fold(GgufWriter::new(), |w, (key, value)| {
        w.kv(key, value.clone())
    });
    let bytes = writer.to_bytes();
    let gguf = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("test file does not parse: {e}"));
    Tokenizer::from_gguf(&gguf)
}

#[test]
fn bad_metadata_is_an_error() {
    let tokens = || Meta::strings(["<unk>", "<s>", "</s>", "a"]);

    // A well-formed file loads.
    let ok = from_kvs(&[
        ("tokenizer.ggml.model", Meta::str("llama")),
        ("tokenizer.ggml.tokens", tokens()),
    ])
    .unwrap();
    assert_eq!(ok.n_vocab(), 4);

    assert_eq!(
        from_kvs(&[("tokenizer.ggml.model", Meta::str("llama"))]).unwrap_err(),
        TokenizerError::MissingKey("tokenizer.ggml.tokens")
    );
    assert_eq!(
        from_kvs(&[("tokenizer.ggml.tokens", tokens())]).unwrap_err(),
        TokenizerError::MissingKey("tokenizer.ggml.model")
    );
    assert_eq!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("t5")),
            ("tokenizer.ggml.tokens", tokens())
        ])
        .unwrap_err(),
        TokenizerError::UnknownModel("t5".into())
    );
    assert_eq!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("llama")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.scores", Meta::f32s([0.0; 3])),
        ])
        .unwrap_err(),
        TokenizerError::LengthMismatch {
            key: "tokenizer.ggml.scores",
            found: 3,
            expected: 4
        }
    );
    assert!(matches!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("llama")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.token_type", Meta::i32s([1; 5])),
        ]),
        Err(TokenizerError::LengthMismatch {
            key: "tokenizer.ggml.token_type",
            found: 5,
            ..
        })
    ));
    assert!(matches!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("llama")),
            ("tokenizer.ggml.tokens", Meta::U32(4))
        ]),
        Err(TokenizerError::WrongType {
            key: "tokenizer.ggml.tokens",
            ..
        })
    ));
    assert!(matches!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("llama")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.scores", Meta::strings(["x"; 4])),
        ]),
        Err(TokenizerError::WrongType {
            key: "tokenizer.ggml.scores",
            ..
        })
    ));
    assert!(matches!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::U32(1)),
            ("tokenizer.ggml.tokens", tokens())
        ]),
        Err(TokenizerError::WrongType {
            key: "tokenizer.ggml.model",
            ..
        })
    ));
    assert_eq!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("gpt2")),
            ("tokenizer.ggml.tokens", tokens())
        ])
        .unwrap_err(),
        TokenizerError::MissingKey("tokenizer.ggml.merges")
    );
    assert_eq!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("gpt2")),
            ("tokenizer.ggml.pre", Meta::str("no-such-pre")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.merges", Meta::array(ValueType::String, [])),
        ])
        .unwrap_err(),
        TokenizerError::UnknownPreTokenizer("no-such-pre".into())
    );
    assert!(matches!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("gpt2")),
            ("tokenizer.ggml.tokens", tokens()),
            ("tokenizer.ggml.merges", Meta::strings(["a b", "ab"])),
        ]),
        Err(TokenizerError::BadMerge { index: 1, .. })
    ));
    assert_eq!(
        from_kvs(&[
            ("tokenizer.ggml.model", Meta::str("llama")),
            ("tokenizer.ggml.tokens", Meta::array(ValueType::String, []))
        ])
        .unwrap_err(),
        TokenizerError::EmptyVocab
    );
    // Errors say what is wrong.
    let message = TokenizerError::MissingKey("tokenizer.ggml.tokens").to_string();
    assert!(message.contains("tokenizer.ggml.tokens"), "{message}");
}

#[test]
fn ids_out_of_range_decode_to_nothing() {
    let t = load(&repo("models/stories260K-f32.gguf"));
    assert_eq!(t.decode(&[1, 403, u32::MAX]), "Once");
    assert!(t.token_bytes(512).is_empty());
    assert!(!t.is_end_of_generation(1));
    assert!(t.is_end_of_generation(2));
}
