//! Tern's KL-divergence base file: the log-probabilities of a base run, written by `tern
//! perplexity --kl-divergence-base FILE` and read back by `--kl-divergence`.
//!
//! It is Tern's own format, not llama.cpp's `_logits_` file (neither reads the other's),
//! though it stores rows the way llama.cpp does: 16-bit codes per vocabulary entry with a
//! scale and offset per row (see [`RowScale`]). All numbers little-endian:
//!
//! ```text
//! header  "TERN-KLD", version u32 (1), n_vocab u32, n_ctx u32, n_chunks u32,
//!         model_hash u64 (content hash of the model file), vocab_hash u64 (of its
//!         tokens' texts), name_len u32, name (the model file's name, UTF-8),
//!         tokens u32 x n_chunks*n_ctx (the text's tokens, before any BOS substitution),
//!         header_hash u64 (content hash of everything before it)
//! rows    n_chunks * (n_ctx - 1 - n_ctx/2) of: nll f64, top u32, scale f32,
//!         min_log_prob f32, codes u16 x n_vocab, row_hash u64 (of the row's bytes)
//! ```
//!
//! Beside llama.cpp's codes each row keeps the base's exact negative log-likelihood of its
//! target and its exact most likely token, so the base's perplexity and the top-token
//! agreement carry no rounding. The length follows from the header, so a truncated file is
//! refused before any work; the hashes catch a damaged one.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tern_core::hash::content_hash;

use super::logprobs::{self, BaseRow, RowScale};

/// The first bytes of every base file.
pub const MAGIC: [u8; 8] = *b"TERN-KLD";
/// The layout this code writes and reads.
pub const VERSION: u32 = 1;
/// The longest model name kept.
const MAX_NAME: usize = 4096;
/// Header bytes before the name: magic, four u32, two u64, the name's length.
const FIXED_HEADER: u64 = 8 + 4 * 4 + 8 * 2 + 4;
/// Row bytes besides the codes: nll, top, scale, min_log_prob, row hash.
const ROW_EXTRA: u64 = 8 + 4 + 4 + 4 + 8;

/// Why a base file cannot be written, read or used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The file could not be created, written, read or renamed.
    #[error("cannot {action} KL-divergence base `{path}`: {source}")]
    Io {
        /// What was being done: "create", "write", "read".
        action: &'static str,
        /// The base file's path.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not start with Tern's magic bytes.
    #[error(
        "`{path}` is not a Tern KL-divergence base (written by `tern perplexity \
         --kl-divergence-base`; llama.cpp's logits files are another format)"
    )]
    NotABase {
        /// The file's path.
        path: PathBuf,
    },
    /// A base written by another version of the format.
    #[error(
        "`{path}` is a KL-divergence base of format version {version}; this Tern reads {VERSION}"
    )]
    Version {
        /// The file's path.
        path: PathBuf,
        /// The version it declares.
        version: u32,
    },
    /// Shorter than its header says: a run that did not finish, or a partial copy.
    #[error(
        "KL-divergence base `{path}` is truncated: {len} bytes where its header promises {expected}"
    )]
    Truncated {
        /// The file's path.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// The length its header implies.
        expected: u64,
    },
    /// A checksum or a header field does not hold.
    #[error("KL-divergence base `{path}` is damaged: {what}")]
    Corrupt {
        /// The file's path.
        path: PathBuf,
        /// What does not hold, and where.
        what: String,
    },
}

/// What a base file says about the run that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseHeader {
    /// The model's vocabulary size: the width of every row.
    pub n_vocab: usize,
    /// The chunk length (context size) of the run.
    pub n_ctx: usize,
    /// Chunks the run scored.
    pub n_chunks: usize,
    /// [`content_hash`] of the model file.
    pub model_hash: u64,
    /// Hash of the vocabulary's token texts (see [`super::vocab_hash`]).
    pub vocab_hash: u64,
    /// The model file's name, for messages.
    pub model_name: String,
    /// The text's first `n_chunks * n_ctx` tokens, as tokenized (no BOS substitution).
    pub tokens: Vec<u32>,
}

