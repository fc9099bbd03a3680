//! Argument parsing and the subcommands.

mod bench;
mod chat;
mod compute;
mod devices;
mod inspect;
mod interrupt;
mod llama_flags;
mod perplexity;
mod run;
mod sampling;
mod text_input;
mod tokenize;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Tern runs large language models from GGUF files on the CPUs and GPUs of phones, boards
/// and PCs.
#[derive(Parser, Debug)]
#[command(name = "tern", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate text from a prompt, streaming it as it comes.
    Run(run::RunArgs),
    /// Chat with an instruct model: its chat template, multi-turn, streamed replies; with
    /// standard input piped, one user turn per line.
    Chat(chat::ChatArgs),
    /// Show a model's architecture, hyperparameters, tokenizer and tensors.
    Inspect(inspect::InspectArgs),
    /// Measure prompt and generation speed, printed like llama.cpp's llama-bench.
    Bench(bench::BenchArgs),
    /// Perplexity of a text by llama.cpp's llama-perplexity protocol, and KL divergence
    /// against a base run's log-probabilities.
    Perplexity(perplexity::PerplexityArgs),
    /// Print a text's tokens, as llama.cpp's llama-tokenize does.
    Tokenize(tokenize::TokenizeArgs),
    /// List the CPU backend's kernels and cores, then the Vulkan and OpenCL devices,
    /// numbered for `--backend API --device N`, with the features they offer.
    Devices(devices::DevicesArgs),
}

/// A command that has no exit status of its own to give: success, or its error.
fn done<E: std::error::Error + 'static>(
    result: Result<(), E>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    result.map(|()| ExitCode::SUCCESS).map_err(Into::into)
}

pub fn main() -> ExitCode {
    let mut command = Cli::command();
    command.build();
    let translated = match llama_flags::translate(std::env::args_os().collect(), &command) {
        Ok(translated) => translated,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    for note in &translated.notes {
        eprintln!("note: {note}");
    }
    let cli = match Cli::try_parse_from(translated.args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Plain `tern`: the whole help, which is the answer to "what do I type?".
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line that names the problem (clap lists missing arguments on the lines
            // after the first, up to a blank line) and clap's tips (the flag or command
            // meant, for a misspelled one); `--help` has the rest.
            let text = e.render().to_string();
            let problem: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let mut problem = match problem.join(" ") {
                p if p.is_empty() => "invalid arguments".to_string(),
                p => p,
            };
            for tip in text.lines().filter_map(|l| l.trim().strip_prefix("tip: ")) {
                problem = format!("{problem}; {tip}");
            }
            eprintln!("{problem} (see `tern --help`)");
            return ExitCode::from(2);
        }
    };
    let result: Result<ExitCode, Box<dyn std::error::Error>> = match cli.command {
        Command::Run(args) => run::run(args).map_err(Into::into),
        Command::Chat(args) => chat::chat(args),
        Command::Inspect(args) => done(inspect::inspect(args)),
        Command::Bench(args) => done(bench::bench(args)),
        Command::Perplexity(args) => done(perplexity::perplexity(args)),
        Command::Tokenize(args) => done(tokenize::tokenize(args)),
        Command::Devices(args) => done(devices::devices(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
