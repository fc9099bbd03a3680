//! GPT-2's reversible map between bytes and printable characters.
//!
//! Byte-level BPE vocabularies never store raw bytes: every byte is first replaced by a
//! printable character (the 188 printable Latin-1 bytes stand for themselves, the other 68
//! are shifted to U+0100..U+0143), so that merges and tokens are plain strings. Encoding maps
//! text bytes through this table before the merges; decoding maps a piece's characters back.

/// Printable character that stands for `byte` in a byte-level vocabulary.
pub fn byte_to_char(byte: u8) -> char {
    BYTE_TO_CHAR[usize::from(byte)]
}

/// The byte a byte-level character stands for, or `None` if the character is not one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    if cp < 0x100 && is_self_mapped(cp as u8) {
        return Some(cp as u8);
    }
    // The shifted bytes take U+0100.. in increasing byte order.
    let index = cp.checked_sub(0x100)? as usize;
    SHIFTED.get(index).copied()
}

/// Appends the byte-level spelling of `bytes` to `out`.
pub fn encode_bytes(bytes: &[u8], out: &mut String) {
    out.extend(bytes.iter().map(|&b| byte_to_char(b)));
}

/// Bytes that GPT-2 leaves as themselves: `!`..`~`, `¡`..`¬` and `®`..`ÿ`.
const fn is_self_mapped(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The 68 bytes that are shifted, in increasing order; byte `SHIFTED[i]` maps to U+0100 + i.
const SHIFTED: [u8; 68] = {
    let mut out = [0u8; 68];
    let mut n = 0;
    let mut b = 0usize;
    while b < 256 {
        if !is_self_mapped(b as u8) {
            out[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    out
};

const BYTE_TO_CHAR: [char; 256] = {
    let mut out = ['\0'; 256];
    let mut shifted = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let cp = if is_self_mapped(b as u8) {
            b as u32
        } else {
            shifted += 1;
            0x100 + shifted - 1
        };
        out[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    out
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b), "byte {b:#04x}");
        }
    }

    #[test]
    fn known_spellings() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'\t'), 'ĉ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0xAD), 'Ń');
        assert_eq!(byte_to_char(0x00), 'Ā');
    }

    #[test]
    fn foreign_chars_are_not_bytes() {
        assert_eq!(char_to_byte('▁'), None);
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(char_to_byte(' '), None);
    }
}
