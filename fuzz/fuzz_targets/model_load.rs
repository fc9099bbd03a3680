//! Loading a model from a GGUF file in memory, then generating from it: any file either
//! fails to load with an error, or loads into an engine whose session runs a prompt and two
//! generated tokens. Seeds are tiny valid models of every architecture and hand-made bad
//! files, so mutations land in the metadata and tensor infos that loading checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::engine::{Engine, EngineOptions, GenerateOptions, ModelBytes};
use tern_core::sample::SamplerParams;

fuzz_target!(|data: &[u8]| {
    let options = EngineOptions {
        threads: 1,
        ..EngineOptions::default()
    };
    let engine = match Engine::from_bytes(ModelBytes::Owned(data.to_vec()), "fuzz".into(), options)
    {
        Ok(engine) => engine,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut session = match engine.session() {
        Ok(session) => session,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let generate = GenerateOptions {
        max_tokens: 2,
        sampler: SamplerParams::greedy(),
    };
    let n_vocab = engine.config().n_vocab as u32;
    match session.generate("the a", &generate, |_| std::ops::ControlFlow::Continue(())) {
        Ok(stats) => assert!(stats.generated.iter().all(|&id| id < n_vocab)),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
