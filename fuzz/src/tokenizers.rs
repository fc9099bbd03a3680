//! The tokenizers the tokenizer targets run: the bundled model's SentencePiece vocabulary and
//! the byte-level BPE vocabularies of `testdata/gpt2_tokenizer/`, one per pre-tokenizer.

use std::path::Path;
use std::sync::OnceLock;

use tern::tokenizer::Tokenizer;
use tern_core::gguf::Gguf;

const BPE_FILES: [&str; 4] = ["default", "gpt-2", "llama-bpe", "qwen2"];

/// Every tokenizer, built once per process.
pub fn all() -> &'static [Tokenizer] {
    static ALL: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = vec![from_bytes(tern::bundled::STORIES260K_Q8_0)];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gpt2_tokenizer");
        for name in BPE_FILES {
            let path = dir.join(format!("{name}.gguf"));
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            all.push(from_bytes(&bytes));
        }
        all
    })
}

fn from_bytes(bytes: &[u8]) -> Tokenizer {
    let gguf = Gguf::parse(bytes).expect("a valid GGUF file");
    Tokenizer::from_gguf(&gguf).expect("a valid tokenizer")
}

/// The tokenizer a fuzz input's first byte picks, and the rest of the input.
pub fn pick(data: &[u8]) -> Option<(&'static Tokenizer, &[u8])> {
    let (&which, rest) = data.split_first()?;
    let all = all();
    Some((&all[usize::from(which) % all.len()], rest))
}
