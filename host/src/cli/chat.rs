//! `tern chat` (and `tern run -cnv`): a conversation with an instruct model. On a terminal,
//! lines are edited with history and each reply streams as it comes; with standard input
//! piped, each line is one user turn and the replies go to standard output, so a chat
//! scripts. Each turn feeds only its own tokens: the KV cache keeps the earlier turns.

use std::io::{BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tern::chat::{ChatTemplate, Message};
use tern::engine::{ChatOptions, ChatReply, Engine, GenerateOptions, Session, StopReason};
use tern::error::EngineError;

use super::compute::ComputeArgs;
use super::interrupt;
use super::run::load;
use super::sampling::{SamplingArgs, parse_n_predict};
use super::text_input::{process_escapes, read_text};

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct ChatArgs {
    /// GGUF model file of an instruct model [default: the bundled stories260K Q8_0 model,
    /// which is no chat model: give it --chat-template to try the command]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Instructions for the whole conversation, sent as its system message
    #[arg(long = "system-prompt", value_name = "TEXT")]
    system_prompt: Option<String>,
    /// The first user message, answered before the first line is read
    #[arg(short, long)]
    prompt: Option<String>,
    /// Read the first user message from this file instead (must be UTF-8)
    #[arg(short = 'f', long, value_name = "FILE", conflicts_with = "prompt")]
    file: Option<PathBuf>,
    /// Replace escapes in the system prompt and the first message, as llama.cpp does: \n,
    /// \r, \t, \', \", \\ and \xHH
    #[arg(short = 'e', long)]
    escape: bool,
    /// The chat template: a built-in one by name (chatml, llama2, llama3, mistral, gemma,
    /// qwen3) or a Jinja file [default: the model's `tokenizer.chat_template`]
    #[arg(long, value_name = "NAME|FILE")]
    chat_template: Option<String>,
    /// Most tokens of each reply (-1: until the template's end of turn or a full context)
    #[arg(short = 'n', long = "n-predict", default_value = "-1", value_parser = parse_n_predict)]
    n_predict: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Context size in tokens, shared by every turn of the conversation [default: the
    /// model's, at most 4096]
    #[arg(short = 'c', long = "ctx-size")]
    ctx_size: Option<usize>,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn chat(args: ChatArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let escaped = |text: String| match args.escape {
        true => process_escapes(&text),
        false => Ok(text),
    };
    let system = args.system_prompt.clone().map(escaped).transpose()?;
    let first = match (&args.prompt, &args.file) {
        (Some(prompt), _) => Some(prompt.clone()),
        (None, Some(path)) => Some(read_text(path, "first message")?),
        (None, None) => None,
    };
    let first = first.map(escaped).transpose()?;
    let template = args
        .chat_template
        .as_deref()
        .map(ChatTemplate::from_name_or_file)
        .transpose()?;
    let sampler = args.sampling.params()?;
    let options = args.compute.options(
        args.model.as_deref(),
        args.ctx_size,
        args.compute.batch_size,
    );
    let mut engine = load(args.model.as_deref(), options)?;
    if let Some(template) = template {
        engine.set_chat_template(template);
    }
    match engine.ready_chat_template() {
        Err(e @ EngineError::NoChatTemplate { .. }) => {
            return Err(format!("{e}, with --chat-template NAME|FILE").into());
        }
        result => result?,
    };
    let mut input = LineSource::new();
    if input.is_terminal() {
        eprintln!(
            "chatting with {}: /reset clears the conversation, /exit or Ctrl-D ends it, \
             Ctrl-C stops a reply",
            engine.name()
        );
    }
    args.sampling.say_seed(&sampler);
    interrupt::install();
    let options = ChatOptions {
        generate: GenerateOptions {
            max_tokens: args.n_predict,
            sampler,
        },
        ..ChatOptions::default()
    };
    let mut chat = Conversation::new(&engine, system, options)?;
    if let Some(first) = first {
        if input.is_terminal() {
            println!("> {first}");
        }
        chat.turn(first)?;
    }
    loop {
        match input.next_line()? {
            Line::End => return Ok(ExitCode::SUCCESS),
            Line::Cleared => eprintln!("(the line was cleared; /exit or Ctrl-D ends the chat)"),
            Line::Text(text) => match text.trim() {
                "" => {}
                "/exit" | "/quit" => return Ok(ExitCode::SUCCESS),
                "/reset" | "/clear" => {
                    chat.reset();
                    eprintln!("(a new conversation)");
                }
                "/help" | "/?" => eprintln!(
                    "/reset clears the conversation, /exit ends it (as Ctrl-D does); Ctrl-C \
                     stops a reply"
                ),
                _ => chat.turn(text)?,
            },
        }
    }
}

/// One conversation on one session: the messages so far, each turn replied to in place.
struct Conversation<'e> {
    session: Session<'e>,
    engine: &'e Engine,
    messages: Vec<Message>,
    /// The system message, which `/reset` keeps.
    system: Option<Message>,
    options: ChatOptions,
}

impl<'e> Conversation<'e> {
    fn new(
        engine: &'e Engine,
        system: Option<String>,
        options: ChatOptions,
    ) -> Result<Conversation<'e>, EngineError> {
        let system = system.map(Message::system);
        Ok(Conversation {
            session: engine.session()?,
            engine,
            messages: system.iter().cloned().collect(),
            system,
            options,
        })
    }

    /// Starts over: only the system message, and an empty KV cache.
    fn reset(&mut self) {
        self.messages = self.system.iter().cloned().collect();
        self.session.reset();
    }

    /// Replies to `text`, streaming the reply to standard output; a reply stopped by Ctrl-C
    /// stays in the conversation as far as it went. A turn the model cannot take (longer
    /// than what is left of the context, a template that refuses it) is one error line and
    /// leaves the conversation as it was; an error of the backend ends the chat.
    fn turn(&mut self, text: String) -> Result<(), EngineError> {
        self.messages.push(Message::user(text));
        interrupt::clear();
        let mut out = std::io::stdout().lock();
        let result = self.session.chat(&self.messages, &self.options, |piece| {
            if interrupt::requested() {
                return ControlFlow::Break(());
            }
            // A closed pipe stops the reply; the next line then ends the chat.
            match out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        });
        let _ = writeln!(out);
        let _ = out.flush();
        let reply = match result {
            Ok(reply) => reply,
            Err(e) if turn_error_keeps_chat(&e) => {
                self.messages.pop();
                eprintln!("error: {e}");
                if matches!(e, EngineError::PromptTooLong { .. }) {
                    eprintln!("(/reset starts a new conversation with the whole context)");
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let interrupted = interrupt::requested();
        interrupt::clear();
        self.say_timings(&reply, interrupted);
        if reply.stats.stop == StopReason::ContextFull {
            eprintln!(
                "(the context of {} tokens is full; /reset starts a new conversation)",
                self.engine.n_ctx()
            );
        }
        self.messages.push(Message::assistant(reply.text));
        Ok(())
    }

    /// One stderr line per reply: what the turn fed (its own tokens; the rest of the
    /// conversation came from the KV cache) and generated, and how fast.
    fn say_timings(&self, reply: &ChatReply, interrupted: bool) {
        let stats = &reply.stats;
        let stop = match (interrupted, stats.stop) {
            (true, _) => "Interrupted".to_string(),
            (false, StopReason::EndOfGeneration) => "EndOfTurn".to_string(),
            (false, stop) => format!("{stop:?}"),
        };
        eprintln!(
            "prompt: {} tokens ({} reused), {:.1} tok/s | reply: {} tokens, {:.1} tok/s | stop: {stop}",
            stats.prompt_tokens,
            reply.reused_tokens,
            stats.prompt_tokens_per_second(),
            stats.generated.len(),
            stats.generated_tokens_per_second(),
        );
    }
}

/// Errors that concern one turn only: the chat goes on without it.
fn turn_error_keeps_chat(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::PromptTooLong { .. }
            | EngineError::PromptTooManyBytes { .. }
            | EngineError::ChatTemplate(_)
            | EngineError::EmptyPrompt
    )
}

/// What the user typed.
enum Line {
    Text(String),
    /// Ctrl-C at the prompt: the line is dropped.
    Cleared,
    /// Ctrl-D, or the end of piped input.
    End,
}

/// Where user turns come from: a line editor on a terminal, else standard input's lines.
enum LineSource {
    Terminal(Box<DefaultEditor>),
    Piped(std::io::StdinLock<'static>),
}

impl LineSource {
    fn new() -> LineSource {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            if let Ok(editor) = DefaultEditor::new() {
                return LineSource::Terminal(Box::new(editor));
            }
        }
        LineSource::Piped(stdin.lock())
    }

    fn is_terminal(&self) -> bool {
        matches!(self, LineSource::Terminal(_))
    }

    fn next_line(&mut self) -> Result<Line, EngineError> {
        match self {
            LineSource::Terminal(editor) => match editor.readline("> ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Ok(Line::Text(line))
                }
                Err(ReadlineError::Interrupted) => Ok(Line::Cleared),
                Err(ReadlineError::Eof) => Ok(Line::End),
                Err(e) => Err(EngineError::Option(format!(
                    "cannot read the terminal: {e}"
                ))),
            },
            LineSource::Piped(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => Ok(Line::End),
                    Ok(_) => Ok(Line::Text(line.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => Err(EngineError::Option(format!(
                        "cannot read standard input: {e}"
                    ))),
                }
            }
        }
    }
}
