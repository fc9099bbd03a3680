//! Tokenizers built from a GGUF file's `tokenizer.ggml.*` metadata, giving the same ids as
//! llama.cpp.
//!
//! Two algorithms cover the models Tern runs: SentencePiece BPE (`llama`: Llama 1/2, Mistral,
//! TinyLlama, llama2.c models) and byte-level BPE (`gpt2`: Llama 3, Qwen, GPT-2 and kin). Both
//! first cut the text at special tokens, then run the model's algorithm on the text in between.
//! Decoding goes token by token through precomputed byte pieces, so the streaming and
//! whole-sequence decoders cannot disagree.
//!
//! Where llama.cpp would abort (a character with no token and no byte fallback), this module
//! degrades instead: the unknown token is used, or the bytes are dropped.

mod bpe;
mod bytes;
mod decode;
mod error;
mod gguf;
mod pretokenize;
mod special;
mod spm;
mod vocab;

use std::borrow::Cow;
use std::fmt;

pub use decode::StreamDecoder;
pub use error::TokenizerError;
pub use vocab::{TokenType, TokenizerModel, TokenizerSpec};

use bpe::Merges;
use pretokenize::PreTokenizer;
use special::{Fragment, SpecialTokens};
use spm::SPACE_MARK;
use vocab::Vocab;

/// A tokenizer: text to ids and back.
#[derive(Clone)]
pub struct Tokenizer {
    vocab: Vocab,
    algorithm: Algorithm,
    specials: SpecialTokens,
    /// What each token contributes to generated text.
    pieces: Vec<Box<[u8]>>,
    /// Bytes of the longest token text: no token covers more bytes of a prompt.
    longest_token: usize,
}

#[derive(Clone, Debug)]
enum Algorithm {
    Spm,
    Bpe { merges: Merges, pre: PreTokenizer },
}

impl Tokenizer {
    /// Reads the tokenizer stored in a GGUF file's metadata.
    pub fn from_gguf(gguf: &tern_core::gguf::Gguf<'_>) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::from_spec(&gguf::read_spec(gguf)?)
    }

    /// Builds a tokenizer from a plain description (what [`from_gguf`](Self::from_gguf) reads).
    pub fn from_spec(spec: &TokenizerSpec) -> Result<Tokenizer, TokenizerError> {
        let model = TokenizerModel::from_name(&spec.model)?;
        let (algorithm, bpe_adds_bos) = match model {
            TokenizerModel::Spm => (Algorithm::Spm, false),
            TokenizerModel::Bpe => {
                let lines = spec
                    .merges
                    .as_deref()
                    .ok_or(TokenizerError::MissingKey("tokenizer.ggml.merges"))?;
                let merges = Merges::parse(lines)?;
                let pre = PreTokenizer::new(spec.pre.as_deref())?;
                let adds_bos = pre.flags().add_bos;
                (Algorithm::Bpe { merges, pre }, adds_bos)
            }
        };
        let vocab = Vocab::new(spec, bpe_adds_bos)?;
        Ok(Tokenizer {
            specials: SpecialTokens::new(&vocab),
            pieces: decode::build_pieces(&vocab),
            longest_token: vocab.tokens.iter().map(String::len).max().unwrap_or(0),
            vocab,
            algorithm,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.len()
    }

    /// The most bytes of text one token can stand for (the longest token's text: a space
    /// spelled '▁' or a byte spelled as a byte-level character only gets longer), so a text
    /// of more than `n * max_token_bytes()` bytes cannot encode to `n` tokens or fewer.
    pub fn max_token_bytes(&self) -> usize {
        self.longest_token
    }

    /// The algorithm in use.
    pub fn model(&self) -> TokenizerModel {
        self.vocab.model
    }

    /// The byte-level pre-tokenizer's name (`None` for SentencePiece).
    pub fn pre_tokenizer(&self) -> Option<&str> {
        match &self.algorithm {
            Algorithm::Spm => None,
            Algorithm::Bpe { pre, .. } => Some(pre.name()),
        }
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// Unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }

    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.vocab.pad
    }

    /// Whether [`encode`](Self::encode) with `add_special` prepends BOS (from
    /// `tokenizer.ggml.add_bos_token`, else llama.cpp's default for the model type).
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos && self.vocab.bos.is_some()
    }

    /// Whether [`encode`](Self::encode) with `add_special` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos && self.vocab.eos.is_some()
    }

