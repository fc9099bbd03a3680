//! A cache file of blobs tied to one model file and one packing: a backend's repacked
//! weights, written once and mapped on later loads instead of repacked, so the weights are
//! file-backed pages the OS can evict rather than anonymous memory.
//!
//! Layout (little-endian): the magic, then the blobs, each starting on a 64-byte boundary
//! (the first at 64); then the table, one entry per blob (`offset: u64`, `len: u64`,
//! `checksum: u64`); then a footer of fixed size (`FOOTER_BYTES`): magic, format version,
//! the key (model hash, model length, packing name), the table's place, length and checksum,
//! and the footer's own checksum.
//!
//! Nothing in a cache file is trusted: opening checks the footer, the key, the table, and the
//! checksum of every blob, and any mismatch is an error that says what, so the caller
//! rebuilds. Files are written beside their final name and renamed into place, so a reader
//! never sees half a file.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use tern_core::hash::content_hash;

use crate::MappedFile;

const MAGIC: [u8; 8] = *b"TERNPACK";
const VERSION: u32 = 1;
/// Blobs start on multiples of this: a cache line, and any SIMD load's alignment.
const ALIGN: u64 = 64;
/// Longest packing name.
pub const MAX_PACKING: usize = 64;
const FOOTER_BYTES: usize = 8 + 4 + 8 + 8 + 2 + MAX_PACKING + 8 + 8 + 8 + 8;
const ENTRY_BYTES: usize = 24;

/// What a cache file must match to be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// [`content_hash`] of the whole model file.
    pub model_hash: u64,
    /// Length of the model file in bytes, a cheap second check beside the hash.
    pub model_len: u64,
    /// The backend, its instruction set and its layout version, e.g. `cpu-x86-avx2/3`:
    /// blobs of another packing are other bytes.
    pub packing: String,
}

impl CacheKey {
    /// The key of `model` under `packing` (at most [`MAX_PACKING`] bytes; longer is cut).
    pub fn new(model: &[u8], packing: &str) -> CacheKey {
        let mut end = packing.len().min(MAX_PACKING);
        while !packing.is_char_boundary(end) {
            end -= 1;
        }
        CacheKey {
            model_hash: content_hash(model),
            model_len: model.len() as u64,
            packing: packing[..end].to_string(),
        }
    }

    /// A file name for this key: the model hash and the packing, in characters any file
    /// system takes.
    pub fn file_name(&self) -> String {
        let packing: String = self
            .packing
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("{:016x}-{packing}.ternpack", self.model_hash)
    }
}

/// Why a cache file cannot be used.
#[derive(Debug)]
pub enum CacheError {
    /// No file there yet.
    Missing,
    /// Reading or mapping the file failed for another reason than its absence.
    Io(io::Error),
    /// Not a Tern cache file (no footer, wrong magic).
    NotACache,
    /// Written by another version of the format.
    Version {
        /// The format version in the file's footer.
        found: u32,
    },
    /// Shorter than its own table says: an interrupted copy or a cut file.
    Truncated,
    /// Made for another model file or another packing.
    Stale,
    /// A checksum does not match: the footer, the table, or blob `entry`.
    Corrupt {
        /// Which checksum failed: `"footer"`, `"table"` or `"weight"` (a blob).
        what: &'static str,
        /// Index of the blob in the table when a blob's checksum failed; `None` for the
        /// footer and the table.
        entry: Option<usize>,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Missing => f.write_str("no cache file yet"),
            CacheError::Io(e) => write!(f, "{e}"),
            CacheError::NotACache => f.write_str("not a Tern packed-weight cache"),
            CacheError::Version { found } => {
                write!(f, "format version {found}, this Tern writes {VERSION}")
            }
            CacheError::Truncated => f.write_str("the file is truncated"),
            CacheError::Stale => f.write_str("made for another model file or backend"),
            CacheError::Corrupt { what, entry } => match entry {
                Some(i) => write!(f, "corrupt: the checksum of {what} {i} does not match"),
                None => write!(f, "corrupt: the checksum of the {what} does not match"),
            },
        }
    }
}

impl std::error::Error for CacheError {}

/// Writes a cache file blob by blob; [`PackCacheWriter::finish`] puts it in place.
pub struct PackCacheWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    path: PathBuf,
    key: CacheKey,
    entries: Vec<[u64; 3]>,
    at: u64,
}

