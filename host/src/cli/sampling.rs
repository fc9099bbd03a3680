//! How tokens are picked and how many: the options `run` and `chat` share.

use clap::Args;
use tern::error::EngineError;
use tern_core::sample::SamplerParams;

/// Sampling options, as llama.cpp spells them.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub(super) struct SamplingArgs {
    /// Sampling temperature; 0 picks the most likely token every time
    #[arg(long = "temp", default_value_t = 0.8)]
    temperature: f32,
    /// Keep only the K most likely tokens (0: all)
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches P (1: all)
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than P times the most likely one (0: none)
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Penalty for repeating recent tokens (1: none)
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Random seed [default: from the clock, printed on stderr when sampling]
    #[arg(short, long)]
    seed: Option<u64>,
}

impl SamplingArgs {
    /// The sampler's settings, checked; the seed from the clock when none was given.
    pub(super) fn params(&self) -> Result<SamplerParams, EngineError> {
        let params = SamplerParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed.unwrap_or_else(clock_seed),
        };
        params
            .validate()
            .map_err(|e| EngineError::Option(e.to_string()))?;
        Ok(params)
    }

    /// One stderr line with the seed a sampled run used when none was given, so it can be
    /// repeated (greedy decoding ignores the seed).
    pub(super) fn say_seed(&self, params: &SamplerParams) {
        if self.seed.is_none() && params.temperature > 0.0 {
            eprintln!("seed {0} (--seed {0} repeats this run)", params.seed);
        }
    }
}

/// `-n N`: a count of tokens, or -1 for no limit but the end of text and the context.
pub(super) fn parse_n_predict(text: &str) -> Result<usize, String> {
    match text {
        "-1" => Ok(usize::MAX),
        _ if text.starts_with('-') => {
            Err("a count of tokens, or -1 for no limit but the context".into())
        }
        _ => text
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string()),
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
