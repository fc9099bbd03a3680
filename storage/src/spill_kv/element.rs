//! The element types a spilled cache moves to and from a file as raw bytes.

use tern_core::kv::KvElement;

/// A [`KvElement`] a spilled cache can move: core seals `KvElement` to plain bits (any byte
/// pattern is a value and there is no padding: f32, f16, q8_0 blocks, FP8), so a slice of
/// them can be written to and read from a file as bytes, quantized rows in their stored form.
pub trait SpillElement: KvElement + Send + Sync + 'static {
    /// `values` as their bytes in memory order (native endianness), for writing to the file.
    fn as_bytes(values: &[Self]) -> &[u8] {
        // SAFETY: the implementors (core's sealed `KvElement`s) have no padding and no invalid
        // bit patterns, so their memory is `len * size_of` initialised bytes; the byte slice
        // borrows `values` and cannot outlive it.
        unsafe { core::slice::from_raw_parts(values.as_ptr().cast(), size_of_val(values)) }
    }

    /// `bytes` as values; they must be aligned for `Self` and a whole number of values.
    fn from_bytes(bytes: &[u8]) -> &[Self] {
        let ptr = bytes.as_ptr();
        assert!(
            ptr.align_offset(align_of::<Self>()) == 0 && bytes.len() % size_of::<Self>() == 0,
            "KV rows at a misaligned offset"
        );
        // SAFETY: checked just above: the pointer is aligned and the length a whole number
        // of values; every bit pattern is a value (core's sealed plain types), and the values borrow
        // `bytes`, so they cannot outlive the memory.
        unsafe { core::slice::from_raw_parts(ptr.cast(), bytes.len() / size_of::<Self>()) }
    }
}

impl<E: KvElement + Send + Sync + 'static> SpillElement for E {}

/// A zeroed vector, or an out-of-memory error instead of an abort.
pub(super) fn zeroed<E: SpillElement>(n: usize) -> std::io::Result<Vec<E>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::OutOfMemory, "KV cache buffers"))?;
    v.resize(n, E::default());
    Ok(v)
}
