//! `tern bench`: prompt-processing and generation speed, measured and printed like llama.cpp's
//! llama-bench (same test names, table and JSON fields), so the two compare line by line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use tern::engine::{Engine, FlashIo, ModelBytes, Session, open_model};
use tern::error::EngineError;
use tern::memory::MemoryReport;
use tern_core::gguf::Gguf;
use tern_core::model::ModelConfig;

use super::compute::ComputeArgs;
use super::run::say_load_status;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// GGUF model file [default: the bundled stories260K Q8_0 model]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Prompt sizes to time, comma-separated; 0 skips prompt tests
    #[arg(short = 'p', long = "n-prompt", value_name = "N,...", default_value = "512", value_parser = parse_sizes)]
    n_prompt: Sizes,
    /// Generation lengths to time, comma-separated; 0 skips generation tests
    #[arg(short = 'n', long = "n-gen", value_name = "N,...", default_value = "128", value_parser = parse_sizes)]
    n_gen: Sizes,
    /// Tokens already in the context when each test starts (fed untimed first), so decode
    /// is measured at a long context, like llama-bench's --n-depth
    #[arg(short = 'd', long = "n-depth", value_name = "N", default_value_t = 0)]
    depth: usize,
    /// Timed runs of each test (after one untimed warm-up run)
    #[arg(short = 'r', long = "repetitions", value_name = "N", default_value = "5", value_parser = parse_repetitions)]
    repetitions: usize,
    /// Print a JSON array of records (llama-bench's fields) instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

/// A comma-separated list of token counts.
#[derive(Clone, Debug)]
struct Sizes(Vec<usize>);

