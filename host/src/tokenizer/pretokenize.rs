//! Pre-tokenizers for byte-level BPE: the regexes that cut text into words before merging,
//! chosen by `tokenizer.ggml.pre` exactly as llama.cpp chooses them.
//!
//! A pre-tokenizer is a list of patterns applied in turn: each one splits every piece left by
//! the previous one into its matches and the text between them (llama.cpp's
//! `unicode_regex_split`). llama.cpp runs hand-written matchers for the common patterns; they
//! implement the same regexes, which `fancy-regex` runs here (the lookahead in `\s+(?!\S)` is
//! why a plain `regex` is not enough).

use fancy_regex::Regex;

use super::error::TokenizerError;

/// GPT-2's original pattern.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Llama 3's pattern, with llama.cpp's spelling of the case-insensitive contractions (Unicode
/// case folding would also match e.g. U+017F for `s`, which llama.cpp does not).
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's pattern: Llama 3's with single digits.
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen3.5's pattern: letters runs also take combining marks.
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a pre-tokenizer family behaves besides its patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PreFlags {
    /// A word that is itself a token skips the merges.
    pub ignore_merges: bool,
    /// BOS is added when `tokenizer.ggml.add_bos_token` is absent.
    pub add_bos: bool,
}

/// Patterns and flags for `name`, or `None` if this crate does not implement it.
fn family(name: &str) -> Option<(&'static [&'static str], PreFlags)> {
    const PLAIN: PreFlags = PreFlags {
        ignore_merges: false,
        add_bos: false,
    };
    Some(match name {
        "default" => (
            &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
            PLAIN,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (
            &[LLAMA3],
            PreFlags {
                ignore_merges: true,
                add_bos: true,
            },
        ),
        "dbrx" | "smaug-bpe" => (&[LLAMA3], PLAIN),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
        | "solar-open" => (&[QWEN2], PLAIN),
        "qwen35" => (&[QWEN35], PLAIN),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "trillion"
        | "granite-docling" | "exaone4" => (&[GPT2], PLAIN),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => (&[r"\p{N}", GPT2], PLAIN),
        "falcon" => (&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"], PLAIN),
        _ => return None,
    })
}

/// A compiled pre-tokenizer.
#[derive(Clone, Debug)]
pub(crate) struct PreTokenizer {
    name: String,
    patterns: Vec<Regex>,
    flags: PreFlags,
}

impl PreTokenizer {
    /// Builds the pre-tokenizer `name`; a missing name means `default`, as in llama.cpp.
    pub fn new(name: Option<&str>) -> Result<PreTokenizer, TokenizerError> {
        let name = name.filter(|n| !n.is_empty()).unwrap_or("default");
        let (sources, flags) =
            family(name).ok_or_else(|| TokenizerError::UnknownPreTokenizer(name.to_owned()))?;
        let patterns = sources
            .iter()
            .map(|p| {
                Regex::new(p).map_err(|e| TokenizerError::BadPattern {
                    pre: name.to_owned(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PreTokenizer {
            name: name.to_owned(),
            patterns,
            flags,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn flags(&self) -> PreFlags {
        self.flags
    }

    /// Cuts `text` into words; the words concatenate back to `text`.
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut pieces = vec![text];
        for pattern in &self.patterns {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for piece in pieces {
                split_one(pattern, piece, &mut next);
            }
            pieces = next;
        }
        pieces.retain(|p| !p.is_empty());
        pieces
    }
}

/// Pushes the matches of `pattern` in `text` and the gaps between them, in order.
fn split_one<'t>(pattern: &Regex, text: &'t str, out: &mut Vec<&'t str>) {
    let mut last = 0;
    for m in pattern.find_iter(text) {
        let Ok(m) = m else {
            // The backtracking limit was hit (only on pathological input): keep the rest
            // as one word rather than fail.
            break;
        };
        if m.start() > last {
            out.push(&text[last..m.start()]);
        }
        if m.end() > m.start() {
            out.push(m.as_str());
        }
        last = m.end();
    }
    if last < text.len() {
        out.push(&text[last..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::new(Some(pre)).unwrap();
        let words = p.split(text);
        assert_eq!(words.concat(), text);
        words.into_iter().map(String::from).collect()
    }

    #[test]
    fn every_family_compiles() {
        for name in [
            "default",
            "llama-bpe",
            "dbrx",
            "qwen2",
            "qwen35",
            "gpt-2",
            "starcoder",
            "falcon",
        ] {
            PreTokenizer::new(Some(name)).unwrap();
        }
        assert_eq!(PreTokenizer::new(None).unwrap().name(), "default");
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert_eq!(
            PreTokenizer::new(Some("no-such-pre")).unwrap_err(),
            TokenizerError::UnknownPreTokenizer("no-such-pre".into())
        );
    }

    #[test]
    fn qwen2_splits_like_its_regex() {
        assert_eq!(
            split("qwen2", "Hello world, I'LL pay 1234!\n\n  ok  "),
            [
                "Hello", " world", ",", " I", "'LL", " pay", " ", "1", "2", "3", "4", "!\n\n", " ",
                " ok", "  "
            ]
        );
        // Whitespace before a newline joins it; a space run gives its last space to the word.
        assert_eq!(
            split("qwen2", "a \n\tb   c"),
            ["a", " \n", "\tb", "  ", " c"]
        );
    }

    #[test]
    fn llama3_groups_digits_by_three() {
        assert_eq!(split("llama-bpe", "12345678"), ["123", "456", "78"]);
    }

    #[test]
    fn default_applies_its_patterns_in_turn() {
        assert_eq!(
            split("default", "x+=1234 ok"),
            ["x", "+=", "123", "4", " ok"]
        );
    }
}
