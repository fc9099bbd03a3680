//! Reading from bytes already in memory.

use core::convert::Infallible;

use embedded_io::ErrorType;

use crate::ReadAt;

/// [`ReadAt`] over a byte slice: a model linked into the binary, a buffer in DRAM, or a test.
#[derive(Clone, Copy, Debug, Default)]
pub struct SliceReader<'a> {
    bytes: &'a [u8],
}

impl<'a> SliceReader<'a> {
    /// A reader over `bytes`; offset 0 is the slice's first byte.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The whole underlying slice.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl ErrorType for SliceReader<'_> {
    type Error = Infallible;
}

impl ReadAt for SliceReader<'_> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(copy_at(self.bytes, offset, buf))
    }

    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Copies what `bytes` holds from `offset` into `buf`; `0` at or past the end.
pub(crate) fn copy_at(bytes: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Some(rest) = usize::try_from(offset).ok().and_then(|o| bytes.get(o..)) else {
        return 0;
    };
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadExactAtError;

    #[test]
    fn reads_ranges() {
        let data = b"hello, flash";
        let mut r = SliceReader::new(data);
        assert_eq!(r.size(), 12);
        let mut buf = [0u8; 5];
        assert_eq!(r.read_at(7, &mut buf), Ok(5));
        assert_eq!(&buf, b"flash");
        let mut buf = [0u8; 4];
        r.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hell");
    }

    #[test]
    fn short_read_at_the_end_then_eof() {
        let mut r = SliceReader::new(b"abc");
        let mut buf = [0u8; 8];
        assert_eq!(r.read_at(1, &mut buf), Ok(2));
        assert_eq!(&buf[..2], b"bc");
        assert_eq!(r.read_at(3, &mut buf), Ok(0));
        assert_eq!(r.read_at(u64::MAX, &mut buf), Ok(0));
    }

    #[test]
    fn read_exact_past_end_fails() {
        let mut r = SliceReader::new(b"abc");
        let mut buf = [0u8; 2];
        assert_eq!(
            r.read_exact_at(2, &mut buf),
            Err(ReadExactAtError::UnexpectedEof { offset: 3 })
        );
        assert_eq!(
            r.read_exact_at(u64::MAX, &mut buf),
            Err(ReadExactAtError::UnexpectedEof { offset: u64::MAX })
        );
    }

    #[test]
    fn empty_source() {
        let mut r = SliceReader::new(&[]);
        assert_eq!(r.size(), 0);
        assert_eq!(r.read_at(0, &mut [0u8; 4]), Ok(0));
        assert_eq!(r.read_exact_at(0, &mut []), Ok(()));
        assert!(r.read_exact_at(0, &mut [0u8; 1]).is_err());
    }
}
