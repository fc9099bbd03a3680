//! Cutting text at special tokens before the model's algorithm sees it (llama.cpp's
//! `tokenizer_st_partition`).
//!
//! User-defined tokens are always cut out; control and unknown tokens only when the caller
//! asks to parse special text (so that a chat marker typed by a user stays plain text).
//! Longer tokens are cut first, so `<|im_start|>` wins over a shorter token inside it.

use super::vocab::{TokenType, Vocab};

/// A piece of the input: raw text still to be tokenized, or a token already found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// The special tokens of a vocabulary, longest text first.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpecialTokens {
    /// `(id, always)`: `always` is true for user-defined tokens, which are cut even when
    /// special text is not parsed.
    ordered: Vec<(u32, bool)>,
}

impl SpecialTokens {
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mut ordered: Vec<(u32, bool)> = vocab
            .types
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_special())
            .map(|(i, &t)| (i as u32, t == TokenType::UserDefined))
            .collect();
        // Stable: among equal lengths, the lower id is tried first.
        ordered.sort_by_key(|&(id, _)| std::cmp::Reverse(vocab.tokens[id as usize].len()));
        SpecialTokens { ordered }
    }

    /// Splits `text` into fragments.
    pub fn partition<'t>(
        &self,
        vocab: &Vocab,
        text: &'t str,
        parse_special: bool,
    ) -> Vec<Fragment<'t>> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut fragments = vec![Fragment::Text(text)];
        for &(id, always) in &self.ordered {
            if !(always || parse_special) {
                continue;
            }
            let needle = vocab.tokens[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(t) = fragment else {
                    next.push(fragment);
                    continue;
                };
                let mut last = 0;
                for (at, _) in t.match_indices(needle) {
                    if at > last {
                        next.push(Fragment::Text(&t[last..at]));
                    }
                    next.push(Fragment::Token(id));
                    last = at + needle.len();
                }
                if last < t.len() {
                    next.push(Fragment::Text(&t[last..]));
                }
            }
            fragments = next;
        }
        fragments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::vocab::TokenizerSpec;

    fn vocab() -> Vocab {
        let tokens = [
            ("a", 1),
            ("<|im_start|>", 3),
            ("<|im", 4),
            ("<tool>", 4),
            ("<unk>", 2),
        ];
        let spec = TokenizerSpec {
            model: "gpt2".into(),
            tokens: tokens.iter().map(|t| t.0.to_string()).collect(),
            token_types: Some(tokens.iter().map(|t| t.1).collect()),
            ..TokenizerSpec::default()
        };
        Vocab::new(&spec, false).unwrap()
    }

    #[test]
    fn control_tokens_only_when_parsing_special_text() {
        let v = vocab();
        let s = SpecialTokens::new(&v);
        use Fragment::*;
        assert_eq!(
            s.partition(&v, "x<|im_start|>y<tool>", true),
            [Text("x"), Token(1), Text("y"), Token(3)]
        );
        // Without parsing, the user-defined "<|im" still cuts the control token apart.
        assert_eq!(
            s.partition(&v, "x<|im_start|>y<tool>", false),
            [Text("x"), Token(2), Text("_start|>y"), Token(3)]
        );
        assert_eq!(s.partition(&v, "<unk><unk>", true), [Token(4), Token(4)]);
        assert_eq!(s.partition(&v, "<unk>", false), [Text("<unk>")]);
        assert!(s.partition(&v, "", true).is_empty());
    }
}
