//! `tern run`: generation with streamed output and a line of timings; Ctrl-C stops it
//! early, timings still printed.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tern::engine::{CacheStatus, Engine, EngineOptions, GenerateOptions};
use tern::error::EngineError;

use super::compute::ComputeArgs;
use super::interrupt;
use super::sampling::{SamplingArgs, parse_n_predict};
use super::text_input::{process_escapes, read_text};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    /// GGUF model file [default: the bundled stories260K Q8_0 model]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Text to continue
    #[arg(short, long, default_value = "")]
    prompt: String,
    /// Read the prompt from this file instead (must be UTF-8; `-` reads standard input)
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "prompt")]
    file: Option<PathBuf>,
    /// Replace escapes in the prompt, as llama.cpp does: \n, \r, \t, \', \", \\ and \xHH
    #[arg(short = 'e', long)]
    escape: bool,
    /// Leave escapes as written (the default; llama.cpp's way to turn -e off)
    #[arg(long, overrides_with = "escape")]
    no_escape: bool,
    /// Print only the generated text, not the prompt before it
    #[arg(long)]
    no_display_prompt: bool,
    /// Most tokens to generate (-1: until the end of text or a full context)
    #[arg(short = 'n', long = "n-predict", default_value = "128", value_parser = parse_n_predict)]
    n_predict: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Context size in tokens [default: the model's, at most 4096]
    #[arg(short = 'c', long = "ctx-size")]
    ctx_size: Option<usize>,
    /// Print where memory goes (weights, embeddings, KV cache, arena, process RSS) after
    /// loading and at the end
    #[arg(long)]
    memory_report: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn run(args: RunArgs) -> Result<ExitCode, EngineError> {
    let prompt = match &args.file {
        Some(path) => read_text(path, "prompt")?,
        None => args.prompt.clone(),
    };
    let prompt = match args.escape {
        true => process_escapes(&prompt)?,
        false => prompt,
    };
    let sampler = args.sampling.params()?;
    let options = args.compute.options(
        args.model.as_deref(),
        args.ctx_size,
        args.compute.batch_size,
    );
    interrupt::install();
    let engine = load(args.model.as_deref(), options)?;
    let mut session = engine.session()?;
    if args.memory_report {
        eprint!("memory after loading:\n{}", session.memory_report());
    }
    let generate = GenerateOptions {
        max_tokens: args.n_predict,
        sampler,
    };
    let mut out = std::io::stdout().lock();
    // The prompt is echoed with the first generated text, so that a prompt the model
    // refuses (too long for the context) is not printed before its error.
    let mut echo = (!args.no_display_prompt).then_some(prompt.as_bytes());
    let stats = session.generate(&prompt, &generate, |text| {
        if interrupt::requested() {
            return ControlFlow::Break(());
        }
        let echoed = echo.take().map_or(Ok(()), |p| out.write_all(p));
        // A closed pipe (e.g. `| head`) ends generation quietly.
        match echoed
            .and_then(|()| out.write_all(text.as_bytes()))
            .and_then(|()| out.flush())
        {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })?;
    if let Some(prompt) = echo {
        let _ = out.write_all(prompt);
    }
    let _ = writeln!(out);
    args.sampling.say_seed(&sampler);
    let interrupted = interrupt::requested();
    let stop = match interrupted {
        true => "Interrupted".to_string(),
        false => format!("{:?}", stats.stop),
    };
    eprintln!(
        "prompt: {} tokens, {:.1} tok/s | generated: {} tokens, {:.1} tok/s | backend {}, {} threads | stop: {stop}",
        stats.prompt_tokens,
        stats.prompt_tokens_per_second(),
        stats.generated.len(),
        stats.generated_tokens_per_second(),
        engine.backend_name(),
        engine.n_threads(),
    );
    if args.memory_report {
        eprint!("memory at the end:\n{}", session.memory_report());
    }
    Ok(match interrupted {
        true => ExitCode::from(interrupt::EXIT_STATUS),
        false => ExitCode::SUCCESS,
    })
}

/// Loads the model, with a spinner on a terminal when loading takes more than a moment.
pub fn load(
    model: Option<&std::path::Path>,
    options: EngineOptions,
) -> Result<Engine, EngineError> {
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} loading {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(model.map_or_else(
        || tern::bundled::NAME.to_string(),
        |p| p.display().to_string(),
    ));
    let started = Instant::now();
    spinner.enable_steady_tick(Duration::from_millis(250));
    let engine = match model {
        Some(path) => Engine::load(path, options),
        None => Engine::load_bundled(options),
    };
    spinner.finish_and_clear();
    let engine = engine?;
    let elapsed = started.elapsed();
    if elapsed > Duration::from_millis(500) {
        eprintln!("loaded {} in {:.2} s", engine.name(), elapsed.as_secs_f64());
    }
    say_load_status(&engine);
    Ok(engine)
}

/// One stderr line on what became of the packed-weight cache (a cache found and mapped goes
/// without saying, anything else is news), and one on why `--backend auto` chose the CPU.
pub(super) fn say_load_status(engine: &Engine) {
    match engine.pack_cache_status() {
        None | Some(CacheStatus::Mapped(_)) => {}
        Some(status) => eprintln!("{status}"),
    }
    if let Some(note) = engine.backend_note() {
        eprintln!("{note}");
    }
}
