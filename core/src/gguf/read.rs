//! Reading strings and metadata values, and skipping over arrays.
//!
//! The same code validates the file in `Gguf::parse` and re-walks it afterwards: a value's
//! extent is found by walking it, so both passes must agree on every length. Arrays are
//! skipped element by element only when their elements vary in size (strings, arrays); every
//! element count is compared with the bytes left before the loop over it starts, so each loop
//! is bounded by the file size.

use super::array::ArrayValue;
use super::cursor::Cursor;
use super::error::Fault;
use super::value::{Value, ValueType};

/// Deepest nesting of arrays accepted (an array of arrays is depth 2). Bounds recursion, and
/// so stack use, on hostile files; real files nest at most 2 deep.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// How much to check in the elements of a skipped array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every string is UTF-8 and every bool is 0 or 1 (first pass, in `parse`).
    Full,
    /// Only lengths and types (the bytes were validated by a `Full` pass).
    Lengths,
}

/// A length-prefixed string's bytes and the position they start at.
fn read_string_bytes<'a>(cur: &mut Cursor<'a>) -> Result<(usize, &'a [u8]), Fault> {
    let pos = cur.pos();
    let len = cur.u64()?;
    let available = cur.remaining();
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n <= available)
        .ok_or(Fault::StringPastEnd {
            pos,
            len,
            available,
        })?;
    let start = cur.pos();
    Ok((start, cur.take(n)?))
}

/// A length-prefixed UTF-8 string.
pub(crate) fn read_str<'a>(cur: &mut Cursor<'a>) -> Result<&'a str, Fault> {
    let (start, bytes) = read_string_bytes(cur)?;
    core::str::from_utf8(bytes).map_err(|e| Fault::InvalidUtf8 {
        pos: start.saturating_add(e.valid_up_to()),
    })
}

/// A u32 value type id.
pub(crate) fn read_value_type(cur: &mut Cursor<'_>) -> Result<ValueType, Fault> {
    let pos = cur.pos();
    let type_id = cur.u32()?;
    ValueType::from_id(type_id).ok_or(Fault::UnknownValueType { pos, type_id })
}

/// One value of type `ty`. `depth` is the number of arrays around it (0 for a metadata
/// value); `check` applies to the elements of arrays, which are skipped, not returned.
pub(crate) fn read_value<'a>(
    cur: &mut Cursor<'a>,
    ty: ValueType,
    depth: usize,
    check: Check,
) -> Result<Value<'a>, Fault> {
    Ok(match ty {
        ValueType::U8 => Value::U8(cur.u8()?),
        ValueType::I8 => Value::I8(cur.i8()?),
        ValueType::U16 => Value::U16(cur.u16()?),
        ValueType::I16 => Value::I16(cur.i16()?),
        ValueType::U32 => Value::U32(cur.u32()?),
        ValueType::I32 => Value::I32(cur.i32()?),
        ValueType::U64 => Value::U64(cur.u64()?),
        ValueType::I64 => Value::I64(cur.i64()?),
        ValueType::F32 => Value::F32(cur.f32()?),
        ValueType::F64 => Value::F64(cur.f64()?),
        ValueType::Bool => {
            let pos = cur.pos();
            match cur.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                byte => return Err(Fault::InvalidBool { pos, byte }),
            }
        }
        ValueType::String => Value::String(read_str(cur)?),
        ValueType::Array => Value::Array(read_array(cur, depth, check)?),
    })
}

/// An array value (element type, count, elements) at nesting `depth`.
fn read_array<'a>(
    cur: &mut Cursor<'a>,
    depth: usize,
    check: Check,
) -> Result<ArrayValue<'a>, Fault> {
    let pos = cur.pos();
    if depth >= MAX_ARRAY_DEPTH {
        return Err(Fault::ArrayTooDeep { pos });
    }
    let elem_type = read_value_type(cur)?;
    let count_pos = cur.pos();
    let count = cur.u64()?;
    let available = cur.remaining();
    let too_many = Fault::CountTooLarge {
        pos: count_pos,
        count,
        available,
    };
    let len = usize::try_from(count)
        .ok()
        .filter(|&n| n <= available / elem_type.min_size())
        .ok_or(too_many)?;
    let start = cur.pos();
    skip_elements(cur, elem_type, len, depth + 1, check)?;
    Ok(ArrayValue::new(elem_type, len, cur.since(start)))
}