impl BaseHeader {
    fn row_bytes(&self) -> Option<u64> {
        (self.n_vocab as u64).checked_mul(2)?.checked_add(ROW_EXTRA)
    }

    fn header_bytes(&self, name_len: usize) -> Option<u64> {
        let tokens = (self.n_chunks as u64)
            .checked_mul(self.n_ctx as u64)?
            .checked_mul(4)?;
        FIXED_HEADER
            .checked_add(name_len as u64)?
            .checked_add(tokens)?
            .checked_add(8)
    }

    /// The file length this header implies with a name of `name_len` bytes (`None` if it
    /// overflows: a damaged header).
    fn file_len(&self, name_len: usize) -> Option<u64> {
        let rows = (self.n_chunks as u64).checked_mul(super::scored_per_chunk(self.n_ctx) as u64)?;
        rows.checked_mul(self.row_bytes()?)?
            .checked_add(self.header_bytes(name_len)?)
    }

    fn encode(&self) -> Vec<u8> {
        let capacity = self.header_bytes(self.model_name.len()).unwrap_or(0);
        let mut b = Vec::with_capacity(capacity as usize);
        b.extend_from_slice(&MAGIC);
        for v in [
            VERSION,
            self.n_vocab as u32,
            self.n_ctx as u32,
            self.n_chunks as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.model_hash.to_le_bytes());
        b.extend_from_slice(&self.vocab_hash.to_le_bytes());
        b.extend_from_slice(&(self.model_name.len() as u32).to_le_bytes());
        b.extend_from_slice(self.model_name.as_bytes());
        for t in &self.tokens {
            b.extend_from_slice(&t.to_le_bytes());
        }
        let hash = content_hash(&b);
        b.extend_from_slice(&hash.to_le_bytes());
        b
    }
}

/// Writes a base file: header, then row after row. They go to a temporary file beside the
/// path that is renamed into place once every row is written, so a failed or interrupted run
/// leaves any earlier base at the path as it was. [`super::write_base`] fills it.
pub struct BaseWriter {
    path: PathBuf,
    partial: PathBuf,
    out: Option<BufWriter<File>>,
    rows_left: usize,
    codes: Vec<u16>,
    row: Vec<u8>,
}

impl BaseWriter {
    /// Opens a base file at `path` (as a temporary file beside it until finished), before
    /// any work, so a path that cannot be written is refused at once.
    pub fn create(path: &Path) -> Result<BaseWriter, BaseError> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let partial = path.with_file_name(name);
        let cannot_create = |source| BaseError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(cannot_create(std::io::Error::other("it is a directory")));
        }
        let file = File::create(&partial).map_err(cannot_create)?;
        Ok(BaseWriter {
            path: path.to_path_buf(),
            partial,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            rows_left: 0,
            codes: Vec::new(),
            row: Vec::new(),
        })
    }

    /// Writes the header of the run that `header` describes (its model name cut to 4096
    /// bytes); the rows it promises follow.
    pub(super) fn write_header(&mut self, header: &BaseHeader) -> Result<(), BaseError> {
        let mut header = header.clone();
        if header.model_name.len() > MAX_NAME {
            let mut end = MAX_NAME;
            while !header.model_name.is_char_boundary(end) {
                end -= 1;
            }
            header.model_name.truncate(end);
        }
        assert_eq!(header.tokens.len(), header.n_chunks * header.n_ctx);
        self.rows_left = header.n_chunks * super::scored_per_chunk(header.n_ctx);
        self.codes = vec![0; header.n_vocab];
        self.row = Vec::with_capacity(header.row_bytes().unwrap_or(0) as usize);
        self.write(&header.encode())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BaseError> {
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(bytes).map_err(|source| BaseError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })
    }

    /// Appends the next scored row: the logits and the negative log-likelihood of its target.
    pub(super) fn push_row(&mut self, logits: &[f32], nll: f64) -> Result<(), BaseError> {
        assert!(self.rows_left > 0, "more rows than the header promised");
        assert_eq!(logits.len(), self.codes.len(), "row width");
        let scale = logprobs::encode(logits, &mut self.codes);
        let top = logprobs::argmax(logits).0 as u32;
        self.row.clear();
        self.row.extend_from_slice(&nll.to_le_bytes());
        self.row.extend_from_slice(&top.to_le_bytes());
        self.row.extend_from_slice(&scale.scale.to_le_bytes());
        self.row
            .extend_from_slice(&scale.min_log_prob.to_le_bytes());
        for c in &self.codes {
            self.row.extend_from_slice(&c.to_le_bytes());
        }
        let hash = content_hash(&self.row);
        self.row.extend_from_slice(&hash.to_le_bytes());
        let row = std::mem::take(&mut self.row);
        let written = self.write(&row);
        self.row = row;
        self.rows_left -= 1;
        written
    }

    /// Flushes the file to disk and moves it to its path; every row must have been pushed.
    pub(super) fn finish(mut self) -> Result<(), BaseError> {
        assert_eq!(self.rows_left, 0, "fewer rows than the header promised");
        let out = self.out.take().expect("open until finished");
        let io = |source| BaseError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        };
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.path).map_err(io)
    }
}

