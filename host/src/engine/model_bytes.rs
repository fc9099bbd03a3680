//! The bytes of a model file: mapped from disk, compiled into the binary, or handed over in
//! memory.

use std::path::Path;

use tern_storage::MappedFile;

/// Where a model's bytes live. Both forms have a stable address for as long as the value lives,
/// which the engine relies on to keep views into them.
pub enum ModelBytes {
    /// A model file mapped read-only from disk.
    Mapped(MappedFile),
    /// A model compiled into the binary.
    Static(&'static [u8]),
    /// A model already in memory (received over a network, generated, fuzzed). A `Vec`'s
    /// buffer stays put when the `Vec` moves, and the engine never changes it.
    Owned(Vec<u8>),
}

impl ModelBytes {
    /// Maps the model file at `path`.
    pub fn open(path: &Path) -> std::io::Result<ModelBytes> {
        MappedFile::open(path).map(ModelBytes::Mapped)
    }

    /// The whole model file.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ModelBytes::Mapped(m) => m.as_bytes(),
            ModelBytes::Static(b) => b,
            ModelBytes::Owned(v) => v,
        }
    }

    /// Lets the OS drop the resident pages of `part` (a slice of these bytes) once it has
    /// been copied elsewhere, such as weights repacked at load. Reads of `part` stay valid
    /// (they fault the pages back in). Bytes compiled into the binary, other platforms, and
    /// slices not of these bytes are left alone; so is a failure, which only costs memory.
    pub fn release(&self, part: &[u8]) {
        #[cfg(unix)]
        if let ModelBytes::Mapped(map) = self {
            let base = map.as_bytes().as_ptr() as usize;
            if let Some(offset) = (part.as_ptr() as usize).checked_sub(base) {
                let _ = map.release_range(offset, part.len());
            }
        }
        #[cfg(not(unix))]
        let _ = part;
    }
}
