//! Positioned reads from a file through the OS (`pread` on unix).

use std::fs::File;
use std::io;
use std::path::Path;

use embedded_io::ErrorType;

use crate::ReadAt;

/// [`ReadAt`] over an open file, for data read on demand rather than mapped: embedding rows
/// kept on flash, spilled KV blocks.
///
/// On unix each read is one `pread`, so no cursor is moved; elsewhere it seeks then reads.
/// [`ReadAt::size`] is the length when the reader was made; later growth is not seen.
#[derive(Debug)]
pub struct FileReader {
    file: File,
    size: u64,
}

impl FileReader {
    /// Opens `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileReader> {
        FileReader::from_file(File::open(path)?)
    }

    /// Wraps an already open file.
    pub fn from_file(file: File) -> io::Result<FileReader> {
        let size = file.metadata()?.len();
        Ok(FileReader { file, size })
    }

    /// The underlying file, e.g. to hint the OS or to map it too.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl ErrorType for FileReader {
    type Error = io::Error;
}

impl ReadAt for FileReader {
    #[cfg(unix)]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(not(unix))]
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read(buf)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReadExactAtError;
    use crate::test_util::TempFile;

    #[test]
    fn reads_ranges() {
        let data: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let tmp = TempFile::with_contents(&data);
        let mut r = FileReader::open(tmp.path()).unwrap();
        assert_eq!(r.size(), 10_000);
        let mut buf = [0u8; 300];
        r.read_exact_at(4_000, &mut buf).unwrap();
        assert_eq!(buf, data[4_000..4_300]);
        // Reads are independent of each other's position.
        r.read_exact_at(10, &mut buf[..5]).unwrap();
        assert_eq!(buf[..5], data[10..15]);
    }

    #[test]
    fn eof_and_past_end() {
        let tmp = TempFile::with_contents(b"0123456789");
        let mut r = FileReader::open(tmp.path()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read_at(6, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"6789");
        assert_eq!(r.read_at(10, &mut buf).unwrap(), 0);
        assert_eq!(r.read_at(1 << 40, &mut buf).unwrap(), 0);
        match r.read_exact_at(8, &mut buf) {
            Err(ReadExactAtError::UnexpectedEof { offset: 10 }) => {}
            other => panic!("expected EOF at 10, got {other:?}"),
        }
        let err: io::Error = r.read_exact_at(20, &mut buf).unwrap_err().into();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn empty_file() {
        let tmp = TempFile::with_contents(b"");
        let mut r = FileReader::open(tmp.path()).unwrap();
        assert_eq!(r.size(), 0);
        assert_eq!(r.read_at(0, &mut [0u8; 4]).unwrap(), 0);
        r.read_exact_at(0, &mut []).unwrap();
        assert!(r.read_exact_at(0, &mut [0u8; 1]).is_err());
    }

    #[test]
    fn missing_file_is_an_error() {
        let tmp = TempFile::with_contents(b"");
        let path = tmp.path().with_extension("missing");
        let err = FileReader::open(path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
