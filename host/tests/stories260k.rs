//! stories260K against llama2.c's run.c and llama.cpp (testdata/stories260K).

mod common;

use common::*;
use tern::engine::{Engine, GenerateOptions, KvType};
use tern_core::sample::SamplerParams;

const F32: &str = "models/stories260K-f32.gguf";
const Q8_0: &str = "models/stories260K-q8_0.gguf";

#[test]
fn f32_prompt_ids_and_greedy_continuations_equal_runc() {
    for backend in backends() {
        greedy_continuations_equal_runc(&load_on(F32, KvType::F32, backend));
    }
}

fn greedy_continuations_equal_runc(engine: &Engine) {
    let reference = json("testdata/stories260K/reference.json");
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let mut session = engine.session().unwrap();
        let prompt_ids = session.encode_prompt(prompt).unwrap();
        assert_eq!(prompt_ids, ids(&case["prompt_ids"]), "prompt {prompt:?}");

        let options = GenerateOptions {
            max_tokens: case["max_new_tokens"].as_u64().unwrap() as usize,
            sampler: SamplerParams::greedy(),
        };
        let stats = session
            .generate_tokens(&prompt_ids, &options, |_| {
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(
            stats.generated,
            ids(&case["runc"]["generated_ids"]),
            "greedy ids for {prompt:?} on {}",
            engine.backend_name()
        );
        let text = engine
            .tokenizer()
            .decode(&[prompt_ids.as_slice(), &stats.generated].concat());
        assert_eq!(
            text,
            case["runc"]["text"].as_str().unwrap(),
            "text for {prompt:?}"
        );
    }
}

#[test]
fn f32_teacher_forced_logits_are_within_1e_4_of_runc() {
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    let runc = npy("testdata/stories260K/logits/once_upon_a_time.runc.npy");
    for backend in backends() {
        let engine = load_on(F32, KvType::F32, backend);
        let logits = engine.session().unwrap().eval_all(&tokens).unwrap();
        let worst = max_abs(&logits, &runc.data);
        eprintln!("stories260K F32 vs run.c on {backend:?}: max abs {worst:e}");
        assert!(worst <= 1e-4, "{backend:?}: max abs error {worst} > 1e-4");
    }
}

#[test]
fn q8_0_teacher_forced_logits_are_within_3_percent_of_llama_cpp() {
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    let reference = npy("testdata/stories260K/logits/once_upon_a_time.llama_cpp_q8_0.npy");
    for backend in backends() {
        // llama.cpp ran this file with an f32 KV cache.
        let engine = load_on(Q8_0, KvType::F32, backend);
        let logits = engine.session().unwrap().eval_all(&tokens).unwrap();
        let what = format!("stories260K Q8_0 on {backend:?}");
        let worst = assert_close_rows(&what, &logits, &reference, 0.03, 0.05);
        eprintln!("{what} vs llama.cpp: max row relative L2 {worst:e}");
    }
}

/// A prefill step and token-by-token decoding take different kernel paths (GEMM tiles and
/// token-split attention, GEMV and head-split attention), yet every row's arithmetic is the
/// same: results do not depend on how tokens were batched.
#[test]
fn decoding_in_one_step_or_token_by_token_gives_the_same_logits() {
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    for (model, kv) in [(F32, KvType::F32), (Q8_0, KvType::F16)] {
        for backend in backends() {
            let engine = load_on(model, kv, backend);
            let all = engine.session().unwrap().eval_all(&tokens).unwrap();
            let mut session = engine.session().unwrap();
            let n_vocab = engine.config().n_vocab;
            for (p, &t) in tokens.iter().enumerate() {
                let row = session.eval(&[t]).unwrap();
                let want = &all[p * n_vocab..(p + 1) * n_vocab];
                assert_eq!(row, want, "{model} on {backend:?}, position {p}");
            }
        }
    }
}
