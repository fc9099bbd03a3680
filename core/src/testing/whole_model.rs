//! The reference backend's run of a whole model, which every device backend's whole-model
//! tests hold their sessions to, and the checks those tests share.
//!
//! A device is fed the reference's own greedy tokens (teacher forcing), so a step that
//! drifts cannot change the next step's input and every step compares like with like. Each
//! backend's tests read the model file (that needs `std`, so it stays in their own support
//! module), run [`ReferenceRun::new`], then replay [`ReferenceRun::steps`] on the device and
//! hold each step's logits to the reference's: bit for bit with [`assert_same_bits`] where
//! the device computes in the reference's order, within a [`rel_l2`] distance where it does
//! not.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Display;

use super::dense_cache::dense_cache;
use crate::arena::Arena;
use crate::backend::reference::Reference;
use crate::backend::{Backend, Sequential};
use crate::exec::Runner;
use crate::gguf::Gguf;
use crate::kv::{KvCache, KvType};
use crate::model::{LayerWeights, Model, ModelConfig, WeightView};
use crate::plan::{LogitRows, Plan};
use crate::sample::argmax;

/// The architectures of `testdata/fixtures`, one folder each.
const FIXTURE_ARCHS: [&str; 3] = ["llama", "qwen2", "qwen3"];

/// The weight formats every architecture's fixtures come in (Q5_0 and Q8_0 appear inside
/// the K-quant mixes).
const FIXTURE_KINDS: [&str; 8] = [
    "f32", "f16", "q8_0", "q4_0", "q4_1", "q4_k_m", "q5_k_m", "q6_k",
];

/// Every fixture file, relative to the repository root, architecture by architecture: each
/// weight format, both RoPE styles, biases, q/k norms, grouped heads. A device that passes
/// on all of them runs every op the model code plans.
pub fn fixture_paths() -> impl Iterator<Item = String> {
    FIXTURE_ARCHS.into_iter().flat_map(|arch| {
        FIXTURE_KINDS
            .into_iter()
            .map(move |kind| format!("testdata/fixtures/{arch}/{arch}-{kind}.gguf"))
    })
}

/// The reference backend over one model and one cache: steps it in order.
struct ReferenceSteps<'w> {
    model: Model<WeightView<'w>, Vec<LayerWeights<WeightView<'w>>>>,
    kv: Box<dyn KvCache>,
}

impl<'w> ReferenceSteps<'w> {
    /// Panics where the model does not load: a test's model file is a fixture.
    fn new(gguf: &Gguf<'w>, config: ModelConfig, kv_type: KvType, n_ctx: usize) -> Self {
        let model = Model::load(gguf, config, Vec::new(), |view, role| {
            Backend::prepare(&Reference, view, role)
        })
        .expect("the reference loads the model");
        let kv = dense_cache(kv_type, config.n_layer, n_ctx, config.kv_width());
        ReferenceSteps { model, kv }
    }

    /// The logits of `plan` on `tokens` at positions from `pos`.
    fn step(&mut self, plan: &Plan, tokens: &[u32], pos: usize) -> Vec<f32> {
        let mut arena = vec![0u8; plan.arena_bytes() + Arena::ALIGN];
        Runner {
            backend: &Reference,
            model: &self.model,
            parallel: &Sequential,
            embeddings: None,
        }
        .step(plan, self.kv.as_mut(), Arena::new(&mut arena), tokens, pos)
        .expect("the reference runs the step")
        .to_vec()
    }
}

/// The reference backend's logits of every row of one step of `plan` on `tokens`, from
/// position 0 of an empty cache of `kv_type`.
pub fn reference_step(
    gguf: &Gguf<'_>,
    config: ModelConfig,
    plan: &Plan,
    tokens: &[u32],
    kv_type: KvType,
) -> Vec<f32> {
    ReferenceSteps::new(gguf, config, kv_type, plan.n_ctx()).step(plan, tokens, 0)
}

/// The reference backend's logits for a prompt, fed as one step, then for greedy decoding
/// ([`argmax`], as the engine samples at temperature 0), and the tokens it fed.
pub struct ReferenceRun {
    /// Each step's logits (the last row only): the prompt's, then one per decoded token.
    pub logits: Vec<Vec<f32>>,
    /// The prompt, then the token chosen after each step but the last.
    pub fed: Vec<u32>,
    prompt_len: usize,
    config: ModelConfig,
    n_ctx: usize,
}