impl PackCacheWriter {
    /// Starts the cache file for `key` at `path` (written under a temporary name beside it).
    pub fn create(path: &Path, key: &CacheKey) -> io::Result<PackCacheWriter> {
        let mut temp = path.as_os_str().to_owned();
        temp.push(format!(".{}.tmp", std::process::id()));
        let temp = PathBuf::from(temp);
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&temp)?);
        // The magic in front too, so a file cut before its footer reads as truncated.
        out.write_all(&MAGIC)?;
        Ok(PackCacheWriter {
            out,
            temp,
            path: path.to_path_buf(),
            key: key.clone(),
            entries: Vec::new(),
            at: MAGIC.len() as u64,
        })
    }

    /// Appends the next blob.
    pub fn push(&mut self, blob: &[u8]) -> io::Result<()> {
        let pad = self.at.next_multiple_of(ALIGN) - self.at;
        self.out.write_all(&[0u8; ALIGN as usize][..pad as usize])?;
        self.at += pad;
        self.entries
            .push([self.at, blob.len() as u64, content_hash(blob)]);
        self.out.write_all(blob)?;
        self.at += blob.len() as u64;
        Ok(())
    }

    /// Writes the table and the footer, flushes to the device and renames the file into
    /// place. On error the temporary file is removed.
    pub fn finish(mut self) -> io::Result<()> {
        let result = self.write_tail();
        if result.is_err() {
            let _ = fs::remove_file(&self.temp);
        }
        result
    }

    fn write_tail(&mut self) -> io::Result<()> {
        let table: Vec<u8> = self
            .entries
            .iter()
            .flat_map(|e| e.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let table_at = self.at;
        self.out.write_all(&table)?;
        let footer = footer(&self.key, table_at, self.entries.len() as u64, &table);
        self.out.write_all(&footer)?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        fs::rename(&self.temp, &self.path)
    }
}

impl Drop for PackCacheWriter {
    fn drop(&mut self) {
        // Unfinished (an error or a panic on the way): leave no temporary file behind.
        if self.temp.exists() && !self.path.exists() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

fn footer(key: &CacheKey, table_at: u64, count: u64, table: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FOOTER_BYTES);
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&VERSION.to_le_bytes());
    f.extend_from_slice(&key.model_hash.to_le_bytes());
    f.extend_from_slice(&key.model_len.to_le_bytes());
    let packing = key.packing.as_bytes();
    f.extend_from_slice(&(packing.len() as u16).to_le_bytes());
    let mut name = [0u8; MAX_PACKING];
    name[..packing.len()].copy_from_slice(packing);
    f.extend_from_slice(&name);
    f.extend_from_slice(&table_at.to_le_bytes());
    f.extend_from_slice(&count.to_le_bytes());
    f.extend_from_slice(&content_hash(table).to_le_bytes());
    let own = content_hash(&f);
    f.extend_from_slice(&own.to_le_bytes());
    f
}

/// An opened, fully verified cache file.
#[derive(Debug)]
pub struct PackCache {
    map: MappedFile,
    blobs: Vec<(usize, usize)>,
}

impl PackCache {
    /// Opens the cache at `path` for `key` and checks everything.
    pub fn open(path: &Path, key: &CacheKey) -> Result<PackCache, CacheError> {
        let map = match MappedFile::open(path) {
            Ok(map) => map,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CacheError::Missing),
            Err(e) => return Err(CacheError::Io(e)),
        };
        let blobs = check(map.as_bytes(), key)?;
        Ok(PackCache { map, blobs })
    }

    /// Number of blobs in the cache.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// Whether the cache holds no blobs.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Blob `i`, mapped from the file (64-byte aligned).
    pub fn blob(&self, i: usize) -> &[u8] {
        let (at, len) = self.blobs[i];
        &self.map.as_bytes()[at..at + len]
    }

    /// The whole mapping, for callers that keep borrowed blobs alive with it.
    pub fn file(&self) -> &MappedFile {
        &self.map
    }
}

