//! `tern perplexity`: perplexity of a text by llama.cpp's `llama-perplexity` protocol and
//! output, and KL divergence against a base run.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use tern::engine::Engine;
use tern::perplexity::{
    self, BaseReader, BaseWriter, ChunkScore, Chunks, KlDivergence, KldChunk, Perplexity,
    PerplexityError, median, percentile,
};

use super::compute::ComputeArgs;
use super::run::load;
use super::text_input::read_text;

/// llama.cpp's default context for perplexity.
const DEFAULT_CTX: usize = 512;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    /// GGUF model file [default: the bundled stories260K Q8_0 model]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// The text to score (UTF-8); with --kl-divergence it may be left out (the base holds
    /// its tokens), and if given must tokenize to the base's tokens
    #[arg(
        short = 'f',
        long,
        value_name = "FILE",
        required_unless_present = "kl_divergence"
    )]
    file: Option<PathBuf>,
    /// Tokens per chunk (the context of each evaluation); the text needs at least two
    /// chunks [default: 512; with --kl-divergence, the base's]
    #[arg(short = 'c', long = "ctx-size", value_name = "N")]
    ctx_size: Option<usize>,
    /// Evaluate at most N chunks [default: all the text holds]
    #[arg(long, value_name = "N")]
    chunks: Option<NonZeroUsize>,
    /// Base file of log-probabilities: a plain run writes its own there; with
    /// --kl-divergence it is read and compared with. Tern's own format, not llama.cpp's
    #[arg(long, value_name = "FILE")]
    kl_divergence_base: Option<PathBuf>,
    /// Compare this run's token distributions with the base's (--kl-divergence-base): KL
    /// divergence, perplexity of both, top-token agreement
    #[arg(long, requires = "kl_divergence_base")]
    kl_divergence: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn perplexity(args: PerplexityArgs) -> Result<(), PerplexityError> {
    match (&args.kl_divergence_base, args.kl_divergence) {
        (Some(base), true) => compare_with_base(&args, base),
        (base, _) => score_text(&args, base.as_deref()),
    }
}

/// A plain run, which also writes a base file when asked.
fn score_text(args: &PerplexityArgs, base: Option<&Path>) -> Result<(), PerplexityError> {
    let n_ctx = args.ctx_size.unwrap_or(DEFAULT_CTX);
    check_context(n_ctx)?;
    let path = args
        .file
        .as_ref()
        .expect("clap requires -f without --kl-divergence");
    let text = read_text(path, "text")?;
    // Opened first: a path that cannot be written fails before any work.
    let writer = base.map(BaseWriter::create).transpose()?;
    let engine = load_engine(args, n_ctx)?;
    let tokens = tokenize(&engine, &text);
    let chunks = Chunks::new(tokens.len(), n_ctx, args.chunks)?;
    say_plan(&engine, &chunks, tokens.len());
    let mut out = std::io::stdout().lock();
    let on_chunk = |c: &ChunkScore| {
        say_eta(c.index, c.n_chunks, c.elapsed);
        let _ = write!(out, "[{}]{:.4},", c.index + 1, c.running.ppl());
        let _ = out.flush();
    };
    let result = match base.zip(writer) {
        Some((base, writer)) => {
            let result = perplexity::write_base(&engine, &tokens, args.chunks, writer, on_chunk)?;
            eprintln!(
                "wrote KL-divergence base `{}` ({:.1} MiB)",
                base.display(),
                std::fs::metadata(base).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64)
            );
            result
        }
        None => perplexity::perplexity(&engine, &tokens, args.chunks, on_chunk)?,
    };
    print_final(&result);
    Ok(())
}

/// llama.cpp's last line: the perplexity and its standard error.
fn print_final(result: &Perplexity) {
    let total = &result.total;
    println!();
    match total.ppl_error() {
        Some(error) => println!("Final estimate: PPL = {:.4} +/- {:.5}", total.ppl(), error),
        None => println!(
            "Final estimate: PPL = {:.4} (no error estimate: the scored tokens' log-likelihoods do not vary)",
            total.ppl()
        ),
    }
}

