//! Byte-level BPE as llama.cpp runs it (`llm_tokenizer_bpe`).
//!
//! Each pre-tokenized word, already spelled in GPT-2's byte alphabet, starts as one symbol per
//! character; the adjacent pair with the lowest merge rank is merged, repeatedly (the leftmost
//! pair wins a tie). Merged symbols are then looked up in the vocabulary.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::error::TokenizerError;
use super::vocab::Vocab;

/// The merge table: `(left, right) -> rank`, with the two sides interned to small ids so that a
/// lookup needs no allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Merges {
    sides: HashMap<String, u32>,
    ranks: HashMap<(u32, u32), u32>,
}

impl Merges {
    /// Parses `tokenizer.ggml.merges`. A line splits at its first space after the first
    /// character (so a left side may itself be a space); the first occurrence of a pair wins.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Merges, TokenizerError> {
        let mut merges = Merges::default();
        for (index, line) in lines.iter().enumerate() {
            let line = line.as_ref();
            let bad = || TokenizerError::BadMerge {
                index,
                line: line.to_owned(),
            };
            let first_len = line.chars().next().ok_or_else(bad)?.len_utf8();
            let split = line[first_len..].find(' ').ok_or_else(bad)? + first_len;
            let (left, right) = (&line[..split], &line[split + 1..]);
            if right.is_empty() {
                return Err(bad());
            }
            let l = merges.intern(left);
            let r = merges.intern(right);
            let rank = u32::try_from(index).map_err(|_| bad())?;
            merges.ranks.entry((l, r)).or_insert(rank);
        }
        Ok(merges)
    }

    fn intern(&mut self, side: &str) -> u32 {
        let next = self.sides.len() as u32;
        *self.sides.entry(side.to_owned()).or_insert(next)
    }

    /// Rank of merging `left` with `right`, if that merge exists.
    pub fn rank(&self, left: &str, right: &str) -> Option<u32> {
        let l = *self.sides.get(left)?;
        let r = *self.sides.get(right)?;
        self.ranks.get(&(l, r)).copied()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ranks.len()
    }
}

/// Appends the ids of one byte-level `word` to `out`. With `ignore_merges`, a word that is
/// itself a token is emitted whole (llama3-style vocabularies).
pub(crate) fn encode_word(
    vocab: &Vocab,
    merges: &Merges,
    ignore_merges: bool,
    word: &str,
    out: &mut Vec<u32>,
) {
    if word.is_empty() {
        return;
    }
    if ignore_merges {
        if let Some(id) = vocab.id(word) {
            out.push(id);
            return;
        }
    }
    let mut symbols: Vec<Symbol> = word
        .char_indices()
        .map(|(start, c)| Symbol {
            start,
            len: c.len_utf8(),
            next: None,
            prev: None,
        })
        .collect();
    for i in 0..symbols.len() {
        symbols[i].prev = i.checked_sub(1);
        symbols[i].next = (i + 1 < symbols.len()).then_some(i + 1);
    }

    let mut queue = BinaryHeap::new();
    for right in 1..symbols.len() {
        push_pair(merges, word, &symbols, right - 1, right, &mut queue);
    }
    while let Some(pair) = queue.pop() {
        let (left, right) = (symbols[pair.left], symbols[pair.right]);
        // A pair is stale once either side has changed since it was queued.
        if left.len != pair.left_len || right.len != pair.right_len || left.next != Some(pair.right)
        {
            continue;
        }
        symbols[pair.left].len += right.len;
        symbols[pair.right].len = 0;
        symbols[pair.left].next = right.next;
        if let Some(n) = right.next {
            symbols[n].prev = Some(pair.left);
        }
        if let Some(p) = left.prev {
            push_pair(merges, word, &symbols, p, pair.left, &mut queue);
        }
        if let Some(n) = right.next {
            push_pair(merges, word, &symbols, pair.left, n, &mut queue);
        }
    }

    let mut cursor = Some(0);
    while let Some(i) = cursor {
        let sym = symbols[i];
        let piece = &word[sym.start..sym.start + sym.len];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                // llama.cpp's fallback: look up each byte of the piece as a one-byte token.
                // Only ASCII bytes can match; the rest are dropped.
                for c in piece.chars().filter(char::is_ascii) {
                    if let Some(id) = vocab.id(c.encode_utf8(&mut [0; 4])) {
                        out.push(id);
                    }
                }
            }
        }
        cursor = sym.next;
    }
}

