//! Sampling settings and their validation.

use core::fmt;

/// How the next token is chosen from a row of logits.
///
/// The stages run in llama.cpp's order: repetition penalty, top-k, top-p, min-p,
/// temperature, then a seeded draw. Each field's "off" value leaves its stage out, so a
/// setting means the same thing here as on a llama.cpp command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerParams {
    /// Softmax temperature; `0` picks the most likely token (greedy) and skips the
    /// top-k, top-p and min-p stages.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` = off.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probabilities add up to at least
    /// `top_p` (at least one token stays); `1` = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; `0` = off.
    pub min_p: f32,
    /// Positive logits of recently seen tokens are divided by this, negative ones multiplied;
    /// `1` = off.
    pub repeat_penalty: f32,
    /// How many of the most recent ids the penalty looks at; `0` = off, `usize::MAX` = all.
    pub repeat_last_n: usize,
    /// Seed of the random generator: the same seed, settings and logits give the same
    /// tokens on every platform.
    pub seed: u64,
}

impl SamplerParams {
    /// Seed used by [`Default`]. Core has no entropy source; a host that wants a different
    /// stream on every run picks its own seed.
    pub const DEFAULT_SEED: u64 = 0x7465_726e; // "tern"

    /// Always the most likely token; the repetition penalty is off but can be switched on.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Self::default()
        }
    }

    /// Checks every field that could make sampling meaningless.
    ///
    /// The repetition penalty must also be finite: an infinite one would turn a zero logit
    /// into NaN (`0 * inf`).
    pub fn validate(&self) -> Result<(), SampleError> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(SampleError::Temperature(t));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SampleError::TopP(self.top_p));
        }
        if !(self.min_p >= 0.0 && self.min_p <= 1.0) {
            return Err(SampleError::MinP(self.min_p));
        }
        let r = self.repeat_penalty;
        if !(r.is_finite() && r > 0.0) {
            return Err(SampleError::RepeatPenalty(r));
        }
        Ok(())
    }
}

impl Default for SamplerParams {
    /// llama.cpp's defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalty,
    /// penalty window 64), with a fixed seed.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: Self::DEFAULT_SEED,
        }
    }
}

/// A sampler setting out of range; carries the offending value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SampleError {
    /// Temperature is NaN, negative or infinite.
    Temperature(f32),
    /// top-p is not in `(0, 1]`.
    TopP(f32),
    /// min-p is not in `[0, 1]`.
    MinP(f32),
    /// Repetition penalty is not a finite number above zero.
    RepeatPenalty(f32),
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Temperature(v) => write!(f, "temperature must be finite and >= 0, got {v}"),
            Self::TopP(v) => write!(f, "top-p must be in (0, 1], got {v}"),
            Self::MinP(v) => write!(f, "min-p must be in [0, 1], got {v}"),
            Self::RepeatPenalty(v) => {
                write!(f, "repeat penalty must be finite and > 0, got {v}")
            }
        }
    }
}

impl core::error::Error for SampleError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut SamplerParams)) -> Result<(), SampleError> {
        let mut p = SamplerParams::default();
        f(&mut p);
        p.validate()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SamplerParams::default().validate(), Ok(()));
        assert_eq!(SamplerParams::greedy().validate(), Ok(()));
        assert_eq!(with(|p| p.top_p = 1.0), Ok(()));
        assert_eq!(with(|p| p.min_p = 1.0), Ok(()));
        assert_eq!(with(|p| p.min_p = 0.0), Ok(()));
    }

    #[test]
    fn rejects_bad_temperature() {
        for t in [f32::NAN, -0.1, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(matches!(
                with(|p| p.temperature = t),
                Err(SampleError::Temperature(_))
            ));
        }
    }

    #[test]
    fn rejects_bad_top_p_and_min_p() {
        for v in [0.0, -0.5, 1.01, f32::NAN, f32::INFINITY] {
            assert!(matches!(with(|p| p.top_p = v), Err(SampleError::TopP(_))));
        }
        for v in [-0.01, 1.01, f32::NAN, f32::INFINITY] {
            assert!(matches!(with(|p| p.min_p = v), Err(SampleError::MinP(_))));
        }
    }

    #[test]
    fn rejects_bad_repeat_penalty() {
        for v in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                with(|p| p.repeat_penalty = v),
                Err(SampleError::RepeatPenalty(_))
            ));
        }
    }

    #[test]
    fn error_says_what() {
        extern crate std;
        use std::string::ToString;
        let msg = SampleError::TopP(1.5).to_string();
        assert!(msg.contains("top-p") && msg.contains("1.5"), "{msg}");
    }
}
