//! Pointers from C: checked for NULL, UTF-8 and length before anything reads them.

use std::ffi::{CStr, c_char};

use crate::status::Failure;

/// The NUL-terminated UTF-8 string at `ptr`; `what` names it in errors.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for
/// `'a`.
pub(crate) unsafe fn utf8<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::argument(format!(
            "{what} is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// The `len` elements at `ptr`; NULL is allowed only for an empty slice.
///
/// # Safety
/// `ptr` is NULL or points to `len` initialised elements valid and unchanged for `'a`.
pub(crate) unsafe fn slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(Failure::argument(format!(
            "{what}: a length of {len} is too large"
        )));
    }
    // SAFETY: not NULL, a size that fits isize, and the caller promises `len` elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The handle at `ptr` for reading; `what` names it in errors.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that no other thread mutates for `'a`.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::argument(format!("{what} is NULL")))
}

/// The handle at `ptr` for writing; `what` names it in errors.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that nothing else uses for `'a`.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller promises a live handle used by this thread alone, or NULL.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::argument(format!("{what} is NULL")))
}

/// Writes `value` to the out-parameter `out`.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises it is valid for a write.
    unsafe { out.write(value) };
    Ok(())
}

/// Checks that the out-parameter `out` is not NULL, before work whose result goes there.
pub(crate) fn out_given<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    match out.is_null() {
        true => Err(Failure::argument(format!("{what} is NULL"))),
        false => Ok(()),
    }
}
