//! Positioned reads: the capability every storage tier offers.

use core::fmt;

use embedded_io::{Error as _, ErrorKind, ErrorType};

/// A byte source read at explicit offsets, like `pread`.
///
/// Unlike `Read + Seek` there is no cursor to share, so one reader can serve reads for
/// different tensors in any order. `&mut self` leaves room for sources that do keep state
/// (a seek-based fallback, a flash controller).
pub trait ReadAt: ErrorType {
    /// Reads up to `buf.len()` bytes starting at `offset`; returns how many were read.
    ///
    /// `Ok(0)` for a non-empty `buf` means `offset` is at or past the end. A short read is
    /// not an error; use [`ReadAt::read_exact_at`] to fill the whole buffer.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, Self::Error>;

    /// Total length of the source in bytes.
    fn size(&self) -> u64;

    /// Fills `buf` from `offset`, retrying short and interrupted reads.
    ///
    /// Fails with [`ReadExactAtError::UnexpectedEof`] if the source ends first; `buf` then
    /// holds the bytes that were available.
    fn read_exact_at(
        &mut self,
        offset: u64,
        mut buf: &mut [u8],
    ) -> Result<(), ReadExactAtError<Self::Error>> {
        let mut pos = offset;
        while !buf.is_empty() {
            match self.read_at(pos, buf) {
                Ok(0) => return Err(ReadExactAtError::UnexpectedEof { offset: pos }),
                Ok(n) => {
                    let n = n.min(buf.len());
                    buf = &mut buf[n..];
                    // A position past u64::MAX cannot hold data.
                    pos = pos
                        .checked_add(n as u64)
                        .ok_or(ReadExactAtError::UnexpectedEof { offset: u64::MAX })?;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadExactAtError::Other(e)),
            }
        }
        Ok(())
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &mut T {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, Self::Error> {
        (**self).read_at(offset, buf)
    }

    fn size(&self) -> u64 {
        (**self).size()
    }

    fn read_exact_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), ReadExactAtError<Self::Error>> {
        (**self).read_exact_at(offset, buf)
    }
}

/// Why [`ReadAt::read_exact_at`] could not fill its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadExactAtError<E> {
    /// The source ended at `offset`, before the buffer was full.
    UnexpectedEof {
        /// Absolute position where no more bytes were available.
        offset: u64,
    },
    /// The underlying reader failed.
    Other(E),
}

impl<E: fmt::Display> fmt::Display for ReadExactAtError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEof { offset } => {
                write!(f, "unexpected end of data at byte offset {offset}")
            }
            Self::Other(e) => write!(f, "read failed: {e}"),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for ReadExactAtError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::UnexpectedEof { .. } => None,
            Self::Other(e) => Some(e),
        }
    }
}

impl<E: embedded_io::Error + 'static> embedded_io::Error for ReadExactAtError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::UnexpectedEof { .. } => ErrorKind::Other,
            Self::Other(e) => e.kind(),
        }
    }
}

#[cfg(feature = "std")]
impl From<ReadExactAtError<std::io::Error>> for std::io::Error {
    fn from(e: ReadExactAtError<std::io::Error>) -> Self {
        match e {
            ReadExactAtError::UnexpectedEof { .. } => {
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e.to_string())
            }
            ReadExactAtError::Other(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `chunk` bytes per call and fails with `Interrupted` every other
    /// call, to exercise the retry loop.
    struct Stuttering<'a> {
        data: &'a [u8],
        chunk: usize,
        calls: usize,
    }

    impl ErrorType for Stuttering<'_> {
        type Error = ErrorKind;
    }

    impl ReadAt for Stuttering<'_> {
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                return Err(ErrorKind::Interrupted);
            }
            let start = (offset as usize).min(self.data.len());
            let n = buf.len().min(self.chunk).min(self.data.len() - start);
            buf[..n].copy_from_slice(&self.data[start..start + n]);
            Ok(n)
        }

        fn size(&self) -> u64 {
            self.data.len() as u64
        }
    }

    struct Broken;

    impl ErrorType for Broken {
        type Error = ErrorKind;
    }

    impl ReadAt for Broken {
        fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, ErrorKind> {
            Err(ErrorKind::NotConnected)
        }

        fn size(&self) -> u64 {
            10
        }
    }

    #[test]
    fn read_exact_at_loops_over_short_and_interrupted_reads() {
        let data: [u8; 20] = core::array::from_fn(|i| i as u8);
        let mut r = Stuttering {
            data: &data,
            chunk: 3,
            calls: 0,
        };
        let mut buf = [0u8; 10];
        r.read_exact_at(5, &mut buf).unwrap();
        assert_eq!(buf, data[5..15]);
    }

    #[test]
    fn read_exact_at_reports_where_data_ended() {
        let data = [1u8; 8];
        let mut r = Stuttering {
            data: &data,
            chunk: 3,
            calls: 0,
        };
        let mut buf = [0u8; 6];
        assert_eq!(
            r.read_exact_at(4, &mut buf),
            Err(ReadExactAtError::UnexpectedEof { offset: 8 })
        );
    }

    #[test]
    fn read_exact_at_passes_errors_through() {
        let mut buf = [0u8; 1];
        assert_eq!(
            Broken.read_exact_at(0, &mut buf),
            Err(ReadExactAtError::Other(ErrorKind::NotConnected))
        );
        // An empty read never touches the source.
        assert_eq!(Broken.read_exact_at(0, &mut []), Ok(()));
    }
}
