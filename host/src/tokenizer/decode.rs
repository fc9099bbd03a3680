//! From ids back to text: each token's bytes, and a streaming decoder for generation.
//!
//! A token's bytes are what it contributes to generated text (llama.cpp's `token_to_piece`
//! without special rendering): SentencePiece pieces with '▁' turned back into spaces,
//! byte-level pieces mapped back to raw bytes, `<0xXX>` byte tokens as the byte, user-defined
//! tokens as their text, and nothing for control, unknown and unused tokens. A token may end
//! in the middle of a UTF-8 sequence, which is why [`StreamDecoder`] holds bytes back.

use super::Tokenizer;
use super::bytes::char_to_byte;
use super::spm::SPACE_MARK;
use super::vocab::{TokenType, TokenizerModel, Vocab, parse_byte_token};

/// The bytes every token contributes to generated text, indexed by id.
pub(crate) fn build_pieces(vocab: &Vocab) -> Vec<Box<[u8]>> {
    vocab
        .tokens
        .iter()
        .zip(&vocab.types)
        .map(|(text, &ty)| piece(vocab.model, text, ty).into_boxed_slice())
        .collect()
}

fn piece(model: TokenizerModel, text: &str, ty: TokenType) -> Vec<u8> {
    match ty {
        TokenType::Control | TokenType::Unknown | TokenType::Unused | TokenType::Undefined => {
            Vec::new()
        }
        TokenType::UserDefined => text.as_bytes().to_vec(),
        TokenType::Byte => match parse_byte_token(text) {
            Some(b) => vec![b],
            None => text.as_bytes().to_vec(),
        },
        TokenType::Normal => match model {
            TokenizerModel::Spm => text.replace(SPACE_MARK, " ").into_bytes(),
            TokenizerModel::Bpe => {
                let mut out = Vec::with_capacity(text.len());
                for c in text.chars() {
                    match char_to_byte(c) {
                        Some(b) => out.push(b),
                        // Not a byte-level character: keep it as text (llama.cpp writes an
                        // "[UNK_BYTE_..]" marker instead).
                        None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                out
            }
        },
    }
}

/// Turns generated ids into text as they arrive.
///
/// Each [`push`](StreamDecoder::push) returns the text that became complete; bytes of a UTF-8
/// sequence split across tokens are held until the rest arrives, and invalid bytes become
/// U+FFFD. Pushing every id and then calling [`finish`](StreamDecoder::finish) yields exactly
/// [`Tokenizer::decode`] of the same ids, including the space dropped after BOS.
#[derive(Clone, Debug)]
pub struct StreamDecoder<'t> {
    tokenizer: &'t Tokenizer,
    pending: Vec<u8>,
    prev: Option<u32>,
}

impl<'t> StreamDecoder<'t> {
    /// A decoder for a stream that starts fresh: the first token keeps its leading space
    /// unless it follows a BOS pushed before it.
    pub fn new(tokenizer: &'t Tokenizer) -> StreamDecoder<'t> {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
            prev: None,
        }
    }

    /// A decoder for tokens that continue `prompt`: if the prompt ends with BOS, the first
    /// generated piece loses its leading space, as it would in [`Tokenizer::decode`].
    pub fn after(tokenizer: &'t Tokenizer, prompt: &[u32]) -> StreamDecoder<'t> {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
            prev: prompt.last().copied(),
        }
    }

    /// Feeds one id; returns the text it completes (often empty for byte tokens).
    pub fn push(&mut self, id: u32) -> String {
        self.tokenizer
            .append_piece(self.prev, id, &mut self.pending);
        self.prev = Some(id);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    if let Ok(valid) = std::str::from_utf8(valid) {
                        out.push_str(valid);
                    }
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                        // An incomplete sequence at the end: wait for more bytes.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        out
    }

    /// Ends the stream; bytes still held (an unfinished UTF-8 sequence) become U+FFFD.
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}
