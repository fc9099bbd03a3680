//! Storage tiers change where bytes wait, never a result: embeddings read from flash or
//! copied to DRAM, and a KV cache spilled to a file past its newest positions, give the
//! logits and greedy ids of the all-DRAM run bit for bit, and count the bytes they read.

mod common;

use common::*;
use tern::engine::{BackendKind, Engine, EngineOptions, GenerateOptions, KvType, KvTypes, Tier};
use tern_core::sample::SamplerParams;

/// One way of placing the embeddings and the KV cache.
#[derive(Clone, Copy, Debug)]
struct Tiers {
    embeddings: Tier,
    kv_dram_tokens: Option<usize>,
    n_batch: usize,
}

/// The all-DRAM run: rows read in place from the mapped file, the whole cache in memory.
const BASELINE: Tiers = Tiers {
    embeddings: Tier::Mapped,
    kv_dram_tokens: None,
    n_batch: 512,
};

const VARIANTS: [Tiers; 4] = [
    Tiers {
        embeddings: Tier::Flash,
        kv_dram_tokens: None,
        n_batch: 512,
    },
    Tiers {
        embeddings: Tier::Dram,
        kv_dram_tokens: Some(0),
        n_batch: 512,
    },
    // Small batches, so steps straddle the spill blocks and spill as they write.
    Tiers {
        embeddings: Tier::Flash,
        kv_dram_tokens: Some(8),
        n_batch: 5,
    },
    Tiers {
        embeddings: Tier::Mapped,
        kv_dram_tokens: Some(40),
        n_batch: 7,
    },
];

