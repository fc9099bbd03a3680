//! The ops of a transformer step as kernels recorded into a [`Batch`](crate::Batch), with
//! the reference backend's semantics (core/src/backend/reference). Every op checks its
//! shapes against the buffers it is given before recording anything.

mod attention;
mod linear;
mod pointwise;

pub use attention::{AttentionShape, DeviceKv, KvFormat};
pub use linear::{DeviceWeight, EMBED_FORMATS, Layout, MATMUL_FORMATS, Precision, ROW_GROUP};
pub use pointwise::rope_table;

use crate::error::{Result, VkError};
use crate::memory::Buffer;

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
            _ => Err(VkError::shape(
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

/// Workgroups per dispatch dimension every device supports.
const MAX_GROUPS: usize = 65535;

/// Lays `groups` workgroups out as (x, y) so that x stays within every device's limit; the
/// shaders recover the index as `y * num_groups.x + x` and skip the overshoot.
pub(crate) fn grid(op: &'static str, groups: usize, z: usize) -> Result<[u32; 3]> {
    let (x, y) = if groups <= MAX_GROUPS {
        (groups, 1)
    } else {
        (MAX_GROUPS, groups.div_ceil(MAX_GROUPS))
    };
    if y > MAX_GROUPS || z > MAX_GROUPS {
        return Err(VkError::shape(
            op,
            format!("{groups} x {z} workgroups is too many"),
        ));
    }
    Ok([x as u32, y as u32, z as u32])
}

/// Workgroups of 64 threads for `n` threads.
pub(crate) fn threads(op: &'static str, n: usize) -> Result<[u32; 3]> {
    grid(op, n.div_ceil(64), 1)
}

/// `v` as a shader index, or a shape error when it does not fit 32 bits.
pub(crate) fn word(op: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| VkError::shape(op, format!("{v} does not fit 32-bit indexing")))
}

/// Checks that `view` holds exactly `len` words.
pub(crate) fn expect_len(op: &'static str, what: &str, view: &View<'_>, len: usize) -> Result<()> {
    if view.len == len {
        Ok(())
    } else {
        Err(VkError::shape(
            op,
            format!("{what} holds {} elements, expected {len}", view.len),
        ))
    }
}