    /// Whether SentencePiece text gets a leading '▁' (and decoding drops it after BOS).
    pub fn add_space_prefix(&self) -> bool {
        self.vocab.add_space_prefix
    }

    /// Whether generating `id` ends the turn: EOS, EOT, EOM and the chat end markers llama.cpp
    /// recognises by their text (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, ...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.vocab.end_of_generation.binary_search(&id).is_ok()
    }

    /// The ids that end generation, sorted.
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.vocab.end_of_generation
    }

    /// The id whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// A token's text as stored in the vocabulary ('▁' and byte-level spellings included).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(String::as_str)
    }

    /// A token's type.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.vocab.token_type(id)
    }

    /// Text to ids. `add_special` adds BOS/EOS as the model's policy says; `parse_special`
    /// lets text such as `<|im_start|>` become its control token instead of plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = self.specials.partition(&self.vocab, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.vocab.add_bos {
            out.extend(self.vocab.bos);
        }
        match &self.algorithm {
            Algorithm::Spm => self.encode_spm(&fragments, &mut out),
            Algorithm::Bpe { merges, pre } => {
                let mut word = String::new();
                for fragment in fragments {
                    match fragment {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(t) => {
                            for w in pre.split(t) {
                                word.clear();
                                bytes::encode_bytes(w.as_bytes(), &mut word);
                                let ignore_merges = pre.flags().ignore_merges;
                                bpe::encode_word(
                                    &self.vocab,
                                    merges,
                                    ignore_merges,
                                    &word,
                                    &mut out,
                                );
                            }
                        }
                    }
                }
            }
        }
        if add_special && self.vocab.add_eos {
            out.extend(self.vocab.eos);
        }
        out
    }

    /// SentencePiece: spaces become '▁', and text at the start or right after a special token
    /// gets the dummy '▁' prefix (llama.cpp's rule).
    fn encode_spm(&self, fragments: &[Fragment<'_>], out: &mut Vec<u32>) {
        let mut after_special = true;
        let mut escaped = String::new();
        for &fragment in fragments {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    escaped.clear();
                    if self.vocab.add_space_prefix && after_special {
                        escaped.push(SPACE_MARK);
                    }
                    escaped.extend(t.chars().map(|c| if c == ' ' { SPACE_MARK } else { c }));
                    spm::encode(&self.vocab, &escaped, out);
                    after_special = false;
                }
            }
        }
    }

    /// The bytes `id` contributes to generated text: byte tokens as their byte, '▁' as a
    /// space, byte-level spellings as raw bytes, nothing for control tokens. Unknown ids give
    /// nothing.
    pub fn token_bytes(&self, id: u32) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.pieces.get(id as usize).map_or(&[][..], |p| &p[..]))
    }

    /// Appends [`token_bytes`](Self::token_bytes) of `id` to `out`.
    pub fn append_token_bytes(&self, id: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.token_bytes(id));
    }

    /// Ids to text (invalid UTF-8 becomes U+FFFD). As in run.c and llama.cpp's SentencePiece
    /// handling, the piece right after BOS loses its leading space, the one the dummy prefix
    /// added.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        let mut prev = None;
        for &id in ids {
            self.append_piece(prev, id, &mut bytes);
            prev = Some(id);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Appends the bytes of `id` as it reads after `prev`.
    pub(crate) fn append_piece(&self, prev: Option<u32>, id: u32, out: &mut Vec<u8>) {
        let mut piece: &[u8] = self.pieces.get(id as usize).map_or(&[], |p| p);
        let after_bos = prev.is_some() && prev == self.vocab.bos;
        if after_bos && self.vocab.add_space_prefix {
            piece = piece.strip_prefix(b" ").unwrap_or(piece);
        }
        out.extend_from_slice(piece);
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.vocab.model)
            .field("pre", &self.pre_tokenizer())
            .field("n_vocab", &self.n_vocab())
            .field("bos", &self.vocab.bos)
            .field("eos", &self.vocab.eos)
            .field("add_bos", &self.vocab.add_bos)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
