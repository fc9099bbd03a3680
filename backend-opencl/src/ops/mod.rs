//! The ops of a transformer step as kernels added to a [`Batch`], with the reference
//! backend's semantics (core/src/backend/reference). Every op checks its shapes against the
//! buffers it is given before adding anything.

mod attention;
mod linear;
pub(crate) mod planar;
mod pointwise;

pub use attention::{AttentionShape, DeviceKv, KvFormat};
pub use linear::{DeviceWeight, EMBED_FORMATS, Layout, MATMUL_FORMATS, Precision, ROW_GROUP};
pub use planar::FAST_FORMATS;
pub use pointwise::rope_table;

use crate::batch::Batch;
use crate::error::ClError;
use crate::gpu::{Buffer, Gpu};
use crate::programs::Source;

type Result<T> = core::result::Result<T, ClError>;

/// Work-items per work-group of every kernel.
pub(crate) const GROUP: usize = 64;

/// `len` 32-bit words of a buffer from word `offset` on: f32 activations, u32 token ids.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The buffer the words live in.
    pub buf: &'a Buffer,
    /// Index of the first word in the buffer (words, not bytes).
    pub offset: usize,
    /// Number of words.
    pub len: usize,
}

impl Buffer {
    /// Words `offset..offset + len`, checked against the buffer's size.
    pub fn view(&self, offset: usize, len: usize) -> Result<View<'_>> {
        match offset.checked_add(len) {
            Some(end) if end <= self.words() => Ok(View {
                buf: self,
                offset,
                len,
            }),
            _ => Err(ClError::shape(
                "view",
                format!(
                    "words {offset}..+{len} outside a {}-word buffer",
                    self.words()
                ),
            )),
        }
    }

    /// The whole buffer as a view.
    pub fn all(&self) -> View<'_> {
        View {
            buf: self,
            offset: 0,
            len: self.words(),
        }
    }
}

/// A kernel argument.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    Buf(&'a Buffer),
    U32(u32),
    F32(f32),
}

/// A range of work-groups of [`GROUP`] work-items: `groups` along the first dimension,
/// `y` and `z` along the others.
pub(crate) fn groups(groups: usize, y: usize, z: usize) -> ([usize; 3], [usize; 3]) {
    ([groups * GROUP, y, z], [GROUP, 1, 1])
}

/// Enough work-groups for `n` work-items along the first dimension.
pub(crate) fn threads(n: usize) -> ([usize; 3], [usize; 3]) {
    groups(n.div_ceil(GROUP).max(1), 1, 1)
}

impl Gpu {
    /// Adds `source`'s kernel with `args` over `range` (global, local) to `batch`.
    pub(crate) fn record(
        &self,
        batch: &mut Batch,
        source: Source,
        args: &[Arg<'_>],
        (global, local): ([usize; 3], [usize; 3]),
    ) -> Result<()> {
        let mut kernel = self.kernel(source)?;
        for (i, arg) in args.iter().enumerate() {
            let i = i as u32;
            match *arg {
                Arg::Buf(b) => kernel.arg_buffer(i, b)?,
                Arg::U32(v) => kernel.arg_u32(i, v)?,
                Arg::F32(v) => kernel.arg_f32(i, v)?,
            }
        }
        batch.push(kernel, global, local);
        Ok(())
    }
}

/// `v` as a kernel index, or a shape error when it does not fit 32 bits.
pub(crate) fn word(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| ClError::shape(op, format!("{v} does not fit 32-bit indexing")))
}

/// Checks that `view` holds exactly `len` words.
pub(crate) fn expect_len(op: &'static str, what: &str, view: &View<'_>, len: usize) -> Result<()> {
    if view.len == len {
        Ok(())
    } else {
        Err(ClError::shape(
            op,
            format!("{what} holds {} elements, expected {len}", view.len),
        ))
    }
}
