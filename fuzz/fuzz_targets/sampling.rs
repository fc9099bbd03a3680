//! Sampling with arbitrary settings, logits (NaN and infinities included) and history: bad
//! settings are refused up front, good ones always give an id inside the row, the same id
//! for the same seed, never a token the penalised logits rule out, and the argmax when
//! greedy.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tern_core::sample::{Sampler, SamplerParams, argmax};

#[derive(Arbitrary, Debug)]
struct Input {
    temperature: f32,
    top_k: u16,
    top_p: f32,
    min_p: f32,
    repeat_penalty: f32,
    repeat_last_n: u16,
    seed: u64,
    logits: Vec<f32>,
    recent: Vec<u32>,
    /// Lend a scratch buffer shorter than the row (sampling then falls back to greedy).
    short_scratch: bool,
}

fuzz_target!(|input: Input| {
    let params = SamplerParams {
        temperature: input.temperature,
        top_k: usize::from(input.top_k),
        top_p: input.top_p,
        min_p: input.min_p,
        repeat_penalty: input.repeat_penalty,
        repeat_last_n: match input.repeat_last_n {
            u16::MAX => usize::MAX,
            n => usize::from(n),
        },
        seed: input.seed,
    };
    let mut sampler = match (params.validate(), Sampler::new(params)) {
        (Ok(()), Ok(sampler)) => sampler,
        (Err(a), Err(b)) => {
            // Compared as text: the error carries the value, which may be NaN.
            assert_eq!(a.to_string(), b.to_string());
            assert!(!a.to_string().is_empty());
            return;
        }
        (a, b) => panic!("validate {a:?} but new {:?}", b.map(|_| ())),
    };
    let original = input.logits;
    let n = original.len();
    let scratch_len = if input.short_scratch { n / 2 } else { n };

    let mut twin = sampler.clone();
    let (mut a, mut b) = (original.clone(), original.clone());
    let mut scratch = vec![0u32; scratch_len];
    let id = sampler.sample(&mut a, &input.recent, &mut scratch);
    let again = twin.sample(&mut b, &input.recent, &mut scratch);
    assert_eq!(id, again, "same seed, same settings, different ids");

    if n == 0 {
        assert_eq!(id, 0);
        return;
    }
    let id = id as usize;
    assert!(id < n, "id {id} outside a row of {n}");
    let logits = penalised(&original, &input.recent, &params);
    if let Some(first_inf) = logits.iter().position(|&l| l == f32::INFINITY) {
        assert_eq!(id, first_inf, "the first +inf wins");
    } else if logits.iter().any(|&l| l > f32::NEG_INFINITY) {
        assert!(
            logits[id] > f32::NEG_INFINITY,
            "drew {} at {id}",
            logits[id]
        );
    } else {
        assert_eq!(id, 0);
    }
    if params.temperature == 0.0 || input.short_scratch {
        // Greedy leaves the penalised logits in place; the pick is their argmax.
        assert_eq!(a, logits, "penalised logits differ");
        assert_eq!(id, argmax(&a) as usize);
    }
});

/// The logits after the repetition penalty, computed independently: NaN as -inf, then each
/// distinct in-range id of the window divided (positive) or multiplied (otherwise) once. A
/// tiny penalty can overflow a finite logit to infinity.
fn penalised(logits: &[f32], recent: &[u32], p: &SamplerParams) -> Vec<f32> {
    let mut out: Vec<f32> = logits
        .iter()
        .map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l })
        .collect();
    if p.repeat_penalty == 1.0 || p.repeat_last_n == 0 {
        return out;
    }
    let window = &recent[recent.len().saturating_sub(p.repeat_last_n)..];
    let mut seen = std::collections::HashSet::new();
    for &id in window {
        if let Some(l) = out.get_mut(id as usize)
            && seen.insert(id)
        {
            *l = if *l <= 0.0 {
                *l * p.repeat_penalty
            } else {
                *l / p.repeat_penalty
            };
        }
    }
    out
}
