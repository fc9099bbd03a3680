//! Bounds-checked little-endian reads over the file's bytes.
//!
//! Every read checks that its bytes are present and reports a [`Fault`] when they are not,
//! so nothing above this module indexes the file directly.

use super::error::Fault;

/// A read position in a byte slice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

macro_rules! read_le {
    ($($name:ident -> $ty:ty),* $(,)?) => {$(
        pub(crate) fn $name(&mut self) -> Result<$ty, Fault> {
            Ok(<$ty>::from_le_bytes(self.array()?))
        }
    )*};
}

impl<'a> Cursor<'a> {
    /// A cursor at byte `pos` of `bytes` (`pos` may lie past the end; reads then fail).
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, advancing past them.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Fault> {
        let taken = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end));
        match taken {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Fault::Truncated {
                pos: self.pos,
                needed: n as u64,
                available: self.remaining(),
            }),
        }
    }

    /// The bytes from `start` up to the cursor (empty if `start` is past it).
    pub(crate) fn since(&self, start: usize) -> &'a [u8] {
        self.bytes.get(start..self.pos).unwrap_or(&[])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let pos = self.pos;
        let s = self.take(N)?;
        s.try_into().map_err(|_| Fault::Truncated {
            pos,
            needed: N as u64,
            available: s.len(),
        })
    }

    read_le! {
        u8 -> u8, i8 -> i8, u16 -> u16, i16 -> i16, u32 -> u32, i32 -> i32,
        u64 -> u64, i64 -> i64, f32 -> f32, f64 -> f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_advances() {
        let bytes = [1, 0, 0, 0, 0xff, 0xfe, 2, 0, 0, 0, 0, 0, 0, 0];
        let mut c = Cursor::new(&bytes, 0);
        assert_eq!(c.u32(), Ok(1));
        assert_eq!(c.i16(), Ok(-257));
        assert_eq!(c.u64(), Ok(2));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.since(4), &bytes[4..]);
    }

    #[test]
    fn short_reads_fail_without_moving() {
        let bytes = [1, 2, 3];
        let mut c = Cursor::new(&bytes, 1);
        assert_eq!(
            c.u32(),
            Err(Fault::Truncated {
                pos: 1,
                needed: 4,
                available: 2
            })
        );
        assert_eq!(c.pos(), 1);
        assert_eq!(c.u16(), Ok(0x0302));
        assert!(c.take(usize::MAX).is_err());
    }

    #[test]
    fn a_cursor_past_the_end_reads_nothing() {
        let mut c = Cursor::new(&[0u8; 2], 10);
        assert_eq!(c.remaining(), 0);
        assert!(c.u8().is_err());
        assert!(c.take(0).is_err());
        assert_eq!(c.since(0), &[] as &[u8]);
    }
}
