//! Choosing the next token from a row of logits, without allocating.
//!
//! The chain follows llama.cpp's sampler: repetition penalty, top-k, top-p, min-p,
//! temperature, then a draw from the softmax with a seeded [`Xoshiro256`]. A temperature of
//! zero is greedy decoding (after the penalty), the same as llama2.c's `sample_argmax`.
//!
//! The caller lends a `u32` scratch buffer as long as the vocabulary; the decode loop keeps
//! one and reuses it, so sampling costs no heap and works on firmware without `alloc`.

mod filters;
mod params;
pub mod rng;

pub use params::{SampleError, SamplerParams};
pub use rng::Xoshiro256;

/// Draws token ids according to [`SamplerParams`], carrying the random state from one
/// call to the next.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplerParams,
    rng: Xoshiro256,
}

impl Sampler {
    /// A sampler whose random stream starts at `params.seed`.
    pub fn new(params: SamplerParams) -> Result<Sampler, SampleError> {
        params.validate()?;
        Ok(Sampler {
            rng: Xoshiro256::seed_from_u64(params.seed),
            params,
        })
    }

    /// The settings this sampler was built with.
    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Picks the next token id.
    ///
    /// `recent`: previously seen ids, oldest first; the penalty looks at the last
    /// `repeat_last_n` of them. `scratch`: at least `logits.len()` entries, contents ignored.
    /// `logits` is modified in place (penalised, and overwritten by weights where sampled).
    ///
    /// Never panics. NaN logits count as `-inf`. If every logit is `-inf` the result is `0`;
    /// if some are `+inf` the first of those wins. When `scratch` is shorter than `logits`
    /// the penalty is still applied but the result is the greedy [`argmax`], whatever the
    /// temperature. Ids past `u32::MAX - 1` are never produced.
    /// Each non-greedy call advances the random stream by exactly one draw.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32], scratch: &mut [u32]) -> u32 {
        let n = logits.len().min(u32::MAX as usize);
        let logits = &mut logits[..n];
        let p = self.params;
        filters::sanitize(logits);
        if p.repeat_penalty != 1.0 && p.repeat_last_n > 0 {
            let window = &recent[recent.len().saturating_sub(p.repeat_last_n)..];
            filters::repeat_penalty(logits, window, p.repeat_penalty, scratch);
        }
        if p.temperature == 0.0 || scratch.len() < n {
            return argmax(logits);
        }
        let u = self.rng.next_f64();
        let cands = &mut scratch[..n];
        let (count, max) = filters::gather(logits, cands);
        if count == 0 || max == f32::INFINITY {
            return argmax(logits);
        }
        let mut count = filters::top_k(logits, &mut cands[..count], p.top_k);
        count = filters::top_p(logits, &mut cands[..count], max, p.top_p);
        count = filters::min_p(logits, &mut cands[..count], max, p.min_p);
        filters::draw(logits, &cands[..count], max, p.temperature, u)
    }
}