fn push_pair(
    merges: &Merges,
    word: &str,
    symbols: &[Symbol],
    left: usize,
    right: usize,
    queue: &mut BinaryHeap<Pair>,
) {
    let (l, r) = (symbols[left], symbols[right]);
    let left_text = &word[l.start..l.start + l.len];
    let right_text = &word[r.start..r.start + r.len];
    if let Some(rank) = merges.rank(left_text, right_text) {
        queue.push(Pair {
            rank,
            left,
            right,
            left_len: l.len,
            right_len: r.len,
        });
    }
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    start: usize,
    /// Byte length; 0 once merged into the symbol on its left.
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the heap pops the lowest rank, then the leftmost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pair {
    rank: u32,
    left: usize,
    right: usize,
    left_len: usize,
    right_len: usize,
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.right.cmp(&self.right))
            .then_with(|| self.left_len.cmp(&other.left_len))
            .then_with(|| self.right_len.cmp(&other.right_len))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::vocab::TokenizerSpec;

    fn vocab(tokens: &[&str]) -> Vocab {
        let spec = TokenizerSpec {
            model: "gpt2".into(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            ..TokenizerSpec::default()
        };
        Vocab::new(&spec, false).unwrap()
    }

    fn ids(v: &Vocab, merges: &[&str], ignore: bool, word: &str) -> Vec<u32> {
        let m = Merges::parse(merges).unwrap();
        let mut out = Vec::new();
        encode_word(v, &m, ignore, word, &mut out);
        out
    }

    #[test]
    fn lowest_rank_merges_first() {
        let v = vocab(&["a", "b", "c", "ab", "bc", "abc"]);
        // "b c" outranks "a b": a + bc, and "a bc" is no merge.
        assert_eq!(ids(&v, &["b c", "a b", "ab c"], false, "abc"), vec![0, 4]);
        assert_eq!(ids(&v, &["a b", "b c", "ab c"], false, "abc"), vec![5]);
    }

    #[test]
    fn leftmost_wins_a_tie() {
        let v = vocab(&["a", "aa"]);
        assert_eq!(ids(&v, &["a a"], false, "aaa"), vec![1, 0]);
    }

    #[test]
    fn ignore_merges_takes_whole_words() {
        let v = vocab(&["a", "b", "ab", "ba", "aba"]);
        assert_eq!(ids(&v, &["a b", "b a"], false, "aba"), vec![2, 0]);
        assert_eq!(ids(&v, &["a b", "b a"], true, "aba"), vec![4]);
    }

    #[test]
    fn unknown_pieces_fall_back_to_ascii_bytes() {
        let v = vocab(&["a", "b"]);
        assert_eq!(ids(&v, &[], false, "aĠb"), vec![0, 1]);
    }

    #[test]
    fn merge_lines_parse() {
        let m = Merges::parse(&["Ġ t", "  x", "a b", "a b"]).unwrap();
        assert_eq!(m.rank("Ġ", "t"), Some(0));
        assert_eq!(m.rank(" ", "x"), Some(1));
        assert_eq!(m.rank("a", "b"), Some(2));
        assert_eq!(m.len(), 3);
        for bad in ["ab", "", "a "] {
            assert!(
                matches!(
                    Merges::parse(&[bad]),
                    Err(TokenizerError::BadMerge { index: 0, .. })
                ),
                "{bad:?}"
            );
        }
    }
}