impl Drop for BaseWriter {
    fn drop(&mut self) {
        // Unfinished: the partial file is no base.
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Reads a base file: the header at once (checked against the file's length and its hash),
/// then the rows in order, each checked against its hash.
pub struct BaseReader {
    path: PathBuf,
    input: BufReader<File>,
    header: BaseHeader,
    /// Where the rows start.
    rows_at: u64,
    rows_read: usize,
    row: Vec<u8>,
    codes: Vec<u16>,
}

impl BaseReader {
    /// Opens the base at `path` and reads its header.
    pub fn open(path: &Path) -> Result<BaseReader, BaseError> {
        let read_error = |source| BaseError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |what: String| BaseError::Corrupt {
            path: path.to_path_buf(),
            what,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if !metadata.is_file() {
            return Err(read_error(std::io::Error::other("not a regular file")));
        }
        let len = metadata.len();
        let mut input = BufReader::with_capacity(1 << 20, File::open(path).map_err(read_error)?);
        let mut fixed = [0u8; FIXED_HEADER as usize];
        let head = &mut fixed[..len.min(FIXED_HEADER) as usize];
        input.read_exact(head).map_err(read_error)?;
        if head.len() < MAGIC.len() || head[..MAGIC.len()] != MAGIC {
            return Err(BaseError::NotABase { path: path.into() });
        }
        if len < FIXED_HEADER {
            return Err(BaseError::Truncated {
                path: path.into(),
                len,
                expected: FIXED_HEADER,
            });
        }
        let word = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().unwrap_or([0; 4]));
        let long = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap_or([0; 8]));
        let version = word(8);
        if version != VERSION {
            return Err(BaseError::Version {
                path: path.into(),
                version,
            });
        }
        let (n_vocab, n_ctx, n_chunks) = (word(12) as usize, word(16) as usize, word(20) as usize);
        let name_len = word(40) as usize;
        if n_vocab == 0
            || n_chunks == 0
            || super::scored_per_chunk(n_ctx) == 0
            || name_len > MAX_NAME
        {
            return Err(corrupt(format!(
                "its header declares {n_vocab} vocabulary entries, a context of {n_ctx}, \
                 {n_chunks} chunks and a name of {name_len} bytes"
            )));
        }
        let mut header = BaseHeader {
            n_vocab,
            n_ctx,
            n_chunks,
            model_hash: long(24),
            vocab_hash: long(32),
            model_name: String::new(),
            tokens: Vec::new(),
        };
        // The length check comes before reading the tokens, so a damaged count cannot make
        // the reader allocate more than the file holds.
        let expected = header
            .file_len(name_len)
            .ok_or_else(|| corrupt("its header's sizes overflow".into()))?;
        if len < expected {
            return Err(BaseError::Truncated {
                path: path.into(),
                len,
                expected,
            });
        }
        if len > expected {
            return Err(corrupt(format!(
                "{len} bytes where its header promises {expected}"
            )));
        }
        let mut rest = vec![0u8; name_len + n_chunks * n_ctx * 4 + 8];
        input.read_exact(&mut rest).map_err(read_error)?;
        let (body, hash) = rest.split_at(rest.len() - 8);
        let mut hashed = fixed.to_vec();
        hashed.extend_from_slice(body);
        if content_hash(&hashed).to_le_bytes() != hash {
            return Err(corrupt("the header's checksum does not match".into()));
        }
        let (name, tokens) = body.split_at(name_len);
        header.model_name = String::from_utf8_lossy(name).into_owned();
        header.tokens = tokens
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
            .collect();
        let row_bytes = header.row_bytes().unwrap_or(0) as usize;
        Ok(BaseReader {
            path: path.into(),
            input,
            rows_at: FIXED_HEADER + rest.len() as u64,
            rows_read: 0,
            row: vec![0; row_bytes],
            codes: vec![0; n_vocab],
            header,
        })
    }

    /// The header: the run's model, context, chunks and tokens.
    pub fn header(&self) -> &BaseHeader {
        &self.header
    }

    /// The base file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks every row against its hash, then starts over at the first: a damaged file is
    /// refused before a run rather than in the middle of one.
    pub fn verify(&mut self) -> Result<(), BaseError> {
        self.rewind()?;
        let rows = self.header.n_chunks * super::scored_per_chunk(self.header.n_ctx);
        for _ in 0..rows {
            self.next_row()?;
        }
        self.rewind()
    }

    /// Goes back to the first row.
    pub(super) fn rewind(&mut self) -> Result<(), BaseError> {
        self.input
            .seek(SeekFrom::Start(self.rows_at))
            .map_err(|source| BaseError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        self.rows_read = 0;
        Ok(())
    }

    /// The next row, checked against its hash.
    pub fn next_row(&mut self) -> Result<BaseRow<'_>, BaseError> {
        let per_chunk = super::scored_per_chunk(self.header.n_ctx);
        let (chunk, row) = (self.rows_read / per_chunk, self.rows_read % per_chunk);
        self.input
            .read_exact(&mut self.row)
            .map_err(|source| BaseError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            })?;
        let (body, hash) = self.row.split_at(self.row.len() - 8);
        if content_hash(body).to_le_bytes() != hash {
            return Err(BaseError::Corrupt {
                path: self.path.clone(),
                what: format!(
                    "the checksum of row {} of chunk {} does not match",
                    row + 1,
                    chunk + 1
                ),
            });
        }
        self.rows_read += 1;
        let f32_at = |at: usize| f32::from_le_bytes(body[at..at + 4].try_into().unwrap_or([0; 4]));
        for (code, b) in self.codes.iter_mut().zip(body[20..].chunks_exact(2)) {
            *code = u16::from_le_bytes([b[0], b[1]]);
        }
        Ok(BaseRow {
            nll: f64::from_le_bytes(body[..8].try_into().unwrap_or([0; 8])),
            top: u32::from_le_bytes(body[8..12].try_into().unwrap_or([0; 4])),
            scale: RowScale {
                scale: f32_at(12),
                min_log_prob: f32_at(16),
            },
            codes: &self.codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N_VOCAB: usize = 40;
    const N_CTX: usize = 8;

    fn header() -> BaseHeader {
        BaseHeader {
            n_vocab: N_VOCAB,
            n_ctx: N_CTX,
            n_chunks: 2,
            model_hash: 0x1234_5678_9abc_def0,
            vocab_hash: 0x0fed_cba9_8765_4321,
            model_name: "model.gguf".into(),
            tokens: (0..16).map(|t| t * 2).collect(),
        }
    }

    fn row(k: usize) -> Vec<f32> {
        (0..N_VOCAB)
            .map(|i| ((i * 13 + k * 7) % 29) as f32 * 0.4)
            .collect()
    }

    /// A path in the temp dir, its file removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let name = format!("tern-base-{}-{name}", std::process::id());
            Scratch(std::env::temp_dir().join(name))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Writes a base of two chunks (three rows each) to a fresh file.
    fn write(name: &str) -> Scratch {
        let path = Scratch::new(name);
        let mut w = BaseWriter::create(&path.0).unwrap();
        w.write_header(&header()).unwrap();
        for k in 0..6 {
            w.push_row(&row(k), k as f64 * 0.5).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn rows_read_back_as_written() {
        let path = write("roundtrip.kld");
        let mut r = BaseReader::open(&path.0).unwrap();
        assert_eq!(r.header(), &header());
        r.verify().unwrap();
        for k in 0..6 {
            let logits = row(k);
            let mut codes = vec![0; N_VOCAB];
            let scale = logprobs::encode(&logits, &mut codes);
            let b = r.next_row().unwrap();
            assert_eq!(b.nll, k as f64 * 0.5);
            assert_eq!(b.top as usize, logprobs::argmax(&logits).0);
            assert_eq!(b.scale, scale);
            assert_eq!(b.codes, &codes[..]);
        }
        assert!(matches!(r.next_row(), Err(BaseError::Io { .. })));
    }

    #[test]
    fn a_truncated_file_is_refused_before_any_row() {
        let scratch = write("truncated.kld");
        let path = &scratch.0;
        let len = std::fs::metadata(path).unwrap().len();
        for keep in [len - 1, len / 2, FIXED_HEADER - 1, 8] {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(keep).unwrap();
            match BaseReader::open(path) {
                Err(BaseError::Truncated { len, .. }) => assert_eq!(len, keep),
                other => panic!("{keep} bytes: {:?}", other.map(|_| ())),
            }
        }
        for keep in [7, 0] {
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(keep).unwrap();
            assert!(matches!(
                BaseReader::open(path),
                Err(BaseError::NotABase { .. })
            ));
        }
    }

    #[test]
    fn a_damaged_byte_is_found_by_a_checksum() {
        let clean = std::fs::read(&write("damaged.kld").0).unwrap();
        let scratch = write("damaged-copy.kld");
        let path = &scratch.0;
        let header_len = FIXED_HEADER as usize + "model.gguf".len() + 16 * 4 + 8;
        // A token of the header, then a code of the fifth row (second chunk, second row).
        for (at, expected) in [
            (FIXED_HEADER as usize + 12, "header"),
            (
                header_len + 4 * (20 + 2 * N_VOCAB + 8) + 30,
                "row 2 of chunk 2",
            ),
        ] {
            let mut bytes = clean.clone();
            bytes[at] ^= 0x04;
            std::fs::write(path, &bytes).unwrap();
            let err = BaseReader::open(path)
                .and_then(|mut r| r.verify())
                .unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        // Bytes after the last row: not what the header describes.
        let mut longer = clean.clone();
        longer.push(0);
        std::fs::write(path, &longer).unwrap();
        assert!(matches!(
            BaseReader::open(path),
            Err(BaseError::Corrupt { .. })
        ));
    }

    #[test]
    fn other_files_are_not_bases() {
        let scratch = write("other.kld");
        let path = &scratch.0;
        let mut bytes = std::fs::read(path).unwrap();
        bytes[..8].copy_from_slice(b"_logits_");
        std::fs::write(path, &bytes).unwrap();
        let err = BaseReader::open(path).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("llama.cpp"), "{err}");
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8] = 9;
        std::fs::write(path, &bytes).unwrap();
        assert!(matches!(
            BaseReader::open(path),
            Err(BaseError::Version { version: 9, .. })
        ));
    }

    #[test]
    fn an_unfinished_writer_leaves_no_file() {
        let path = Scratch::new("unfinished.kld");
        let mut w = BaseWriter::create(&path.0).unwrap();
        w.write_header(&header()).unwrap();
        w.push_row(&row(0), 1.0).unwrap();
        assert!(w.partial.exists());
        let partial = w.partial.clone();
        drop(w);
        assert!(!path.0.exists());
        assert!(!partial.exists());
        let err = BaseWriter::create(&std::env::temp_dir())
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }
}
