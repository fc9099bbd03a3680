//! Buffers sized from a model file and the user's options: allocated fallibly and never
//! larger than the machine's memory, so that an absurd size is an error that names it
//! rather than an abort, or a machine driven into swap.

use crate::error::EngineError;

/// A vector of `n` default values for `what` (named in the error). Refused up front when
/// the bytes exceed the machine's physical memory, then reserved fallibly.
pub(super) fn filled_vec<T: Clone + Default>(
    n: usize,
    what: &'static str,
) -> Result<Vec<T>, EngineError> {
    let bytes = n.saturating_mul(size_of::<T>());
    check_fits(bytes, what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| EngineError::OutOfMemory { what, bytes })?;
    v.resize(n, T::default());
    Ok(v)
}

/// Refuses `bytes` (`usize::MAX` for a size that overflowed) for `what` when they exceed the
/// machine's physical memory.
pub(super) fn check_fits(bytes: usize, what: &'static str) -> Result<(), EngineError> {
    if bytes == usize::MAX {
        return Err(EngineError::OutOfMemory { what, bytes });
    }
    match physical_memory() {
        Some(memory) if bytes as u64 > memory => Err(EngineError::MoreThanMemory {
            what,
            bytes,
            memory,
        }),
        _ => Ok(()),
    }
}

/// Bytes of physical memory, where the platform says.
fn physical_memory() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: sysconf only reads system configuration; it has no memory effects.
        let (pages, page_size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let pages = u64::try_from(pages).ok()?;
        let page_size = u64::try_from(page_size).ok()?;
        pages.checked_mul(page_size)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_larger_than_memory_is_refused_without_allocating() {
        let err = filled_vec::<f32>(usize::MAX / 8, "test buffer").unwrap_err();
        assert!(
            err.to_string().contains("test buffer"),
            "{err} does not name the buffer"
        );
        let err = filled_vec::<u64>(usize::MAX, "test buffer").unwrap_err();
        assert!(matches!(err, EngineError::OutOfMemory { .. }), "{err}");
    }

    #[test]
    fn a_small_buffer_is_filled() {
        assert_eq!(filled_vec::<u16>(3, "test buffer").unwrap(), vec![0, 0, 0]);
    }
}
