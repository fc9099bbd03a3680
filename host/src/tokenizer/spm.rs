//! SentencePiece BPE as llama.cpp runs it (`llm_tokenizer_spm`).
//!
//! The text is split into characters, then the adjacent pair whose concatenation is a token
//! with the highest score is merged, repeatedly (the leftmost pair wins a tie). Characters
//! left over that are not tokens fall back to their UTF-8 bytes as `<0xXX>` tokens. Unlike
//! the `sentencepiece` library, runs of spaces are kept, which is what llama.cpp and llama2.c
//! do.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// llama.cpp's whitespace escape: every space becomes U+2581 ('▁').
pub(crate) const SPACE_MARK: char = '\u{2581}';

/// Appends the ids of `text` (already escaped, dummy prefix already added) to `out`.
pub(crate) fn encode(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    if text.is_empty() {
        return;
    }
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    for (start, c) in text.char_indices() {
        let i = symbols.len();
        symbols.push(Symbol {
            start,
            len: c.len_utf8(),
            prev: i.checked_sub(1),
            next: None,
        });
        if i > 0 {
            symbols[i - 1].next = Some(i);
        }
    }

    let mut queue = BinaryHeap::new();
    for right in 1..symbols.len() {
        push_pair(vocab, text, &symbols, right - 1, right, &mut queue);
    }

    while let Some(pair) = queue.pop() {
        let (left, right) = (&symbols[pair.left], &symbols[pair.right]);
        // Skip pairs made stale by an earlier merge of either side.
        if left.len == 0 || right.len == 0 || left.len + right.len != pair.len {
            continue;
        }
        let right_next = right.next;
        symbols[pair.left].len = pair.len;
        symbols[pair.right].len = 0;
        symbols[pair.left].next = right_next;
        if let Some(n) = right_next {
            symbols[n].prev = Some(pair.left);
        }
        if let Some(p) = symbols[pair.left].prev {
            push_pair(vocab, text, &symbols, p, pair.left, &mut queue);
        }
        if let Some(n) = right_next {
            push_pair(vocab, text, &symbols, pair.left, n, &mut queue);
        }
    }

    let mut cursor = Some(0);
    while let Some(i) = cursor {
        let sym = &symbols[i];
        let piece = &text[sym.start..sym.start + sym.len];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    // A vocabulary without byte tokens cannot spell this character; llama.cpp
                    // aborts here, we fall back to the unknown token (or drop the byte).
                    if let Some(id) = vocab.spm_byte_token(b).or(vocab.unk) {
                        out.push(id);
                    }
                }
            }
        }
        cursor = sym.next;
    }
}

/// Queues the merge of `left` and `right` if their concatenation is a token.
fn push_pair(
    vocab: &Vocab,
    text: &str,
    symbols: &[Symbol],
    left: usize,
    right: usize,
    queue: &mut BinaryHeap<Pair>,
) {
    let start = symbols[left].start;
    let len = symbols[left].len + symbols[right].len;
    if let Some(id) = vocab.id(&text[start..start + len]) {
        queue.push(Pair {
            score: vocab.scores[id as usize],
            left,
            right,
            len,
        });
    }
}

/// A run of the text: one character at first, growing as merges absorb its right neighbour.
#[derive(Clone, Copy, Debug)]
struct Symbol {
    start: usize,
    /// Byte length; 0 once merged into the symbol on its left.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the heap pops the highest score, then the leftmost.
#[derive(Clone, Copy, Debug)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    /// Byte length of the merged text, to recognise stale entries.
    len: usize,
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::vocab::TokenizerSpec;

    /// A toy vocabulary: bytes for `x` only, and pieces whose scores force a merge order.
    fn vocab() -> Vocab {
        let tokens = [
            ("<unk>", 0.0, 2),
            ("<s>", 0.0, 3),
            ("</s>", 0.0, 3),
            ("<0x78>", 0.0, 6), // 'x'
            ("▁", -1.0, 1),
            ("a", -2.0, 1),
            ("b", -2.0, 1),
            ("ab", -3.0, 1),
            ("▁a", -1.5, 1),
            ("▁ab", -0.5, 1),
            ("bb", -0.1, 1),
        ];
        let spec = TokenizerSpec {
            model: "llama".into(),
            tokens: tokens.iter().map(|t| t.0.to_string()).collect(),
            scores: Some(tokens.iter().map(|t| t.1).collect()),
            token_types: Some(tokens.iter().map(|t| t.2).collect()),
            ..TokenizerSpec::default()
        };
        Vocab::new(&spec, false).unwrap()
    }

    fn ids(text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        encode(&vocab(), text, &mut out);
        out
    }

    #[test]
    fn highest_score_merges_first() {
        // "▁a" (-1.5) beats "ab" (-3.0); then "▁ab" forms from "▁a" + "b".
        assert_eq!(ids("▁ab"), vec![9]);
        // "bb" (-0.1) is merged before "ab": "a" "bb".
        assert_eq!(ids("abb"), vec![5, 10]);
    }

    #[test]
    fn leftmost_wins_a_tie() {
        // "bbb": both pairs score -0.1; the left one merges.
        assert_eq!(ids("bbb"), vec![10, 6]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes_or_unk() {
        assert_eq!(ids("x"), vec![3]);
        // 'é' has no byte tokens here: each of its two bytes becomes <unk>.
        assert_eq!(ids("é"), vec![0, 0]);
    }

    #[test]
    fn runs_of_spaces_are_kept() {
        assert_eq!(ids("▁▁a"), vec![4, 8]);
    }
}