/// A KL-divergence run against `base_path`.
fn compare_with_base(args: &PerplexityArgs, base_path: &Path) -> Result<(), PerplexityError> {
    let mut base = BaseReader::open(base_path)?;
    let header = base.header();
    let n_ctx = match args.ctx_size {
        Some(asked) if asked != header.n_ctx => {
            return Err(PerplexityError::OtherContext {
                path: base_path.into(),
                base: header.n_ctx,
                asked,
            });
        }
        _ => header.n_ctx,
    };
    let started = Instant::now();
    base.verify()?;
    if started.elapsed() > Duration::from_millis(500) {
        eprintln!(
            "checked KL-divergence base `{}` in {:.2} s",
            base_path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let text = args
        .file
        .as_ref()
        .map(|path| read_text(path, "text"))
        .transpose()?;
    let engine = load_engine(args, n_ctx)?;
    perplexity::check_base(&engine, &base, args.chunks)?;
    if let Some(text) = text {
        perplexity::check_base_tokens(&base, &tokenize(&engine, &text))?;
    }
    let header = base.header();
    let chunks = Chunks {
        n_ctx,
        n_chunks: args.chunks.map_or(header.n_chunks, NonZeroUsize::get),
    };
    eprintln!(
        "comparing with KL-divergence base `{}`, written by `{}`",
        base_path.display(),
        header.model_name
    );
    say_plan(&engine, &chunks, header.tokens.len());
    let mut out = std::io::stdout().lock();
    let result = perplexity::kl_divergence(&engine, &mut base, args.chunks, |c: &KldChunk| {
        say_eta(c.index, c.n_chunks, c.elapsed);
        if c.index == 0 {
            let _ = writeln!(
                out,
                "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p"
            );
        }
        let _ = writeln!(out, "{}", chunk_line(c));
        let _ = out.flush();
    })?;
    drop(out);
    print_kld_summary(&result);
    Ok(())
}

/// llama.cpp's line per chunk of a KL-divergence run: running values ± their uncertainty.
fn chunk_line(c: &KldChunk) -> String {
    let s = &c.running;
    let (ppl, ppl_unc) = s.ppl();
    let (ratio, ratio_unc) = s.log_ppl_ratio();
    let (kld, kld_unc) = s.kld();
    let (rms, rms_unc) = s.p_diff_rms();
    let (top, top_unc) = s.same_top();
    format!(
        "{:4}    {ppl:9.4} ± {ppl_unc:9.4}    {ratio:10.5} ± {ratio_unc:10.5}    {kld:10.5} ± {kld_unc:10.5}    {:6.3} ± {:6.3} %    {:6.3} ± {:6.3} %",
        c.index + 1,
        100.0 * rms,
        100.0 * rms_unc,
        100.0 * top,
        100.0 * top_unc,
    )
}

/// llama.cpp's closing statistics of a KL-divergence run.
fn print_kld_summary(result: &KlDivergence) {
    let s = &result.stats;
    let (kld, p_diff) = (&result.kld_sorted, &result.p_diff_sorted);
    let (ppl, ppl_unc) = s.ppl();
    let (base, base_unc) = s.ppl_base();
    let (log_ratio, log_ratio_unc) = s.log_ppl_ratio();
    let (ratio, ratio_unc) = s.ppl_ratio();
    let (diff, diff_unc) = s.ppl_difference();
    println!();
    println!("====== Perplexity statistics ======");
    println!("Mean PPL(Q)                   : {ppl:10.6} ± {ppl_unc:10.6}");
    println!("Mean PPL(base)                : {base:10.6} ± {base_unc:10.6}");
    println!(
        "Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%",
        100.0 * s.log_ppl_correlation()
    );
    println!("Mean ln(PPL(Q)/PPL(base))     : {log_ratio:10.6} ± {log_ratio_unc:10.6}");
    println!("Mean PPL(Q)/PPL(base)         : {ratio:10.6} ± {ratio_unc:10.6}");
    println!("Mean PPL(Q)-PPL(base)         : {diff:10.6} ± {diff_unc:10.6}");
    println!();
    println!("====== KL divergence statistics ======");
    let (mean, mean_unc) = s.kld();
    println!("Mean    KLD: {mean:10.6} ± {mean_unc:10.6}");
    let at = |f: f32| percentile(kld, f);
    println!("Maximum KLD: {:10.6}", at(1.0));
    for (label, f) in [
        ("99.9%", 0.999),
        ("99.0%", 0.99),
        ("95.0%", 0.95),
        ("90.0%", 0.9),
    ] {
        println!("{label}   KLD: {:10.6}", at(f));
    }
    println!("Median  KLD: {:10.6}", median(kld));
    for (label, f) in [
        ("10.0%", 0.1),
        (" 5.0%", 0.05),
        (" 1.0%", 0.01),
        (" 0.1%", 0.001),
    ] {
        println!("{label}   KLD: {:10.6}", at(f));
    }
    println!("Minimum KLD: {:10.6}", at(0.0));
    println!();
    println!("====== Token probability statistics ======");
    let (dp, dp_unc) = s.p_diff();
    println!("Mean    Δp: {:6.3} ± {:5.3} %", 100.0 * dp, 100.0 * dp_unc);
    let at = |f: f32| 100.0 * percentile(p_diff, f);
    println!("Maximum Δp: {:6.3}%", at(1.0));
    for (label, f) in [
        ("99.9%", 0.999),
        ("99.0%", 0.99),
        ("95.0%", 0.95),
        ("90.0%", 0.9),
        ("75.0%", 0.75),
    ] {
        println!("{label}   Δp: {:6.3}%", at(f));
    }
    println!("Median  Δp: {:6.3}%", 100.0 * median(p_diff));
    for (label, f) in [
        ("25.0%", 0.25),
        ("10.0%", 0.1),
        (" 5.0%", 0.05),
        (" 1.0%", 0.01),
        (" 0.1%", 0.001),
    ] {
        println!("{label}   Δp: {:6.3}%", at(f));
    }
    println!("Minimum Δp: {:6.3}%", at(0.0));
    let (rms, rms_unc) = s.p_diff_rms();
    println!(
        "RMS Δp    : {:6.3} ± {:5.3} %",
        100.0 * rms,
        100.0 * rms_unc
    );
    let (top, top_unc) = s.same_top();
    println!(
        "Same top p: {:6.3} ± {:5.3} %",
        100.0 * top,
        100.0 * top_unc
    );
    if !result.same_model_file {
        eprintln!("(the base was written by another model file with the same vocabulary)");
    }
}

/// Refuses, before loading anything, a context in which no token would be scored.
fn check_context(n_ctx: usize) -> Result<(), PerplexityError> {
    if perplexity::scored_per_chunk(n_ctx) == 0 {
        return Err(PerplexityError::ContextTooSmall { n_ctx });
    }
    Ok(())
}

fn load_engine(args: &PerplexityArgs, n_ctx: usize) -> Result<Engine, PerplexityError> {
    check_context(n_ctx)?;
    let options = args
        .compute
        .options(args.model.as_deref(), Some(n_ctx), args.compute.batch_size);
    Ok(load(args.model.as_deref(), options)?)
}

/// Tokenizes the text, saying how long it took where that is noticeable.
fn tokenize(engine: &Engine, text: &str) -> Vec<u32> {
    let started = Instant::now();
    let tokens = perplexity::tokenize(engine.tokenizer(), text);
    let elapsed = started.elapsed();
    if elapsed > Duration::from_millis(500) {
        eprintln!(
            "tokenized {} bytes into {} tokens in {:.2} s",
            text.len(),
            tokens.len(),
            elapsed.as_secs_f64()
        );
    }
    tokens
}

/// One stderr line on what the run will do, as llama.cpp's "calculating perplexity over".
fn say_plan(engine: &Engine, chunks: &Chunks, n_tokens: usize) {
    eprintln!(
        "perplexity: {n_tokens} tokens, {} chunks of {} (scoring {} tokens), batch {}, \
         backend {}, {} threads",
        chunks.n_chunks,
        chunks.n_ctx,
        chunks.n_scored(),
        engine.options().n_batch.min(chunks.n_ctx),
        engine.backend_name(),
        engine.n_threads(),
    );
}

/// llama.cpp's progress: after the first chunk, the time per chunk and the time left.
fn say_eta(index: usize, n_chunks: usize, elapsed: Duration) {
    if index == 0 {
        let seconds = elapsed.as_secs_f64();
        let minutes = seconds * n_chunks as f64 / 60.0;
        eprintln!("{seconds:.2} seconds per pass - ETA {minutes:.2} minutes");
    }
}
