//! Reinterpreting f32 slices as bytes and back, without copying.
//!
//! f32 and u8 have no invalid bit patterns, so the only conditions are alignment and a
//! length that is a whole number of f32s; the byte-to-f32 direction checks both.

use core::mem::{align_of, size_of, size_of_val};

/// The bytes of `v`, in native byte order.
pub fn f32_as_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: the pointer and length describe exactly the memory of `v`, which stays
    // borrowed for the returned lifetime; u8 has alignment 1 and every initialized byte is
    // a valid u8.
    unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v)) }
}

/// The bytes of `v`, writable. Any bytes written form valid f32 values.
pub fn f32_as_bytes_mut(v: &mut [f32]) -> &mut [u8] {
    let len = size_of_val(v);
    // SAFETY: as in `f32_as_bytes`; the exclusive borrow of `v` moves to the result, and
    // every bit pattern written through it is a valid f32.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) }
}

/// `b` as f32 values, or `None` when `b` is not 4-byte aligned or not a multiple of 4 long.
pub fn bytes_as_f32(b: &[u8]) -> Option<&[f32]> {
    if b.as_ptr().addr() % align_of::<f32>() != 0 || b.len() % size_of::<f32>() != 0 {
        return None;
    }
    // SAFETY: checked just above: the pointer is aligned for f32 and the length is a whole
    // number of f32s, all inside `b`; every bit pattern is a valid f32.
    Some(unsafe { core::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) })
}

/// `b` as writable f32 values, under the same conditions as [`bytes_as_f32`].
pub fn bytes_as_f32_mut(b: &mut [u8]) -> Option<&mut [f32]> {
    if b.as_ptr().addr() % align_of::<f32>() != 0 || b.len() % size_of::<f32>() != 0 {
        return None;
    }
    let len = b.len() / size_of::<f32>();
    // SAFETY: alignment and length checked above; the exclusive borrow of `b` moves to the
    // result, and any f32 written is a valid sequence of bytes.
    Some(unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<f32>(), len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut v = [1.0f32, -2.5, 3.25];
        assert_eq!(f32_as_bytes(&v).len(), 12);
        assert_eq!(&f32_as_bytes(&v)[..4], &1.0f32.to_ne_bytes());
        f32_as_bytes_mut(&mut v)[4..8].copy_from_slice(&7.0f32.to_ne_bytes());
        assert_eq!(v[1], 7.0);
        let back = bytes_as_f32(f32_as_bytes(&v)).unwrap();
        assert_eq!(back, &[1.0, 7.0, 3.25]);
        bytes_as_f32_mut(f32_as_bytes_mut(&mut v)).unwrap()[2] = 0.5;
        assert_eq!(v[2], 0.5);
    }

    #[test]
    fn rejects_misaligned_or_ragged() {
        let v = [0.0f32; 4];
        let b = f32_as_bytes(&v);
        assert!(bytes_as_f32(&b[1..5]).is_none());
        assert!(bytes_as_f32(&b[..6]).is_none());
        assert_eq!(bytes_as_f32(&b[4..12]).unwrap().len(), 2);
    }
}
