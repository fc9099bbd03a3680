//! Encoding arbitrary text (any bytes, made UTF-8 the lossy way) with each tokenizer: ids
//! stay inside the vocabulary, and decoding gives the text back wherever that must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern::tokenizer::{Tokenizer, TokenizerModel};
use tern_fuzz::tokenizers;

fuzz_target!(|data: &[u8]| {
    let Some((tokenizer, rest)) = tokenizers::pick(data) else {
        return;
    };
    let Some((&flags, text)) = rest.split_first() else {
        return;
    };
    let (add_special, parse_special) = (flags & 1 != 0, flags & 2 != 0);
    let text = String::from_utf8_lossy(text);
    let ids = tokenizer.encode(&text, add_special, parse_special);
    let n_vocab = tokenizer.n_vocab();
    assert!(ids.iter().all(|&id| (id as usize) < n_vocab), "{ids:?}");
    if !parse_special && let Some(expected) = round_trip(tokenizer, &text, add_special) {
        assert_eq!(tokenizer.decode(&ids), expected, "ids {ids:?}");
    }
});

/// What decoding the ids of `text` (special tokens not parsed) must give, where the
/// vocabulary can spell every byte: byte-level BPE gives the text back; SentencePiece adds
/// its dummy-prefix space, which decoding drops again right after a BOS.
fn round_trip(t: &Tokenizer, text: &str, add_special: bool) -> Option<String> {
    match t.model() {
        TokenizerModel::Bpe => Some(text.to_owned()),
        // '▁' is SentencePiece's spelling of a space, so it cannot come back as itself.
        TokenizerModel::Spm if text.contains('\u{2581}') => None,
        TokenizerModel::Spm => {
            let after_bos = add_special && t.add_bos();
            let prefix = t.add_space_prefix() && !text.is_empty() && !after_bos;
            Some(if prefix {
                format!(" {text}")
            } else {
                text.to_owned()
            })
        }
    }
}
