//! stories260K against llama2.c's run.c and llama.cpp (testdata/stories260K).

mod common;

use common::*;
use tern::engine::GenerateOptions;
use tern_core::sample::SamplerParams;

const F32: &str = "models/stories260K-f32.gguf";
const Q8_0: &str = "models/stories260K-q8_0.gguf";

#[test]
fn f32_prompt_ids_and_greedy_continuations_equal_runc() {
    let engine = load(F32);
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
            "greedy ids for {prompt:?}"
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
    let engine = load(F32);
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    let runc = npy("testdata/stories260K/logits/once_upon_a_time.runc.npy");
    let logits = engine.session().unwrap().eval_all(&tokens).unwrap();
    let worst = max_abs(&logits, &runc.data);
    eprintln!("stories260K F32 vs run.c: max abs {worst:e}");
    assert!(worst <= 1e-4, "max abs error {worst} > 1e-4");
}

#[test]
fn q8_0_teacher_forced_logits_are_within_3_percent_of_llama_cpp() {
    let engine = load(Q8_0);
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    let reference = npy("testdata/stories260K/logits/once_upon_a_time.llama_cpp_q8_0.npy");
    let logits = engine.session().unwrap().eval_all(&tokens).unwrap();
    let worst = assert_close_rows("stories260K Q8_0", &logits, &reference, 0.03, 0.05);
    eprintln!("stories260K Q8_0 vs llama.cpp: max row relative L2 {worst:e}");
}

#[test]
fn decoding_in_one_step_or_token_by_token_gives_the_same_logits() {
    let engine = load(F32);
    let tokens = npy_ids("testdata/stories260K/logits/once_upon_a_time.tokens.npy");
    let all = engine.session().unwrap().eval_all(&tokens).unwrap();
    let mut session = engine.session().unwrap();
    let n_vocab = engine.config().n_vocab;
    for (p, &t) in tokens.iter().enumerate() {
        let row = session.eval(&[t]).unwrap();
        assert_eq!(row, &all[p * n_vocab..(p + 1) * n_vocab], "position {p}");
    }
}
