//! The vocabulary: token strings, scores and types, special ids and the BOS/EOS policy.
//!
//! [`TokenizerSpec`] is the plain description read from a model file (or written by hand in a
//! test); [`Vocab`] is the validated form with the text-to-id index and llama.cpp's defaults
//! applied, so that the encoders never have to second-guess their input.

use std::collections::HashMap;

use super::error::TokenizerError;

/// What a token is for, as stored in `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// An ordinary piece of text.
    Normal,
    /// The unknown token (`<unk>`): never produced by text, rendered as nothing.
    Unknown,
    /// A control token (BOS, EOS, chat markers): matched in text only when asked, rendered as nothing.
    Control,
    /// A token added by the model's authors: always matched in text, rendered as its text.
    UserDefined,
    /// A reserved slot: never produced by text, rendered as nothing.
    Unused,
    /// A raw byte `<0xXX>` (SentencePiece byte fallback).
    Byte,
    /// A type number this crate does not know; treated like `Unused`.
    Undefined,
}

impl TokenType {
    /// Maps the GGUF token-type number (llama.cpp's `llama_token_type`).
    pub fn from_gguf(value: i32) -> TokenType {
        match value {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Whether the text splitter looks for this token before the model's algorithm runs.
    pub(crate) fn is_special(self) -> bool {
        matches!(
            self,
            TokenType::Control | TokenType::UserDefined | TokenType::Unknown
        )
    }
}

/// The tokenizer algorithm named by `tokenizer.ggml.model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerModel {
    /// `llama`: SentencePiece BPE with scores and byte fallback.
    Spm,
    /// `gpt2`: byte-level BPE with ranked merges and a regex pre-tokenizer.
    Bpe,
}

impl TokenizerModel {
    /// Parses `tokenizer.ggml.model`.
    pub fn from_name(name: &str) -> Result<TokenizerModel, TokenizerError> {
        match name {
            "llama" => Ok(TokenizerModel::Spm),
            "gpt2" => Ok(TokenizerModel::Bpe),
            other => Err(TokenizerError::UnknownModel(other.to_owned())),
        }
    }
}

/// A tokenizer as described by a model file's `tokenizer.ggml.*` keys, before validation.
///
/// `None` means the key is absent; the defaults are then llama.cpp's for the model type.
#[derive(Clone, Debug, Default)]
pub struct TokenizerSpec {
    /// `tokenizer.ggml.model`.
    pub model: String,
    /// `tokenizer.ggml.pre` (byte-level BPE only).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type`, as GGUF numbers.
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`, highest priority first, each `"left right"`.
    pub merges: Option<Vec<String>>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos: Option<u32>,
    /// `tokenizer.ggml.eot_token_id`.
    pub eot: Option<u32>,
    /// `tokenizer.ggml.eom_token_id`.
    pub eom: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unk: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
}

/// Texts that end generation whatever their declared type; the list llama.cpp matches on,
/// since converters rarely record these ids in metadata.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    // fill-in-the-middle padding, repository and file separators
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// A validated vocabulary.
#[derive(Clone, Debug)]
pub(crate) struct Vocab {
    pub model: TokenizerModel,
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    pub types: Vec<TokenType>,
    /// Text to id; for duplicate texts the last id wins, as in llama.cpp.
    pub ids: HashMap<String, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    /// Sorted ids that end generation.
    pub end_of_generation: Vec<u32>,
}

impl Vocab {
    /// Validates `spec` and applies llama.cpp's defaults. `bpe_adds_bos` is the pre-tokenizer's
    /// default BOS policy (llama3-style vocabularies add BOS, most byte-level ones do not).
    pub fn new(spec: &TokenizerSpec, bpe_adds_bos: bool) -> Result<Vocab, TokenizerError> {
        let model = TokenizerModel::from_name(&spec.model)?;
        let n = spec.tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if u32::try_from(n).is_err() {
            return Err(TokenizerError::TooManyTokens(n));
        }
        let scores = match &spec.scores {
            Some(s) => {
                check_len("tokenizer.ggml.scores", s.len(), n)?;
                s.clone()
            }
            None => vec![0.0; n],
        };
        let mut types = match &spec.token_types {
            Some(t) => {
                check_len("tokenizer.ggml.token_type", t.len(), n)?;
                t.iter().map(|&v| TokenType::from_gguf(v)).collect()
            }
            None => vec![TokenType::Normal; n],
        };

        let tokens: Vec<String> = spec
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    // llama.cpp renames empty tokens so that they can never match text.
                    format!("[EMPTY_{i}]")
                } else {
                    t.clone()
                }
            })
            .collect();
        let mut ids = HashMap::with_capacity(n);
        for (i, t) in tokens.iter().enumerate() {
            ids.insert(t.clone(), i as u32);
        }

        let in_range = |id: u32| (id as usize) < n;
        // A key overrides the default only when it names a real token.
        let special = |key: Option<u32>, default: Option<u32>| match key {
            Some(id) if in_range(id) => Some(id),
            _ => default.filter(|&id| in_range(id)),
        };
        let (bos, eos, unk, default_add_bos) = match model {
            TokenizerModel::Spm => (
                special(spec.bos, Some(1)),
                special(spec.eos, Some(2)),
                special(spec.unk, Some(0)),
                true,
            ),
            TokenizerModel::Bpe => (
                special(spec.bos, Some(11)),
                special(spec.eos, Some(11)),
                special(spec.unk, None),
                bpe_adds_bos,
            ),
        };
        let pad = special(spec.pad, None);
        let eot = special(spec.eot, None);
        let eom = special(spec.eom, None);

        let mut end_of_generation: Vec<u32> = [eos, eot, eom].into_iter().flatten().collect();
        for (i, t) in tokens.iter().enumerate() {
            if END_OF_GENERATION_TEXTS.contains(&t.as_str()) {
                end_of_generation.push(i as u32);
                // Converters sometimes mark these as normal text; llama.cpp treats them as control.
                if types[i] != TokenType::Control {
                    types[i] = TokenType::Control;
                }
            }
        }
        end_of_generation.sort_unstable();
        end_of_generation.dedup();

        Ok(Vocab {
            model,
            tokens,
            scores,
            types,
            ids,
            bos,
            eos,
            unk,
            pad,
            add_bos: spec.add_bos.unwrap_or(default_add_bos),
            add_eos: spec.add_eos.unwrap_or(false),
            add_space_prefix: match model {
                TokenizerModel::Spm => spec.add_space_prefix.unwrap_or(true),
                TokenizerModel::Bpe => spec.add_space_prefix.unwrap_or(false),
            },
            end_of_generation,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// SentencePiece byte fallback: the `<0xXX>` token, else a token spelled as the byte itself.
    pub fn spm_byte_token(&self, byte: u8) -> Option<u32> {
        let hex = format!("<0x{byte:02X}>");
        self.id(&hex).or_else(|| {
            let c = char::from(byte);
            if byte.is_ascii() {
                self.id(c.encode_utf8(&mut [0; 4]))
            } else {
                None
            }
        })
    }
}

fn check_len(key: &'static str, found: usize, expected: usize) -> Result<(), TokenizerError> {
    if found == expected {
        Ok(())
    } else {
        Err(TokenizerError::LengthMismatch {
            key,
            found,
            expected,
        })
    }
}

/// Parses a `<0xXX>` byte token.
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(model: &str, tokens: &[&str]) -> TokenizerSpec {
        TokenizerSpec {
            model: model.into(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            ..TokenizerSpec::default()
        }
    }

    #[test]
    fn spm_defaults_follow_llama_cpp() {
        let v = Vocab::new(&spec("llama", &["<unk>", "<s>", "</s>", "a"]), false).unwrap();
        assert_eq!((v.unk, v.bos, v.eos), (Some(0), Some(1), Some(2)));
        assert!(v.add_bos && !v.add_eos && v.add_space_prefix);
        assert_eq!(v.end_of_generation, vec![2]);
    }

    #[test]
    fn defaults_out_of_range_are_dropped_and_bad_keys_ignored() {
        let mut s = spec("gpt2", &["a", "b"]);
        s.eos = Some(7);
        let v = Vocab::new(&s, false).unwrap();
        assert_eq!((v.bos, v.eos, v.unk), (None, None, None));
        assert!(!v.add_bos);
        s.eos = Some(1);
        s.add_bos = Some(true);
        let v = Vocab::new(&s, false).unwrap();
        assert_eq!(v.eos, Some(1));
        assert!(v.add_bos);
    }

    #[test]
    fn chat_end_markers_end_generation_and_become_control() {
        let mut s = spec("gpt2", &["a", "<|im_end|>", "<|endoftext|>"]);
        s.token_types = Some(vec![1, 1, 3]);
        s.eos = Some(2);
        let v = Vocab::new(&s, false).unwrap();
        assert_eq!(v.end_of_generation, vec![1, 2]);
        assert_eq!(v.types[1], TokenType::Control);
    }

    #[test]
    fn duplicate_text_maps_to_last_id_and_empty_text_is_renamed() {
        let v = Vocab::new(&spec("llama", &["x", "", "x"]), false).unwrap();
        assert_eq!(v.id("x"), Some(2));
        assert_eq!(v.tokens[1], "[EMPTY_1]");
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let mut s = spec("llama", &["a", "b"]);
        s.scores = Some(vec![0.0]);
        assert_eq!(
            Vocab::new(&s, false).unwrap_err(),
            TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.scores",
                found: 1,
                expected: 2
            }
        );
        s.scores = None;
        s.token_types = Some(vec![1, 1, 1]);
        assert!(matches!(
            Vocab::new(&s, false),
            Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.token_type",
                ..
            })
        ));
    }

    #[test]
    fn unknown_model_and_empty_vocab_are_errors() {
        assert_eq!(
            Vocab::new(&spec("bert", &["a"]), false).unwrap_err(),
            TokenizerError::UnknownModel("bert".into())
        );
        assert_eq!(
            Vocab::new(&spec("llama", &[]), false).unwrap_err(),
            TokenizerError::EmptyVocab
        );
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xff>"), Some(255));
        assert_eq!(parse_byte_token("<0x1>"), None);
        assert_eq!(parse_byte_token("0x10"), None);
    }
}
