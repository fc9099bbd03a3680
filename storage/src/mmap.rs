//! A file mapped read-only into memory.

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::path::Path;

use embedded_io::ErrorType;
use memmap2::Mmap;

use crate::ReadAt;
use crate::slice::copy_at;

/// A read-only map of a whole file: weights are paged in by the OS when touched, never
/// copied, and pages can be dropped again under memory pressure.
///
/// An empty file has no map (the OS refuses zero-length maps) and reads as an empty slice.
/// The bytes stay at one address for the life of the value, even when it is moved.
#[derive(Debug)]
pub struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    /// Opens and maps `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<MappedFile> {
        MappedFile::from_file(&File::open(path)?)
    }

    /// Maps an already open file; the map stays valid after `file` is closed.
    pub fn from_file(file: &File) -> io::Result<MappedFile> {
        if file.metadata()?.len() == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: the map is read-only, so this process never writes through it. Another
        // process may still change or truncate the file while it is mapped: changed bytes
        // then show up in slices we hand out, and touching pages past a truncation raises
        // SIGBUS. Rust cannot rule that out for any mapped file; model and cache files are
        // not meant to be modified while in use, and the readers of these bytes validate
        // them rather than trusting them.
        let map = unsafe { Mmap::map(file)? };
        Ok(MappedFile { map: Some(map) })
    }

    /// The file's contents.
    pub fn as_bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Length of the file in bytes (0 for an empty file, which is never mapped).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the file holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells the OS the map will be read front to back (aggressive read-ahead), as when
    /// loading or repacking all weights once.
    #[cfg(unix)]
    pub fn advise_sequential(&self) -> io::Result<()> {
        match &self.map {
            Some(map) => map.advise(memmap2::Advice::Sequential),
            None => Ok(()),
        }
    }

    /// Asks the OS to start reading the whole map in now.
    #[cfg(unix)]
    pub fn advise_willneed(&self) -> io::Result<()> {
        match &self.map {
            Some(map) => map.advise(memmap2::Advice::WillNeed),
            None => Ok(()),
        }
    }

    /// Asks the OS to start reading `len` bytes at `offset` in now, e.g. the next layer's
    /// weights while this layer computes. A range outside the file is `InvalidInput`.
    #[cfg(unix)]
    pub fn advise_willneed_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.check_range(offset, len)?;
        match &self.map {
            Some(map) if len > 0 => map.advise_range(memmap2::Advice::WillNeed, offset, len),
            _ => Ok(()),
        }
    }

    /// Lets the OS drop this process's pages of `len` bytes at `offset` (`MADV_DONTNEED`),
    /// e.g. weights already repacked into memory of their own: they stop counting against
    /// the process, and a later read of the range faults them back in from the file. A range
    /// outside the file is `InvalidInput`.
    #[cfg(unix)]
    pub fn release_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.check_range(offset, len)?;
        match &self.map {
            // SAFETY: the map is read-only and backed by the file, so its pages never hold
            // private changes: dropping them loses nothing, and a later read sees the file's
            // bytes again (the contents every `&[u8]` into the map already assume).
            Some(map) if len > 0 => unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
            },
            _ => Ok(()),
        }
    }

    fn check_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if offset.checked_add(len).is_some_and(|end| end <= self.len()) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("range {offset}+{len} outside map of {} bytes", self.len()),
        ))
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl ErrorType for MappedFile {
    type Error = Infallible;
}

/// Reads copy out of the map; they cannot fail (short of the SIGBUS caveat above).
impl ReadAt for MappedFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(copy_at(self.as_bytes(), offset, buf))
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadExactAtError;
    use crate::test_util::TempFile;

    #[test]
    fn maps_whole_file() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
        let tmp = TempFile::with_contents(&data);
        let m = MappedFile::open(tmp.path()).unwrap();
        assert_eq!(m.len(), data.len());
        assert!(!m.is_empty());
        assert_eq!(m.as_bytes(), &data[..]);
        // Moving the value keeps the bytes where they were.
        let addr = m.as_bytes().as_ptr();
        let moved = Box::new(m);
        assert_eq!(moved.as_bytes().as_ptr(), addr);
    }

    #[test]
    fn read_at_ranges_and_eof() {
        let tmp = TempFile::with_contents(b"0123456789");
        let mut m = MappedFile::open(tmp.path()).unwrap();
        assert_eq!(m.size(), 10);
        let mut buf = [0u8; 4];
        m.read_exact_at(3, &mut buf).unwrap();
        assert_eq!(&buf, b"3456");
        assert_eq!(m.read_at(8, &mut buf), Ok(2));
        assert_eq!(m.read_at(10, &mut buf), Ok(0));
        assert_eq!(
            m.read_exact_at(9, &mut buf),
            Err(ReadExactAtError::UnexpectedEof { offset: 10 })
        );
    }

    #[test]
    fn empty_file_is_an_empty_slice() {
        let tmp = TempFile::with_contents(b"");
        let mut m = MappedFile::open(tmp.path()).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.as_bytes(), &[] as &[u8]);
        assert_eq!(m.read_at(0, &mut [0u8; 3]), Ok(0));
        #[cfg(unix)]
        {
            m.advise_sequential().unwrap();
            m.advise_willneed().unwrap();
            m.advise_willneed_range(0, 0).unwrap();
            assert!(m.advise_willneed_range(0, 1).is_err());
        }
    }

    #[cfg(unix)]
    #[test]
    fn advice_is_accepted_and_checked() {
        let tmp = TempFile::with_contents(&vec![1u8; 3 * 4096 + 17]);
        let m = MappedFile::open(tmp.path()).unwrap();
        m.advise_sequential().unwrap();
        m.advise_willneed().unwrap();
        m.advise_willneed_range(5000, 4000).unwrap();
        m.advise_willneed_range(m.len(), 0).unwrap();
        let err = m.advise_willneed_range(m.len() - 10, 11).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(m.advise_willneed_range(usize::MAX, 2).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn released_pages_read_back_the_file() {
        let data: Vec<u8> = (0..5 * 4096 + 99u32).map(|i| (i * 13 + 5) as u8).collect();
        let tmp = TempFile::with_contents(&data);
        let m = MappedFile::open(tmp.path()).unwrap();
        assert_eq!(m.as_bytes(), &data[..]);
        // Unaligned on both ends, as tensors are.
        m.release_range(100, 3 * 4096 + 7).unwrap();
        m.release_range(0, m.len()).unwrap();
        assert_eq!(m.as_bytes(), &data[..]);
        let err = m.release_range(m.len() - 1, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn missing_file_is_an_error() {
        let tmp = TempFile::with_contents(b"");
        let err = MappedFile::open(tmp.path().with_extension("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
