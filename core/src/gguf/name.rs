//! Keys and tensor names copied into error values.
//!
//! `GgufError` outlives the bytes it describes and cannot allocate, so it carries a short
//! inline copy of the name instead of a borrow.

use core::fmt;

/// Bytes of a name kept inside an error; longer names are cut at a character boundary.
/// Sized so every `GgufError` stays small enough to return by value cheaply.
const CAP: usize = 46;

/// A name (metadata key or tensor name) as an error reports it: the first bytes of the name,
/// and whether it was cut.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShortName {
    buf: [u8; CAP],
    len: u8,
    cut: bool,
}

impl ShortName {
    /// No name: used before an entry's name has been read.
    pub const EMPTY: ShortName = ShortName {
        buf: [0; CAP],
        len: 0,
        cut: false,
    };

    /// Copies `name`, keeping at most `CAP` bytes of whole characters.
    pub fn new(name: &str) -> ShortName {
        let mut end = name.len().min(CAP);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut buf = [0; CAP];
        if let (Some(dst), Some(src)) = (buf.get_mut(..end), name.as_bytes().get(..end)) {
            dst.copy_from_slice(src);
        }
        ShortName {
            buf,
            len: end as u8,
            cut: end < name.len(),
        }
    }

    /// The kept part of the name.
    pub fn as_str(&self) -> &str {
        let kept = self.buf.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(kept).unwrap_or("")
    }

    /// True when the original name was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.cut
    }

    /// Whether nothing is kept: the name was empty, or not read yet ([`ShortName::EMPTY`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl PartialEq<str> for ShortName {
    fn eq(&self, other: &str) -> bool {
        !self.cut && self.as_str() == other
    }
}

impl PartialEq<&str> for ShortName {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn short_names_are_kept_whole() {
        let n = ShortName::new("blk.0.attn_q.weight");
        assert_eq!(n.as_str(), "blk.0.attn_q.weight");
        assert!(!n.is_truncated());
        assert!(n == "blk.0.attn_q.weight");
        assert!(ShortName::EMPTY.is_empty());
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary() {
        // 45 ASCII bytes then a 3-byte character straddling the cap.
        let long = "a".repeat(45) + "€€";
        let n = ShortName::new(&long);
        assert_eq!(n.as_str(), "a".repeat(45));
        assert!(n.is_truncated());
        assert!(n != long.as_str());
    }
}