/// Moves past `len` elements of type `ty`; `len` is already known to fit in the bytes left
/// at the elements' minimum size.
fn skip_elements(
    cur: &mut Cursor<'_>,
    ty: ValueType,
    len: usize,
    depth: usize,
    check: Check,
) -> Result<(), Fault> {
    if let Some(size) = ty.fixed_size() {
        let start = cur.pos();
        let bytes = cur.take(len.saturating_mul(size))?;
        if ty == ValueType::Bool && check == Check::Full {
            if let Some(i) = bytes.iter().position(|&b| b > 1) {
                return Err(Fault::InvalidBool {
                    pos: start.saturating_add(i),
                    byte: bytes.get(i).copied().unwrap_or(0),
                });
            }
        }
        return Ok(());
    }
    for _ in 0..len {
        match (ty, check) {
            (ValueType::String, Check::Full) => {
                read_str(cur)?;
            }
            (ValueType::String, Check::Lengths) => {
                read_string_bytes(cur)?;
            }
            _ => {
                read_array(cur, depth, check)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    fn array_header(elem: ValueType, len: u64) -> Vec<u8> {
        let mut v = elem.id().to_le_bytes().to_vec();
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    #[test]
    fn strings_must_fit_and_be_utf8() {
        let ok = string(b"hello");
        assert_eq!(read_str(&mut Cursor::new(&ok, 0)), Ok("hello"));
        let bad = string(b"he\xffllo");
        assert_eq!(
            read_str(&mut Cursor::new(&bad, 0)),
            Err(Fault::InvalidUtf8 { pos: 10 })
        );
        let mut long = string(b"abc");
        long[0] = 4;
        assert_eq!(
            read_str(&mut Cursor::new(&long, 0)),
            Err(Fault::StringPastEnd {
                pos: 0,
                len: 4,
                available: 3
            })
        );
        let mut huge = string(b"abc");
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            read_str(&mut Cursor::new(&huge, 0)),
            Err(Fault::StringPastEnd { len: u64::MAX, .. })
        ));
    }

    #[test]
    fn scalars_and_bools() {
        let bytes = [0x34, 0x12, 1, 2];
        let mut c = Cursor::new(&bytes, 0);
        assert!(matches!(
            read_value(&mut c, ValueType::U16, 0, Check::Full),
            Ok(Value::U16(0x1234))
        ));
        assert!(matches!(
            read_value(&mut c, ValueType::Bool, 0, Check::Full),
            Ok(Value::Bool(true))
        ));
        assert_eq!(
            read_value(&mut c, ValueType::Bool, 0, Check::Full).err(),
            Some(Fault::InvalidBool { pos: 3, byte: 2 })
        );
    }

    #[test]
    fn arrays_of_arrays_of_strings() {
        let mut bytes = array_header(ValueType::Array, 2);
        bytes.extend(array_header(ValueType::String, 2));
        bytes.extend(string(b"a"));
        bytes.extend(string(b"bc"));
        bytes.extend(array_header(ValueType::String, 0));
        bytes.extend([0xAA]); // trailing byte that is not part of the value
        let mut c = Cursor::new(&bytes, 0);
        let v = read_value(&mut c, ValueType::Array, 0, Check::Full).unwrap();
        assert_eq!(c.pos(), bytes.len() - 1);
        let outer = v.as_array().unwrap();
        assert_eq!(outer.elem_type(), ValueType::Array);
        assert_eq!(outer.len(), 2);
        let inner: Vec<_> = outer.iter().map(|v| v.as_array().unwrap()).collect();
        let first: Vec<&str> = inner[0].strings().unwrap().collect();
        assert_eq!(first, ["a", "bc"]);
        assert!(inner[1].is_empty());
    }

    #[test]
    fn array_counts_are_checked_before_looping() {
        let mut bytes = array_header(ValueType::String, 1 << 62);
        bytes.extend(string(b"x"));
        let err = read_value(
            &mut Cursor::new(&bytes, 0),
            ValueType::Array,
            0,
            Check::Full,
        );
        assert_eq!(
            err.err(),
            Some(Fault::CountTooLarge {
                pos: 4,
                count: 1 << 62,
                available: 9
            })
        );
        // 3 u32s need 12 bytes; 11 are there.
        let mut bytes = array_header(ValueType::U32, 3);
        bytes.extend([0; 11]);
        assert!(matches!(
            read_value(
                &mut Cursor::new(&bytes, 0),
                ValueType::Array,
                0,
                Check::Full
            ),
            Err(Fault::CountTooLarge { count: 3, .. })
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut bytes = Vec::new();
        for _ in 0..MAX_ARRAY_DEPTH {
            bytes.extend(array_header(ValueType::Array, 1));
        }
        bytes.extend(array_header(ValueType::U8, 0));
        let err = read_value(
            &mut Cursor::new(&bytes, 0),
            ValueType::Array,
            0,
            Check::Full,
        );
        assert_eq!(
            err.err(),
            Some(Fault::ArrayTooDeep {
                pos: 12 * MAX_ARRAY_DEPTH
            })
        );
        // One level less is accepted.
        let ok = &bytes[12..];
        assert!(read_value(&mut Cursor::new(ok, 0), ValueType::Array, 0, Check::Full).is_ok());
    }

    #[test]
    fn full_checks_array_elements_and_lengths_trusts_them() {
        let mut bytes = array_header(ValueType::Bool, 2);
        bytes.extend([1, 7]);
        let full = read_value(
            &mut Cursor::new(&bytes, 0),
            ValueType::Array,
            0,
            Check::Full,
        );
        assert_eq!(full.err(), Some(Fault::InvalidBool { pos: 13, byte: 7 }));
        let lengths = read_value(
            &mut Cursor::new(&bytes, 0),
            ValueType::Array,
            0,
            Check::Lengths,
        );
        assert!(lengths.is_ok());

        let mut bytes = array_header(ValueType::String, 1);
        bytes.extend(string(b"\xc3"));
        let full = read_value(
            &mut Cursor::new(&bytes, 0),
            ValueType::Array,
            0,
            Check::Full,
        );
        assert_eq!(full.err(), Some(Fault::InvalidUtf8 { pos: 20 }));
    }

    #[test]
    fn unknown_element_types_are_rejected() {
        let mut bytes = 13u32.to_le_bytes().to_vec();
        bytes.extend(0u64.to_le_bytes());
        assert_eq!(
            read_value(
                &mut Cursor::new(&bytes, 0),
                ValueType::Array,
                0,
                Check::Full
            )
            .err(),
            Some(Fault::UnknownValueType {
                pos: 0,
                type_id: 13
            })
        );
    }
}