/// One step of a [`ReferenceRun`], as a device replays it.
pub struct RunStep<'a> {
    /// The step's number: 0 is the prompt.
    pub index: usize,
    /// The plan of the step: its token count, the run's context, the last row's logits.
    pub plan: Plan,
    /// The tokens the reference fed.
    pub tokens: &'a [u32],
    /// The position of the first of them.
    pub pos: usize,
    /// The reference's logits.
    pub want: &'a [f32],
}

impl ReferenceRun {
    /// Runs `prompt` then `n_decode` greedy steps of the model in `gguf` on the reference
    /// backend, with a cache of `kv_type` and `n_ctx` positions.
    pub fn new(
        gguf: &Gguf<'_>,
        config: ModelConfig,
        prompt: &[u32],
        n_decode: usize,
        kv_type: KvType,
        n_ctx: usize,
    ) -> ReferenceRun {
        let mut reference = ReferenceSteps::new(gguf, config, kv_type, n_ctx);
        let mut run = ReferenceRun {
            logits: Vec::new(),
            fed: prompt.to_vec(),
            prompt_len: prompt.len(),
            config,
            n_ctx,
        };
        for i in 0..=n_decode {
            if i > 0 {
                let next = argmax(run.logits.last().expect("the prompt's logits"));
                run.fed.push(next);
            }
            let (tokens, pos) = run.step_input(i);
            let plan = run.plan(tokens.len());
            let logits = reference.step(&plan, tokens, pos);
            run.logits.push(logits);
        }
        run
    }

    /// The tokens and first position of step `i`: the prompt, then one fed token at a time.
    pub fn step_input(&self, i: usize) -> (&[u32], usize) {
        if i == 0 {
            (&self.fed[..self.prompt_len], 0)
        } else {
            let pos = self.prompt_len + i - 1;
            (&self.fed[pos..pos + 1], pos)
        }
    }

    /// Every step in order, for a device to replay.
    pub fn steps(&self) -> impl Iterator<Item = RunStep<'_>> {
        self.logits.iter().enumerate().map(|(index, want)| {
            let (tokens, pos) = self.step_input(index);
            RunStep {
                index,
                plan: self.plan(tokens.len()),
                tokens,
                pos,
                want,
            }
        })
    }

    fn plan(&self, n_tokens: usize) -> Plan {
        Plan::new(&self.config, n_tokens, self.n_ctx, LogitRows::Last)
            .expect("the run's steps fit its context")
    }
}

