//! Compiled programs kept on disk, so a second start does not compile its kernels again: a
//! phone GPU's driver may take seconds per program. A file holds one program's binary for
//! one device, driver and source; it is named by a hash of all three, checked against its
//! own header and checksum when read, and rewritten whenever the driver refuses it, so a
//! stale or damaged file costs one rebuild, never a wrong kernel.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tern_core::hash::content_hash;

use crate::device::DeviceInfo;

/// The first bytes of every cache file (the version is its last byte).
const MAGIC: &[u8; 8] = b"TERNCLB1";
/// Magic, key, binary length, binary checksum.
const HEADER: usize = 32;

/// A directory of compiled programs.
#[derive(Clone, Debug)]
pub(crate) struct ProgramCache {
    dir: PathBuf,
}

/// Which program, for which device and driver, from which source and options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProgramKey(u64);

impl ProgramKey {
    /// The key of `text` built with `options` on `device` under its current driver.
    pub(crate) fn new(device: &DeviceInfo, text: &str, options: &str) -> ProgramKey {
        let mut described = Vec::new();
        for part in [
            &device.platform,
            &device.name,
            &device.version,
            &device.driver_version,
            options,
            text,
        ] {
            described.extend_from_slice(&(part.len() as u64).to_le_bytes());
            described.extend_from_slice(part.as_bytes());
        }
        ProgramKey(content_hash(&described))
    }
}

/// What reading a cache file found.
#[derive(Debug)]
pub(crate) enum Cached {
    /// A verified binary.
    Binary(Vec<u8>),
    /// No file for this key yet.
    Missing,
    /// A file that is not a whole binary for this key: unreadable, truncated, another
    /// key's, or failing its checksum (it will be rewritten).
    Damaged,
}

impl ProgramCache {
    pub(crate) fn new(dir: &Path) -> ProgramCache {
        ProgramCache {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, key: ProgramKey) -> PathBuf {
        self.dir.join(format!("opencl-{:016x}.clbin", key.0))
    }

    /// The binary stored for `key`, checked.
    pub(crate) fn read(&self, key: ProgramKey) -> Cached {
        let bytes = match fs::read(self.path(key)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Cached::Missing,
            Err(_) => return Cached::Damaged,
        };
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Cached::Damaged;
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        if word(8) != key.0 {
            return Cached::Damaged;
        }
        let binary = &bytes[HEADER..];
        if word(16) != binary.len() as u64 {
            return Cached::Damaged;
        }
        if word(24) != content_hash(binary) {
            return Cached::Damaged;
        }
        Cached::Binary(binary.to_vec())
    }

    /// Stores `binary` for `key`: written beside its place, then renamed over it, so a
    /// reader never sees half a file.
    pub(crate) fn write(&self, key: ProgramKey, binary: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = fs::File::create(&temp)?;
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&key.0.to_le_bytes());
        header.extend_from_slice(&(binary.len() as u64).to_le_bytes());
        header.extend_from_slice(&content_hash(binary).to_le_bytes());
        let written = file
            .write_all(&header)
            .and_then(|()| file.write_all(binary))
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(driver: &str) -> DeviceInfo {
        DeviceInfo {
            driver_version: driver.into(),
            ..DeviceInfo::for_tests()
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tern-clbin-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keys_change_with_the_driver_the_source_and_the_options() {
        let k = ProgramKey::new(&device("1"), "src", "-D A");
        assert_eq!(k, ProgramKey::new(&device("1"), "src", "-D A"));
        assert_ne!(k, ProgramKey::new(&device("2"), "src", "-D A"));
        assert_ne!(k, ProgramKey::new(&device("1"), "src2", "-D A"));
        assert_ne!(k, ProgramKey::new(&device("1"), "src", "-D B"));
        // Parts are length-prefixed: moving a byte between them changes the key.
        assert_ne!(
            ProgramKey::new(&device("1"), "ab", "c"),
            ProgramKey::new(&device("1"), "b", "ca")
        );
    }

    #[test]
    fn a_binary_reads_back_and_every_damage_is_named() {
        let dir = scratch("roundtrip");
        let cache = ProgramCache::new(&dir);
        let key = ProgramKey::new(&device("1"), "src", "");
        assert!(matches!(cache.read(key), Cached::Missing));
        cache.write(key, b"compiled bytes").unwrap();
        assert!(matches!(cache.read(key), Cached::Binary(b) if b == b"compiled bytes"));

        let path = cache.path(key);
        let good = fs::read(&path).unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(matches!(cache.read(key), Cached::Damaged));
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(cache.read(key), Cached::Damaged));
        fs::write(&path, b"short").unwrap();
        assert!(matches!(cache.read(key), Cached::Damaged));
        let other = ProgramKey::new(&device("2"), "src", "");
        fs::write(cache.path(other), &good).unwrap();
        assert!(matches!(cache.read(other), Cached::Damaged));
        fs::remove_dir_all(&dir).unwrap();
    }
}
