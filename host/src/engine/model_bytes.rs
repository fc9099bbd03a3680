//! The bytes of a model file: mapped from disk, or compiled into the binary.

use std::path::Path;

use tern_storage::MappedFile;

/// Where a model's bytes live. Both forms have a stable address for as long as the value lives,
/// which the engine relies on to keep views into them.
pub enum ModelBytes {
    Mapped(MappedFile),
    Static(&'static [u8]),
}

impl ModelBytes {
    pub fn open(path: &Path) -> std::io::Result<ModelBytes> {
        MappedFile::open(path).map(ModelBytes::Mapped)
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ModelBytes::Mapped(m) => m.as_bytes(),
            ModelBytes::Static(b) => b,
        }
    }
}
