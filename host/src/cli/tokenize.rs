//! `tern tokenize`: a text's tokens, printed as llama.cpp's llama-tokenize prints them, from
//! the tokenizer alone (the weights are not loaded).

use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use tern::engine::{ModelBytes, open_model};
use tern::error::EngineError;
use tern::tokenizer::Tokenizer;
use tern_core::gguf::Gguf;

use super::text_input::{process_escapes, read_text};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("text").required(true).args(["prompt", "file", "stdin"])))]
pub struct TokenizeArgs {
    /// GGUF model file whose tokenizer to use [default: the bundled stories260K model]
    #[arg(short, long, value_name = "MODEL.gguf")]
    model: Option<PathBuf>,
    /// Text to tokenize
    #[arg(short, long)]
    prompt: Option<String>,
    /// Read the text from this file (must be UTF-8; `-` reads standard input)
    #[arg(short = 'f', long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Read the text from standard input (as `-f -`)
    #[arg(long)]
    stdin: bool,
    /// Print only the ids, as `[1, 2, 3]`
    #[arg(long)]
    ids: bool,
    /// Also print the number of tokens
    #[arg(long)]
    show_count: bool,
    /// Add no BOS (or EOS) token, whatever the model asks for
    #[arg(long)]
    no_bos: bool,
    /// Read control-token spellings such as `<s>` or `<|im_start|>` as plain text
    #[arg(long)]
    no_parse_special: bool,
    /// Leave escapes as written (as llama-tokenize, this command replaces \n, \r, \t, \',
    /// \", \\ and \xHH unless told not to)
    #[arg(long)]
    no_escape: bool,
}

pub fn tokenize(args: TokenizeArgs) -> Result<(), EngineError> {
    let text = match (&args.prompt, &args.file) {
        (Some(prompt), _) => prompt.clone(),
        (None, Some(path)) => read_text(path, "text")?,
        (None, None) => read_text("-".as_ref(), "text")?,
    };
    let text = match args.no_escape {
        true => text,
        false => process_escapes(&text)?,
    };
    let (bytes, name) = match &args.model {
        Some(path) => (open_model(path)?, path.display().to_string()),
        None => (
            ModelBytes::Static(tern::bundled::STORIES260K_Q8_0),
            tern::bundled::NAME.to_string(),
        ),
    };
    let gguf = Gguf::parse(bytes.as_bytes()).map_err(|e| EngineError::Gguf {
        model: name.clone(),
        message: e.to_string(),
    })?;
    let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|source| EngineError::Tokenizer {
        model: name,
        source,
    })?;
    let ids = tokenizer.encode(&text, !args.no_bos, !args.no_parse_special);
    // A closed pipe (`| head`) ends the listing quietly.
    let _ = print(&tokenizer, &ids, &args);
    Ok(())
}

/// The listing: `[1, 2, 3]` with `--ids`, else a line per token, `    ID -> 'piece'`.
fn print(tokenizer: &Tokenizer, ids: &[u32], args: &TokenizeArgs) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if args.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "[{}]", list.join(", "))?;
    } else {
        for &id in ids {
            // The piece's bytes as they are, a part of a character included, as
            // llama-tokenize writes them on unix.
            write!(out, "{id:>6} -> '")?;
            out.write_all(&piece(tokenizer, id))?;
            writeln!(out, "'")?;
        }
    }
    if args.show_count {
        writeln!(out, "Total number of tokens: {}", ids.len())?;
    }
    out.flush()
}

/// What a token reads as: its bytes in text, or for a control token (which adds nothing to
/// generated text) its spelling, as llama.cpp's token-to-piece with special tokens shown.
fn piece(tokenizer: &Tokenizer, id: u32) -> Cow<'_, [u8]> {
    match tokenizer.token_bytes(id) {
        bytes if !bytes.is_empty() => bytes,
        _ => Cow::Borrowed(tokenizer.token_text(id).unwrap_or("").as_bytes()),
    }
}