fn parse_sizes(text: &str) -> Result<Sizes, String> {
    if text.trim().is_empty() {
        return Err("empty list".into());
    }
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{}` is not a token count", s.trim()))
        })
        .collect::<Result<_, _>>()
        .map(Sizes)
}

fn parse_repetitions(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("at least one repetition is needed".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a count")),
    }
}

#[derive(Clone, Copy, Debug)]
enum Test {
    /// One batch of this many prompt tokens.
    Prompt(usize),
    /// This many single-token decode steps after a one-token prompt.
    Gen(usize),
}

impl Test {
    /// "pp512", "tg128", and llama-bench's " @ d1500" at a depth.
    fn name(self, depth: usize) -> String {
        let test = match self {
            Test::Prompt(n) => format!("pp{n}"),
            Test::Gen(n) => format!("tg{n}"),
        };
        match depth {
            0 => test,
            d => format!("{test} @ d{d}"),
        }
    }

    fn n_tokens(self) -> usize {
        match self {
            Test::Prompt(n) | Test::Gen(n) => n,
        }
    }
}

/// One test's timings, and the flash I/O of its last timed run.
struct Sample {
    test: Test,
    ns: Vec<u64>,
    io: FlashIo,
}

impl Sample {
    /// Flash bytes moved per token of the test: embedding rows, spilled KV read and written.
    fn io_per_token(&self) -> [f64; 3] {
        let n = self.test.n_tokens().max(1) as f64;
        let io = &self.io;
        [
            io.embedding_bytes_read as f64 / n,
            io.kv_bytes_read as f64 / n,
            io.kv_bytes_written as f64 / n,
        ]
    }
}

impl Sample {
    fn tokens_per_second(&self) -> Vec<f64> {
        let n = self.test.n_tokens() as f64;
        self.ns
            .iter()
            .map(|&ns| n * 1e9 / ns.max(1) as f64)
            .collect()
    }
}

/// What the table and records say about the model.
struct ModelInfo {
    filename: String,
    kind: String,
    size: u64,
    n_params: u64,
}

pub fn bench(args: BenchArgs) -> Result<(), EngineError> {
    let tests: Vec<Test> = (args
        .n_prompt
        .0
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| Test::Prompt(n)))
    .chain(
        args.n_gen
            .0
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| Test::Gen(n)),
    )
    .collect();
    if tests.is_empty() {
        return Err(EngineError::Option(
            "nothing to time: every prompt size and generation length is 0".into(),
        ));
    }
    let max_p = args.n_prompt.0.iter().copied().max().unwrap_or(0);
    let max_n = args.n_gen.0.iter().copied().max().unwrap_or(0);

    let started = Instant::now();
    let depth = args.depth;
    let wanted = depth
        .saturating_add(max_p)
        .saturating_add(max_n)
        .saturating_add(1);
    let name = args.model.as_ref().map_or_else(
        || tern::bundled::NAME.to_string(),
        |p| p.display().to_string(),
    );
    let n_ctx = match trained_context(args.model.as_deref())? {
        Some(trained) => {
            let needed = depth.saturating_add(max_p.max(if max_n > 0 { max_n + 1 } else { 0 }));
            if needed > trained {
                return Err(EngineError::Option(format!(
                    "the longest test needs a context of {needed} tokens; `{name}` was trained for {trained}"
                )));
            }
            wanted.min(trained)
        }
        // The engine names what is wrong with the file.
        None => wanted,
    };
    let n_batch = args.compute.batch_size.min(max_p.max(depth).max(1));
    let options = args
        .compute
        .options(args.model.as_deref(), Some(n_ctx), n_batch);
    let engine = match &args.model {
        Some(path) => Engine::load(path, options)?,
        None => Engine::load_bundled(options)?,
    };
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let info = model_info(&engine);
    say_load_status(&engine);

    let mut session = engine.session()?;
    let after_load = session.memory_report();
    let mut rng = SplitMix(0x7e57_7e57);
    let mut out = std::io::stdout().lock();
    if !args.json {
        let _ = writeln!(out, "{}", table_header());
    }
    let mut samples = Vec::with_capacity(tests.len());
    for &test in &tests {
        eprintln!(
            "bench: {} (1 warm-up + {} runs)",
            test.name(depth),
            args.repetitions
        );
        let mut ns = Vec::with_capacity(args.repetitions);
        let mut io = FlashIo::default();
        for rep in 0..=args.repetitions {
            let run = time(&mut session, test, depth, &mut rng, engine.config().n_vocab)?;
            if rep > 0 {
                ns.push(run.ns);
                io = run.io;
            }
        }
        let sample = Sample { test, ns, io };
        if !args.json {
            let _ = writeln!(out, "{}", table_row(&info, &engine, &sample, depth));
            let _ = out.flush();
        }
        samples.push(sample);
    }
    let at_end = session.memory_report();
    if args.json {
        let records: Vec<serde_json::Value> = samples
            .iter()
            .map(|s| record(&info, &engine, s, depth, load_ms, [&after_load, &at_end]))
            .collect();
        let text = serde_json::to_string_pretty(&records).unwrap_or_else(|_| "[]".into());
        let _ = writeln!(out, "{text}");
    } else {
        let _ = writeln!(out);
        let _ = writeln!(out, "load time: {load_ms:.2} ms");
        for sample in &samples {
            let [embeddings, kv_read, kv_written] = sample.io_per_token();
            if embeddings + kv_read + kv_written > 0.0 {
                let _ = writeln!(
                    out,
                    "flash I/O per token, {}: embeddings {embeddings:.0} B read, KV {kv_read:.0} B \
                     read, {kv_written:.0} B written",
                    sample.test.name(depth)
                );
            }
        }
        let _ = write!(out, "memory after loading:\n{after_load}");
        let _ = write!(out, "memory at the end:\n{at_end}");
    }
    Ok(())
}

/// The context the model was trained for, read from its header (`None` where the file
/// cannot say; loading it then names what is wrong).
fn trained_context(path: Option<&Path>) -> Result<Option<usize>, EngineError> {
    let bytes = match path {
        Some(path) => open_model(path)?,
        None => ModelBytes::Static(tern::bundled::STORIES260K_Q8_0),
    };
    let Ok(gguf) = Gguf::parse(bytes.as_bytes()) else {
        return Ok(None);
    };
    Ok(ModelConfig::from_gguf(&gguf).ok().map(|c| c.n_ctx_train))
}

/// One run of a test.
struct Run {
    ns: u64,
    /// Flash I/O of the timed part.
    io: FlashIo,
}

/// Runs `test` once on a session emptied and then fed `depth` tokens (untimed).
fn time(
    session: &mut Session<'_>,
    test: Test,
    depth: usize,
    rng: &mut SplitMix,
    n_vocab: usize,
) -> Result<Run, EngineError> {
    session.reset();
    let mut ids = |n: usize| (0..n).map(|_| rng.below(n_vocab)).collect::<Vec<u32>>();
    if depth > 0 {
        session.eval(&ids(depth))?;
    }
    let test_ids = ids(test.n_tokens());
    let (start, io) = match test {
        Test::Prompt(_) => (Instant::now(), session.flash_io()),
        Test::Gen(_) => {
            session.eval(&ids(1))?;
            (Instant::now(), session.flash_io())
        }
    };
    match test {
        Test::Prompt(_) => {
            session.eval(&test_ids)?;
        }
        Test::Gen(_) => {
            for id in test_ids {
                session.eval(&[id])?;
            }
        }
    }
    let ns = start.elapsed().as_nanos() as u64;
    let end = session.flash_io();
    Ok(Run {
        ns,
        io: FlashIo {
            embedding_bytes_read: end.embedding_bytes_read - io.embedding_bytes_read,
            kv_bytes_read: end.kv_bytes_read - io.kv_bytes_read,
            kv_bytes_written: end.kv_bytes_written - io.kv_bytes_written,
        },
    })
}

fn model_info(engine: &Engine) -> ModelInfo {
    let gguf = engine.gguf();
    let (size, n_params) = gguf.tensors().fold((0u64, 0u64), |(b, n), t| {
        (b + t.data.len() as u64, n + t.n_elements())
    });
    let file_type = gguf
        .get("general.file_type")
        .and_then(|v| v.as_u32())
        .and_then(file_type_name);
    let file_type = file_type.map_or_else(|| dominant_type(gguf), str::to_string);
    let filename = engine.name().to_string();
    ModelInfo {
        filename,
        kind: format!(
            "{} {} {file_type}",
            engine.config().arch.name(),
            params_label(n_params)
        ),
        size,
        n_params,
    }
}

/// llama.cpp's name of a `general.file_type` value.
fn file_type_name(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        32 => "BF16",
        _ => return None,
    })
}

/// The type holding the most weight bytes, for files that do not state a file type.
fn dominant_type(gguf: &Gguf<'_>) -> String {
    let mut bytes = std::collections::BTreeMap::<&str, usize>::new();
    for t in gguf.tensors() {
        *bytes.entry(t.dtype.name()).or_default() += t.data.len();
    }
    bytes
        .into_iter()
        .max_by_key(|&(_, b)| b)
        .map_or_else(|| "?".into(), |(name, _)| name.to_string())
}

/// "7B", "494M", "260K": the size class in a model's type, as llama.cpp writes it.
fn params_label(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.0}M", n / 1e6)
    } else {
        format!("{:.0}K", n / 1e3)
    }
}

const COLUMNS: [(&str, i32); 7] = [
    ("model", -30),
    ("size", 10),
    ("params", 10),
    ("backend", -20),
    ("threads", 7),
    ("test", 15),
    ("t/s", 20),
];

/// A markdown row; a negative width aligns left.
fn row(cells: &[String]) -> String {
    let mut s = String::from("|");
    for ((_, width), cell) in COLUMNS.iter().zip(cells) {
        let w = width.unsigned_abs() as usize;
        if *width < 0 {
            s += &format!(" {cell:<w$} |");
        } else {
            s += &format!(" {cell:>w$} |");
        }
    }
    s
}

fn table_header() -> String {
    let names: Vec<String> = COLUMNS.iter().map(|(n, _)| n.to_string()).collect();
    let mut s = row(&names);
    s += "\n|";
    for (_, width) in COLUMNS {
        let w = width.unsigned_abs() as usize;
        let end = if width > 0 { ':' } else { '-' };
        s += &format!(" {}{end} |", "-".repeat(w - 1));
    }
    s
}

fn table_row(info: &ModelInfo, engine: &Engine, sample: &Sample, depth: usize) -> String {
    let (avg, sd) = mean_sd(&sample.tokens_per_second());
    row(&[
        info.kind.clone(),
        human_bytes(info.size),
        format_params(info.n_params),
        engine.backend_name().to_string(),
        engine.n_threads().to_string(),
        sample.test.name(depth),
        format!("{avg:.2} ± {sd:.2}"),
    ])
}

/// "468.64 MiB", "1.21 GiB".
fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    }
}

/// "494.03 M", "7.24 B".
fn format_params(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} B", n / 1e9)
    } else {
        format!("{:.2} M", n / 1e6)
    }
}

fn record(
    info: &ModelInfo,
    engine: &Engine,
    sample: &Sample,
    depth: usize,
    load_ms: f64,
    [after_load, at_end]: [&MemoryReport; 2],
) -> serde_json::Value {
    let ts = sample.tokens_per_second();
    let ns: Vec<f64> = sample.ns.iter().map(|&n| n as f64).collect();
    let (avg_ts, stddev_ts) = mean_sd(&ts);
    let (avg_ns, stddev_ns) = mean_sd(&ns);
    let (n_prompt, n_gen) = match sample.test {
        Test::Prompt(n) => (n, 0),
        Test::Gen(n) => (0, n),
    };
    let kv = engine.options().kv_types();
    serde_json::json!({
        "model_filename": info.filename,
        "model_type": info.kind,
        "model_size": info.size,
        "model_n_params": info.n_params,
        "backend": engine.backend_name(),
        "n_threads": engine.n_threads(),
        "n_batch": engine.options().n_batch,
        "n_ctx": engine.n_ctx(),
        "type_k": kv.keys.name(),
        "type_v": kv.values.name(),
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "n_depth": depth,
        "test": sample.test.name(depth),
        "avg_ns": avg_ns.round() as u64,
        "stddev_ns": stddev_ns.round() as u64,
        "avg_ts": avg_ts,
        "stddev_ts": stddev_ts,
        "samples_ns": sample.ns,
        "samples_ts": ts,
        "load_ms": load_ms,
        "peak_rss_bytes": at_end.process.map(|p| p.peak_rss),
        "rss_anon_after_load_bytes": after_load.process.map(|p| p.rss_anon),
        "rss_anon_bytes": at_end.process.map(|p| p.rss_anon),
        "rss_file_bytes": at_end.process.map(|p| p.rss_file),
        "weights_dram_bytes": at_end.engine.weights_dram,
        "weights_cached_bytes": at_end.engine.weights_cached,
        "kv_dram_bytes": at_end.session.map(|s| s.kv_dram),
        "kv_flash_bytes": at_end.session.map(|s| s.kv_flash),
        "flash_embedding_bytes_per_token": sample.io_per_token()[0],
        "flash_kv_read_bytes_per_token": sample.io_per_token()[1],
        "flash_kv_written_bytes_per_token": sample.io_per_token()[2],
    })
}

/// Mean and sample standard deviation (0 for a single value), as llama-bench computes them.
fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Token ids for the tests: any fixed sequence will do (benchmark vocabularies are synthetic).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> u32 {
        (self.next() % n.max(1) as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_lists_and_name_bad_entries() {
        assert_eq!(parse_sizes("64,256").unwrap().0, vec![64, 256]);
        assert_eq!(parse_sizes("0").unwrap().0, vec![0]);
        assert!(parse_sizes("").unwrap_err().contains("empty"));
        assert!(parse_sizes("8,x").unwrap_err().contains("`x`"));
        assert!(parse_sizes("8,").is_err());
    }

    #[test]
    fn statistics_match_llama_bench() {
        assert_eq!(mean_sd(&[5.0]), (5.0, 0.0));
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((sd - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sizes_and_params_read_like_llama_bench() {
        assert_eq!(human_bytes(491_393_000), "468.63 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(format_params(494_032_768), "494.03 M");
        assert_eq!(format_params(7_241_732_096), "7.24 B");
    }

    #[test]
    fn the_header_has_llama_bench_columns() {
        let header = table_header();
        let first = header.lines().next().unwrap();
        let names: Vec<&str> = first
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            names,
            [
                "model", "size", "params", "backend", "threads", "test", "t/s"
            ]
        );
        assert!(header.lines().nth(1).unwrap().contains("---------: |"));
    }
}