/// The distance of `got` from `want` relative to `want`'s size, `|got - want| / |want|`
/// (Euclidean norms, in f64 so that the measure adds no rounding of its own): how far a
/// device that does not compute in the reference's order may stray, as one number per row.
pub fn rel_l2(got: &[f32], want: &[f32]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = want.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Panics unless `got` holds as many values as `want`, each with the same bits (a zero's
/// sign and a NaN's payload included): the promise of a device that computes in the
/// reference's order and roundings. The message names the first difference and the row's
/// [`rel_l2`], which tells a last-bit slip from a wrong kernel.
#[track_caller]
pub fn assert_same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: how many values");
    if let Some(k) = (0..got.len()).find(|&k| got[k].to_bits() != want[k].to_bits()) {
        panic!(
            "{what}: value {k} is {} where {} was expected (row relative L2 {:e})",
            got[k],
            want[k],
            rel_l2(got, want)
        );
    }
}

/// Checks that a session refuses the steps a caller can get wrong, with errors that say
/// what was wrong, and still runs afterwards. `step` runs a plan on a session of `n_ctx`
/// positions of a model of `config`; a device must refuse these before they reach its
/// kernels, where they would read or write out of bounds.
pub fn check_bad_steps<E: Display>(
    config: &ModelConfig,
    n_ctx: usize,
    mut step: impl FnMut(&Plan, &[u32], usize) -> Result<(), E>,
) {
    let plan = Plan::new(config, 2, n_ctx, LogitRows::Last).expect("two tokens fit");
    let mut refused = |tokens: &[u32], pos: usize| match step(&plan, tokens, pos) {
        Ok(()) => panic!("the session ran {tokens:?} at {pos} on a plan of 2 tokens"),
        Err(e) => format!("{e}"),
    };
    assert!(refused(&[1], 0).contains('2'), "token count");
    let past_vocab = 999_999;
    assert!(past_vocab as usize >= config.n_vocab);
    assert!(refused(&[1, past_vocab], 0).contains("999999"));
    assert!(refused(&[1, 2], n_ctx - 1).contains("context"));
    // The session still works after refusing.
    assert!(step(&plan, &[1, 2], 0).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{StepError, check_step};

    /// The stories260K model of `models/`, read once per test.
    fn stories() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/stories260K-f32.gguf"
        );
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn a_run_feeds_its_own_greedy_tokens_and_steps_replay_them() {
        let bytes = stories();
        let gguf = Gguf::parse(&bytes).unwrap();
        let config = ModelConfig::from_gguf(&gguf).unwrap();
        let prompt = [1, 403, 261, 263];
        let run = ReferenceRun::new(&gguf, config, &prompt, 5, KvType::F32, 16);
        assert_eq!(run.logits.len(), 6);
        assert_eq!(run.fed.len(), prompt.len() + 5);
        assert_eq!(run.fed[..prompt.len()], prompt);
        for (i, row) in run.logits.iter().enumerate() {
            assert_eq!(row.len(), config.n_vocab);
            if i < 5 {
                assert_eq!(run.fed[prompt.len() + i], argmax(row));
            }
        }
        let steps: Vec<_> = run.steps().collect();
        assert_eq!((steps[0].tokens, steps[0].pos), (&prompt[..], 0));
        assert_eq!(steps[0].plan.n_tokens(), prompt.len());
        for s in &steps[1..] {
            assert_eq!(s.pos, prompt.len() + s.index - 1);
            assert_eq!(s.tokens, &run.fed[s.pos..s.pos + 1]);
            assert_eq!(s.plan.n_tokens(), 1);
            assert_eq!(s.want, &run.logits[s.index][..]);
        }
        // The prompt step is the last row of the same step run for every row.
        let all = Plan::new(&config, prompt.len(), 16, LogitRows::All).unwrap();
        let rows = reference_step(&gguf, config, &all, &prompt, KvType::F32);
        assert_same_bits(
            "last row",
            &rows[(prompt.len() - 1) * config.n_vocab..],
            steps[0].want,
        );
    }

    #[test]
    fn an_f16_cache_changes_the_logits() {
        let bytes = stories();
        let gguf = Gguf::parse(&bytes).unwrap();
        let config = ModelConfig::from_gguf(&gguf).unwrap();
        let f32_run = ReferenceRun::new(&gguf, config, &[1, 403], 3, KvType::F32, 8);
        let f16_run = ReferenceRun::new(&gguf, config, &[1, 403], 3, KvType::F16, 8);
        assert_ne!(f32_run.logits, f16_run.logits);
    }

    #[test]
    fn rel_l2_is_the_relative_euclidean_distance() {
        assert_eq!(rel_l2(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        let d = rel_l2(&[1.0, 1.0], &[1.0, 0.0]);
        assert!((d - 1.0).abs() < 1e-12, "{d}");
        // The differences of nearby floats count in full.
        let d = rel_l2(&[1.0 + f32::EPSILON], &[1.0]);
        assert_eq!(d, f64::from(f32::EPSILON));
    }

    #[test]
    fn same_bits_pass_and_any_other_bits_fail() {
        assert_same_bits("equal", &[1.0, f32::NAN, -0.0], &[1.0, f32::NAN, -0.0]);
        for (got, want) in [
            (vec![0.0], vec![-0.0]),
            (
                vec![1.0, 2.0],
                vec![1.0, f32::from_bits(2f32.to_bits() + 1)],
            ),
            (vec![1.0], vec![1.0, 2.0]),
            (vec![f32::NAN], vec![-f32::NAN]),
        ] {
            let failed = std::panic::catch_unwind(|| assert_same_bits("x", &got, &want));
            assert!(failed.is_err(), "{got:?} passed as {want:?}");
        }
    }

    #[test]
    fn bad_steps_pass_where_core_refuses_them() {
        let config = crate::testing::conformance::model_config(2, 2, 8);
        check_bad_steps(&config, 8, |plan, tokens, pos| {
            check_step(plan, &config, tokens, pos, 8)
        });
    }

    #[test]
    fn bad_steps_fail_where_a_session_runs_them() {
        let config = crate::testing::conformance::model_config(2, 2, 8);
        let failed = std::panic::catch_unwind(|| {
            check_bad_steps(&config, 8, |_, _, _| Ok::<(), StepError>(()))
        });
        assert!(failed.is_err());
        // Refusing the good step fails too.
        let failed = std::panic::catch_unwind(|| {
            check_bad_steps(&config, 8, |_, _, _| Err("2 999999 context"))
        });
        assert!(failed.is_err());
    }
}
