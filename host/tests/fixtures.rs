//! The tiny llama / qwen2 / qwen3 fixtures against transformers and llama.cpp
//! (testdata/fixtures; tolerances from the foundation issue).

mod common;

use common::*;
use tern::engine::{BackendKind, GenerateOptions, KvType};
use tern_core::sample::SamplerParams;

const ARCHS: [&str; 3] = ["llama", "qwen2", "qwen3"];
const QUANTIZED: [&str; 6] = ["q8_0", "q4_0", "q4_1", "q4_k_m", "q5_k_m", "q6_k"];

fn dir(arch: &str) -> String {
    format!("testdata/fixtures/{arch}")
}

fn teacher_forced(arch: &str, kind: &str, backend: BackendKind) -> Vec<f32> {
    let engine = load_on(
        &format!("{}/{arch}-{kind}.gguf", dir(arch)),
        KvType::F16,
        backend,
    );
    let tokens = npy_ids(&format!("{}/refs/llama_cpp.{kind}.tokens.npy", dir(arch)));
    engine.session().unwrap().eval_all(&tokens).unwrap()
}

#[test]
fn f32_files_are_within_2e_3_of_transformers() {
    for arch in ARCHS {
        let summary = json(&format!("{}/refs/summary.json", dir(arch)));
        let prompt_ids = ids(&summary["prompt_ids"]);
        let engine = load(&format!("{}/{arch}-f32.gguf", dir(arch)));
        let logits = engine.session().unwrap().eval_all(&prompt_ids).unwrap();
        let reference = npy(&format!("{}/refs/transformers.logits.npy", dir(arch)));
        let worst = reference
            .rows()
            .zip(logits.chunks_exact(reference.shape[1]))
            .map(|(b, a)| rel_l2(a, b))
            .fold(0f32, f32::max);
        eprintln!("{arch} F32 vs transformers: max row relative L2 {worst:e}");
        assert!(worst <= 2e-3, "{arch}: {worst}");
    }
}

/// Greedy continuations of every file on both backends equal llama.cpp's own for that file:
/// all 24 ids for F32 and F16; for quantized files, up to the first step where llama.cpp
/// itself chose between two logits closer than 0.05 (the foundation issue's margin), since at
/// a near-tie either pick is right and the continuations may part there.
#[test]
fn greedy_ids_equal_llama_cpp() {
    for backend in backends() {
        for arch in ARCHS {
            let summary = json(&format!("{}/refs/summary.json", dir(arch)));
            // The references start from transformers' prompt ids; for qwen2 they differ from
            // llama.cpp's own tokenization (its GGUF has all-zero SentencePiece scores).
            let prompt_ids = ids(&summary["prompt_ids"]);
            for kind in ["f32", "f16"].into_iter().chain(QUANTIZED) {
                let path = format!("{}/{arch}-{kind}.gguf", dir(arch));
                let engine = load_on(&path, KvType::F16, backend);
                let expected = ids(&summary["llama_cpp"][kind]["greedy_ids"]);
                let logits = npy(&format!("{}/refs/llama_cpp.{kind}.logits.npy", dir(arch)));
                // Step k picked from the logits after token `prompt + k - 1`. Float files
                // agree through near-ties too, so they are held to every id.
                let decisive = if matches!(kind, "f32" | "f16") {
                    expected.len()
                } else {
                    logits
                        .rows()
                        .skip(prompt_ids.len() - 1)
                        .take_while(|row| top2_margin(row) > 0.05)
                        .count()
                };
                let options = GenerateOptions {
                    max_tokens: expected.len(),
                    sampler: SamplerParams::greedy(),
                };
                let stats = engine
                    .session()
                    .unwrap()
                    .generate_tokens(&prompt_ids, &options, |_| {
                        std::ops::ControlFlow::Continue(())
                    })
                    .unwrap();
                let got = &stats.generated;
                let n = decisive.min(expected.len()).min(got.len());
                let what = format!("{arch} {kind} on {backend:?}");
                assert_eq!(got[..n], expected[..n], "{what}: the first {n} greedy ids");
                if got.len() < decisive.min(expected.len()) {
                    // Generation stops at BOS or EOS (as run.c); llama.cpp went on.
                    let last = got.last().copied();
                    let t = engine.tokenizer();
                    assert!(
                        last.is_some() && (last == t.bos() || last == t.eos()),
                        "{what}: stopped after {} ids without an end token",
                        got.len()
                    );
                }
            }
        }
    }
}

#[test]
fn f16_files_are_within_2e_3_of_llama_cpp() {
    for arch in ARCHS {
        let logits = teacher_forced(arch, "f16", BackendKind::default());
        let reference = npy(&format!("{}/refs/llama_cpp.f16.logits.npy", dir(arch)));
        let worst = reference
            .rows()
            .zip(logits.chunks_exact(reference.shape[1]))
            .map(|(b, a)| rel_l2(a, b))
            .fold(0f32, f32::max);
        eprintln!("{arch} F16 vs llama.cpp F16: max row relative L2 {worst:e}");
        assert!(worst <= 2e-3, "{arch}: {worst}");
    }
}

/// The foundation issue asks for 3% row-relative L2 and the same argmax wherever llama.cpp's
/// top-2 margin exceeds 0.05. Every backend follows ggml's arithmetic (RMSNorm's f64 sum,
/// activation rounding, SiLU, softmax, RoPE with glibc's `sinf`/`cosf`, the K-quant
/// matmuls' integer super-block sums), because on these random-weight models one ulp that
/// moves an activation across a quantization step grows into percent-level drift: Q5_K and
/// Q6_K files come out within 4e-7 of llama.cpp on the CPU backend and bit for bit on the
/// reference (the CPU backend's attention sums in its own order); the Vulkan backend computes
/// the reference's bits. What remains sits in matmuls ggml runs through other kernels
/// (repacked Q4_0/Q4_K GEMM, tinyBLAS Q8_0, vec_dot Q4_1), up to 2.9% (qwen2 q4_k_m on the
/// CPU backend).
#[test]
fn quantized_files_track_llama_cpp() {
    for backend in backends() {
        for arch in ARCHS {
            for kind in QUANTIZED {
                let logits = teacher_forced(arch, kind, backend);
                let reference = npy(&format!("{}/refs/llama_cpp.{kind}.logits.npy", dir(arch)));
                let what = format!("{arch} {kind} on {backend:?}");
                let worst = assert_close_rows(&what, &logits, &reference, 0.03, 0.05);
                eprintln!("{what} vs llama.cpp: max row relative L2 {worst:e}");
            }
        }
    }
}
