//! A loaded model as one value that owns the memory its parts borrow: the model file's bytes
//! and the mapped packed-weight cache (the owner, [`Backing`]), and the parsed file and the
//! executor whose weights view them (the borrowers, [`Loaded`]). `self_cell` ties the two
//! together, so no borrow is ever stretched to `'static` and nothing rests on the order in
//! which a struct's fields drop.

use std::sync::OnceLock;

use tern_core::exec::Executor;
use tern_core::gguf::Gguf;
use tern_storage::pack_cache::PackCache;

use super::ModelBytes;

/// The memory a loaded model borrows.
pub(crate) struct Backing {
    bytes: ModelBytes,
    /// The packed-weight cache the CPU backend's weights are read from, once a load has
    /// mapped a valid one.
    pub pack_cache: OnceLock<PackCache>,
}

impl Backing {
    pub fn new(bytes: ModelBytes) -> Backing {
        Backing {
            bytes,
            pack_cache: OnceLock::new(),
        }
    }

    /// The model file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_bytes()
    }

    /// Tells the OS that `part` of the model's bytes will not be read again soon.
    pub fn release(&self, part: &[u8]) {
        self.bytes.release(part);
    }
}

/// What borrows a [`Backing`].
pub(crate) struct Loaded<'a> {
    pub gguf: Gguf<'a>,
    pub executor: Box<dyn Executor + 'a>,
}

self_cell::self_cell!(
    /// A model file's memory and what was loaded from it.
    pub(crate) struct LoadedModel {
        owner: Backing,
        #[covariant]
        dependent: Loaded,
    }
);