/// Verifies `bytes` as a cache file for `key`; returns each blob's place.
fn check(bytes: &[u8], key: &CacheKey) -> Result<Vec<(usize, usize)>, CacheError> {
    if !bytes.starts_with(&MAGIC) {
        return Err(CacheError::NotACache);
    }
    if bytes.len() < MAGIC.len() + FOOTER_BYTES || bytes[bytes.len() - FOOTER_BYTES..][..8] != MAGIC
    {
        return Err(CacheError::Truncated);
    }
    let f = &bytes[bytes.len() - FOOTER_BYTES..];
    let word = |at: usize| u64::from_le_bytes(f[at..at + 8].try_into().unwrap_or([0; 8]));
    let own_at = FOOTER_BYTES - 8;
    if content_hash(&f[..own_at]) != word(own_at) {
        return Err(CacheError::Corrupt {
            what: "footer",
            entry: None,
        });
    }
    let version = u32::from_le_bytes(f[8..12].try_into().unwrap_or([0; 4]));
    if version != VERSION {
        return Err(CacheError::Version { found: version });
    }
    let name_len = usize::from(u16::from_le_bytes([f[28], f[29]])).min(MAX_PACKING);
    let packing = &f[30..30 + name_len];
    if word(12) != key.model_hash || word(20) != key.model_len || packing != key.packing.as_bytes()
    {
        return Err(CacheError::Stale);
    }
    let tail = 30 + MAX_PACKING;
    let (table_at, n, table_hash) = (word(tail), word(tail + 8), word(tail + 16));
    let body = (bytes.len() - FOOTER_BYTES) as u64;
    let table_len = n
        .checked_mul(ENTRY_BYTES as u64)
        .ok_or(CacheError::Truncated)?;
    if table_at.checked_add(table_len) != Some(body) {
        return Err(CacheError::Truncated);
    }
    let table = &bytes[table_at as usize..body as usize];
    if content_hash(table) != table_hash {
        return Err(CacheError::Corrupt {
            what: "table",
            entry: None,
        });
    }
    let mut blobs = Vec::new();
    for (i, e) in table.chunks_exact(ENTRY_BYTES).enumerate() {
        let v = |k: usize| u64::from_le_bytes(e[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
        let (at, len, hash) = (v(0), v(1), v(2));
        let end = at.checked_add(len).ok_or(CacheError::Truncated)?;
        if at < MAGIC.len() as u64 || end > table_at || at % ALIGN != 0 {
            return Err(CacheError::Truncated);
        }
        let (at, len) = (at as usize, len as usize);
        if content_hash(&bytes[at..at + len]) != hash {
            return Err(CacheError::Corrupt {
                what: "weight",
                entry: Some(i),
            });
        }
        blobs.push((at, len));
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    fn blobs() -> Vec<Vec<u8>> {
        (0..5u8)
            .map(|i| (0..(i as usize * 37 + 3)).map(|j| (j as u8) ^ i).collect())
            .collect()
    }

    fn write(dir: &TempDir, key: &CacheKey) -> PathBuf {
        let path = dir.path().join(key.file_name());
        let mut w = PackCacheWriter::create(&path, key).unwrap();
        for b in blobs() {
            w.push(&b).unwrap();
        }
        w.finish().unwrap();
        path
    }

    fn key() -> CacheKey {
        CacheKey::new(b"model bytes", "cpu-x86-avx2/1")
    }

    #[test]
    fn blobs_come_back_aligned_and_equal() {
        let dir = TempDir::new("pack-round-trip");
        let path = write(&dir, &key());
        let cache = PackCache::open(&path, &key()).unwrap();
        for (i, b) in blobs().iter().enumerate() {
            assert_eq!(cache.blob(i), &b[..]);
            assert_eq!(cache.blob(i).as_ptr() as usize % ALIGN as usize, 0);
        }
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn every_damage_is_an_error_that_says_what() {
        let dir = TempDir::new("pack-damage");
        let path = write(&dir, &key());
        let good = fs::read(&path).unwrap();
        let open = |bytes: &[u8]| {
            fs::write(&path, bytes).unwrap();
            PackCache::open(&path, &key()).unwrap_err()
        };
        // Truncated anywhere: the footer is gone (or, cut within the magic, nothing says
        // this was a cache).
        assert!(matches!(open(&good[..4]), CacheError::NotACache));
        for cut in [8, 10, good.len() / 2, good.len() - 1] {
            let e = open(&good[..cut]);
            assert!(matches!(e, CacheError::Truncated), "cut at {cut}: {e}");
        }
        // A flipped bit in a blob, in the table, in the footer.
        let mut bad = good.clone();
        bad[128 + 5] ^= 1;
        assert!(matches!(
            open(&bad),
            CacheError::Corrupt { entry: Some(1), .. }
        ));
        let mut bad = good.clone();
        bad[good.len() - FOOTER_BYTES - 3] ^= 1;
        assert!(matches!(
            open(&bad),
            CacheError::Corrupt { what: "table", .. }
        ));
        let mut bad = good.clone();
        let at = good.len() - 20;
        bad[at] ^= 1;
        assert!(matches!(
            open(&bad),
            CacheError::Corrupt { what: "footer", .. }
        ));
        // Something else entirely.
        assert!(matches!(open(&[7u8; 4096]), CacheError::NotACache));
        // A file cut before its footer, then padded back to length: the table runs short.
        let mut shifted = good[..good.len() - FOOTER_BYTES - 8].to_vec();
        shifted.extend_from_slice(&good[good.len() - FOOTER_BYTES..]);
        assert!(matches!(
            open(&shifted),
            CacheError::Truncated | CacheError::Corrupt { .. }
        ));
        let e = CacheError::Corrupt {
            what: "weight",
            entry: Some(3),
        };
        assert_eq!(
            e.to_string(),
            "corrupt: the checksum of weight 3 does not match"
        );
    }

    #[test]
    fn another_model_or_packing_is_stale() {
        let dir = TempDir::new("pack-stale");
        let path = write(&dir, &key());
        let other_model = CacheKey::new(b"model bytez", "cpu-x86-avx2/1");
        let other_packing = CacheKey::new(b"model bytes", "cpu-x86-avx512vnni/1");
        for k in [other_model, other_packing] {
            assert!(matches!(PackCache::open(&path, &k), Err(CacheError::Stale)));
        }
        assert!(matches!(
            PackCache::open(&dir.path().join("absent"), &key()),
            Err(CacheError::Missing)
        ));
    }

    #[test]
    fn an_unwritable_place_fails_to_create() {
        let dir = TempDir::new("pack-unwritable");
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        // A path below a regular file cannot be created, even by root.
        assert!(PackCacheWriter::create(&file.join("cache"), &key()).is_err());
    }

    #[test]
    fn file_names_are_plain() {
        let k = CacheKey::new(b"m", "cpu x86/avx2:1");
        assert!(k.file_name().ends_with("-cpu-x86-avx2-1.ternpack"));
        assert_eq!(CacheKey::new(b"m", &"é".repeat(40)).packing.len(), 64);
    }
}