fn load_tiered(path: &str, backend: BackendKind, kv: KvTypes, tiers: Tiers) -> Engine {
    let options = EngineOptions {
        n_ctx: Some(256),
        n_batch: tiers.n_batch,
        cache_type_k: kv.keys,
        cache_type_v: kv.values,
        backend,
        threads: 2,
        embeddings: Some(tiers.embeddings),
        kv_dram_tokens: tiers.kv_dram_tokens,
        kv_spill_dir: Some(std::env::temp_dir()),
        ..EngineOptions::default()
    };
    Engine::load(repo(path), options).unwrap_or_else(|e| panic!("{path} {tiers:?}: {e}"))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Teacher-forced logits of `tokens` and the greedy continuation of its first 4 tokens for
/// 150 steps (past every variant's DRAM positions), in `tiers`.
fn run(
    path: &str,
    backend: BackendKind,
    kv: KvTypes,
    tiers: Tiers,
    tokens: &[u32],
) -> (Vec<u32>, Vec<u32>) {
    let engine = load_tiered(path, backend, kv, tiers);
    let logits = engine.session().unwrap().eval_all(tokens).unwrap();
    let options = GenerateOptions {
        max_tokens: 150,
        sampler: SamplerParams {
            temperature: 0.0,
            ..SamplerParams::default()
        },
    };
    let mut session = engine.session().unwrap();
    let generated = session
        .generate_tokens(&tokens[..4], &options, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    let io = session.flash_io();
    let fed = session.n_past();
    let row_bytes = engine.memory().embeddings / engine.config().n_vocab as u64;
    match tiers.embeddings {
        Tier::Flash => assert_eq!(io.embedding_bytes_read, fed as u64 * row_bytes),
        _ => assert_eq!(io.embedding_bytes_read, 0, "{tiers:?}"),
    }
    // The DRAM ring holds the blocks of 32 positions that cover `n`, and one more.
    let spills = tiers
        .kv_dram_tokens
        .is_some_and(|n| fed > (n.div_ceil(32) + 1) * 32);
    assert_eq!(
        io.kv_bytes_read > 0,
        spills,
        "{path} {kv} {tiers:?}: {fed} fed, {io:?}"
    );
    assert_eq!(
        session.memory().kv_flash > 0,
        spills,
        "{path} {kv} {tiers:?}"
    );
    (bits(&logits), generated.generated)
}

fn check_model(path: &str, backend: BackendKind, kv: KvTypes, tokens: &[u32]) {
    let (logits, ids) = run(path, backend, kv, BASELINE, tokens);
    for tiers in VARIANTS {
        let (l, i) = run(path, backend, kv, tiers, tokens);
        assert!(
            l == logits,
            "{path} {backend:?} {kv:?} {tiers:?}: logits differ"
        );
        assert_eq!(
            i, ids,
            "{path} {backend:?} {kv:?} {tiers:?}: greedy ids differ"
        );
    }
}

#[test]
fn stories260k_results_are_the_same_in_every_tier() {
    let engine = load("models/stories260K-q8_0.gguf");
    let mut tokens = engine
        .session()
        .unwrap()
        .encode_prompt("Once upon a time, there was a little girl named Lily.")
        .unwrap();
    // Long enough to spill several blocks when teacher forcing too.
    while tokens.len() < 100 {
        tokens.extend_from_within(1..tokens.len().min(20));
    }
    for path in [
        "models/stories260K-f32.gguf",
        "models/stories260K-q8_0.gguf",
    ] {
        for backend in CPU_BACKENDS {
            // Heads of 8: too narrow for q8_0 blocks, not for FP8 values.
            let fp8_values = KvTypes {
                keys: KvType::F16,
                values: KvType::Fp8,
            };
            for kv in [KvType::F16, KvType::F32].map(KvTypes::same) {
                check_model(path, backend, kv, &tokens);
            }
            check_model(path, backend, fp8_values, &tokens);
        }
    }
}

#[test]
fn fixture_results_are_the_same_in_every_tier() {
    // A quantized cache spills its rows as stored: q8_0 blocks and FP8 bytes.
    let quantized = [
        KvTypes::same(KvType::Q8_0),
        KvTypes {
            keys: KvType::Q8_0,
            values: KvType::Fp8,
        },
    ];
    for arch in ["llama", "qwen2", "qwen3"] {
        for kind in ["q8_0", "q4_k_m"] {
            let dir = format!("testdata/fixtures/{arch}");
            let tokens = npy_ids(&format!("{dir}/refs/llama_cpp.{kind}.tokens.npy"));
            let model = format!("{dir}/{arch}-{kind}.gguf");
            check_model(&model, BackendKind::Cpu, KvTypes::default(), &tokens);
            if kind == "q8_0" {
                for kv in quantized {
                    check_model(&model, BackendKind::Cpu, kv, &tokens);
                }
            }
        }
    }
    // The reference backend defines the quantized cache's results; it spills the same way.
    let tokens = npy_ids("testdata/fixtures/qwen3/refs/llama_cpp.q8_0.tokens.npy");
    check_model(
        "testdata/fixtures/qwen3/qwen3-q8_0.gguf",
        BackendKind::Reference,
        quantized[0],
        &tokens,
    );
}

#[test]
fn tier_options_that_cannot_work_are_clear_errors() {
    // The bundled model is no file to read rows from.
    assert_fails_with(
        &["run", "-p", "hi", "-n", "1", "--embeddings", "flash"],
        "embeddings on flash need a model loaded from a file",
    );
    let model = repo("models/stories260K-q8_0.gguf");
    let model = model.to_str().unwrap();
    assert_fails_with(
        &[
            "run",
            "-m",
            model,
            "-p",
            "hi",
            "-n",
            "1",
            "--kv-dram-tokens",
            "4",
            "--kv-spill-dir",
            "/proc/tern-no-such-dir",
        ],
        "cannot make a KV spill file in `/proc/tern-no-such-dir`",
    );
    // A spill directory alone means nothing.
    let out = tern(&["run", "-p", "hi", "--kv-spill-dir", "/tmp"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--kv-dram-tokens"),
        "{}",
        stderr(&out)
    );
}