/// Index of the largest logit, the first one on ties (llama2.c's `sample_argmax`).
///
/// NaN counts as `-inf`; an empty or all-`-inf` row gives `0`. Only the first
/// `u32::MAX` entries are looked at.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_logit = f32::NEG_INFINITY;
    for (id, &l) in (0u32..).zip(logits.iter().take(u32::MAX as usize)) {
        if l > best_logit {
            best = id;
            best_logit = l;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn sampler(f: impl FnOnce(&mut SamplerParams)) -> Sampler {
        let mut p = SamplerParams::default();
        f(&mut p);
        Sampler::new(p).unwrap()
    }

    fn sample_once(s: &mut Sampler, logits: &[f32], recent: &[u32]) -> u32 {
        let mut l = logits.to_vec();
        let mut scratch = vec![0u32; l.len()];
        s.sample(&mut l, recent, &mut scratch)
    }

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| libm::sinf(i as f32 * 0.37) * 3.0).collect()
    }

    #[test]
    fn argmax_first_on_ties_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, -5.0, f32::NAN]), 1);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 4]), 0);
        assert_eq!(argmax(&[f32::NAN; 3]), 0);
        assert_eq!(argmax(&[0.0, f32::INFINITY, f32::INFINITY]), 1);
    }

    #[test]
    fn new_rejects_invalid_params() {
        let p = SamplerParams {
            top_p: 0.0,
            ..SamplerParams::default()
        };
        assert!(matches!(Sampler::new(p), Err(SampleError::TopP(_))));
    }

    #[test]
    fn same_seed_same_sequence() {
        let logits = ramp(100);
        let run = |seed| {
            let mut s = sampler(|p| {
                p.seed = seed;
                p.temperature = 1.5;
                p.top_k = 0;
                p.min_p = 0.0;
            });
            (0..200)
                .map(|_| sample_once(&mut s, &logits, &[]))
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
        // Sampling at temperature 1.5 over 100 tokens is not stuck on one id.
        assert!(a.iter().any(|&id| id != a[0]));
    }

    #[test]
    fn stream_is_stable_across_platforms() {
        // Pins the exact output for one seed so a change to the generator or the chain's
        // arithmetic is noticed; these values come from this implementation.
        let logits = ramp(50);
        let mut s = sampler(|p| {
            p.seed = 1234;
            p.temperature = 1.0;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 0.0;
        });
        let got: Vec<u32> = (0..8).map(|_| sample_once(&mut s, &logits, &[])).collect();
        assert_eq!(got, PINNED);
    }

    const PINNED: [u32; 8] = [2, 38, 36, 39, 3, 39, 21, 5];

    #[test]
    fn two_logit_frequencies_match_softmax() {
        let logits = [0.3f32, 1.1];
        let p1 = 1.0 / (1.0 + libm::exp(-(1.1f64 - 0.3)));
        let mut s = sampler(|p| {
            p.seed = 99;
            p.temperature = 1.0;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 0.0;
        });
        let draws = 100_000;
        let ones = (0..draws)
            .filter(|_| sample_once(&mut s, &logits, &[]) == 1)
            .count();
        let freq = ones as f64 / draws as f64;
        assert!((freq - p1).abs() < 0.01, "freq {freq}, softmax {p1}");
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let logits = [0.0f32, 1.0];
        let freq = |t| {
            let mut s = sampler(|p| {
                p.temperature = t;
                p.top_k = 0;
                p.top_p = 1.0;
                p.min_p = 0.0;
            });
            (0..20_000)
                .filter(|_| sample_once(&mut s, &logits, &[]) == 1)
                .count() as f64
                / 20_000.0
        };
        let expect = |t: f64| 1.0 / (1.0 + libm::exp(-1.0 / t));
        for t in [0.5f32, 2.0] {
            let f = freq(t);
            assert!((f - expect(t.into())).abs() < 0.02, "t {t}: {f}");
        }
    }

    #[test]
    fn penalty_lowers_repeated_tokens() {
        let mut s = sampler(|p| {
            p.temperature = 0.0;
            p.repeat_penalty = 2.0;
            p.repeat_last_n = 3;
        });
        let mut logits = [2.0f32, -1.0, 0.5, 1.9, 0.0];
        let mut scratch = [0u32; 5];
        // Id 3 is outside the window of 3; id 0 repeats but is penalised once; 99 is ignored.
        let id = s.sample(&mut logits, &[3, 0, 99, 0, 1, 0], &mut scratch);
        assert_eq!(logits, [1.0, -2.0, 0.5, 1.9, 0.0]);
        assert_eq!(id, 3);
    }

    #[test]
    fn penalty_without_enough_scratch_matches() {
        let recent = [4, 1, 4, 2, 1, 7, 4];
        let run = |scratch_len: usize| {
            let mut s = sampler(|p| {
                p.temperature = 0.0;
                p.repeat_penalty = 1.3;
                p.repeat_last_n = usize::MAX;
            });
            let mut logits = ramp(6);
            let mut scratch = vec![0u32; scratch_len];
            let id = s.sample(&mut logits, &recent, &mut scratch);
            (id, logits)
        };
        assert_eq!(run(6), run(2));
    }

    #[test]
    fn short_scratch_falls_back_to_greedy() {
        let mut s = sampler(|p| p.temperature = 5.0);
        let mut logits = ramp(30);
        let expect = argmax(&logits);
        let mut scratch = [0u32; 4];
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits, &[], &mut scratch), expect);
        }
    }

    #[test]
    fn infinities_and_nans() {
        let mut s = sampler(|p| p.temperature = 1.0);
        assert_eq!(sample_once(&mut s, &[f32::NEG_INFINITY; 5], &[]), 0);
        assert_eq!(sample_once(&mut s, &[f32::NAN; 5], &[]), 0);
        assert_eq!(sample_once(&mut s, &[], &[]), 0);
        let inf = [0.0, f32::INFINITY, 3.0, f32::INFINITY];
        assert_eq!(sample_once(&mut s, &inf, &[]), 1);
        let one = [f32::NAN, f32::NEG_INFINITY, 2.0, f32::NAN];
        for _ in 0..50 {
            assert_eq!(sample_once(&mut s, &one, &[]), 2);
        }
    }

    #[test]
    fn top_p_tiny_is_argmax() {
        let logits = ramp(200);
        let mut s = sampler(|p| {
            p.temperature = 3.0;
            p.top_k = 0;
            p.top_p = 1e-6;
            p.min_p = 0.0;
        });
        for _ in 0..50 {
            assert_eq!(sample_once(&mut s, &logits, &[]), argmax(&logits));
        }
    }

    #[test]
    fn min_p_one_is_argmax() {
        let logits = ramp(200);
        let mut s = sampler(|p| {
            p.temperature = 3.0;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 1.0;
        });
        for _ in 0..50 {
            assert_eq!(sample_once(&mut s, &logits, &[]), argmax(&logits));
        }
    }

    #[test]
    fn top_k_limits_the_support() {
        let logits = [0.0f32, 5.0, 1.0, 4.9, 4.8, -3.0];
        let mut s = sampler(|p| {
            p.temperature = 10.0;
            p.top_k = 3;
            p.top_p = 1.0;
            p.min_p = 0.0;
        });
        let mut seen = [false; 6];
        for _ in 0..2_000 {
            seen[sample_once(&mut s, &logits, &[]) as usize] = true;
        }
        assert_eq!(seen, [false, true, false, true, true, false]);
    }

    fn finite_logits() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(-30.0f32..30.0, 1..300)
    }

    proptest! {
        #[test]
        fn greedy_is_argmax(logits in finite_logits()) {
            let mut s = Sampler::new(SamplerParams::greedy()).unwrap();
            prop_assert_eq!(sample_once(&mut s, &logits, &[]), argmax(&logits));
        }

        #[test]
        fn top_k_one_is_greedy(
            logits in finite_logits(),
            t in 0.0f32..100.0,
            top_p in 0.01f32..=1.0,
            seed in any::<u64>(),
        ) {
            let mut s = sampler(|p| {
                p.temperature = t;
                p.top_k = 1;
                p.top_p = top_p;
                p.seed = seed;
            });
            prop_assert_eq!(sample_once(&mut s, &logits, &[]), argmax(&logits));
        }

        #[test]
        fn never_panics(
            logits in prop::collection::vec(any::<f32>(), 0..200),
            recent in prop::collection::vec(0u32..250, 0..100),
            scratch_len in 0usize..220,
            t in prop_oneof![Just(0.0f32), 0.0f32..10.0, Just(f32::MIN_POSITIVE), Just(f32::MAX)],
            top_k in 0usize..50,
            top_p in prop_oneof![Just(1.0f32), f32::MIN_POSITIVE..=1.0],
            min_p in prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0],
            penalty in prop_oneof![Just(1.0f32), f32::MIN_POSITIVE..100.0, Just(f32::MAX)],
            last_n in prop_oneof![Just(usize::MAX), 0usize..120],
            seed in any::<u64>(),
        ) {
            let params = SamplerParams {
                temperature: t,
                top_k,
                top_p,
                min_p,
                repeat_penalty: penalty,
                repeat_last_n: last_n,
                seed,
            };
            let mut s = Sampler::new(params).unwrap();
            let mut l = logits.clone();
            let mut scratch = vec![7u32; scratch_len];
            let id = s.sample(&mut l, &recent, &mut scratch);
            prop_assert!(logits.is_empty() && id == 0 || (id as usize) < logits.len());
        }
    }
}
