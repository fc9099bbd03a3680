//! Metadata values as GGUF types them, and the conversions callers actually need.

use super::array::ArrayValue;
use core::fmt;

/// A metadata value type, numbered as in the GGUF file (0..=12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    /// Unsigned 8-bit integer: one byte.
    U8 = 0,
    /// Signed 8-bit integer: one byte, two's complement.
    I8 = 1,
    /// Unsigned 16-bit integer: two bytes, little-endian.
    U16 = 2,
    /// Signed 16-bit integer: two bytes, little-endian.
    I16 = 3,
    /// Unsigned 32-bit integer: four bytes, little-endian.
    U32 = 4,
    /// Signed 32-bit integer: four bytes, little-endian.
    I32 = 5,
    /// IEEE 754 binary32: four bytes, little-endian.
    F32 = 6,
    /// One byte, 0 (false) or 1 (true); any other byte is an error.
    Bool = 7,
    /// A u64 byte length, then that many bytes of UTF-8 (no terminator).
    String = 8,
    /// A u32 element type, a u64 element count, then the elements; arrays may nest.
    Array = 9,
    /// Unsigned 64-bit integer: eight bytes, little-endian.
    U64 = 10,
    /// Signed 64-bit integer: eight bytes, little-endian.
    I64 = 11,
    /// IEEE 754 binary64: eight bytes, little-endian.
    F64 = 12,
}

impl ValueType {
    /// Every type, in GGUF id order.
    pub const ALL: [ValueType; 13] = [
        ValueType::U8,
        ValueType::I8,
        ValueType::U16,
        ValueType::I16,
        ValueType::U32,
        ValueType::I32,
        ValueType::F32,
        ValueType::Bool,
        ValueType::String,
        ValueType::Array,
        ValueType::U64,
        ValueType::I64,
        ValueType::F64,
    ];

    /// The type with this GGUF id.
    pub fn from_id(id: u32) -> Option<ValueType> {
        ValueType::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The GGUF id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Encoded size of a value of this type, when every value has the same size.
    pub const fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }

    /// The fewest bytes a value of this type can take: what lets a count be checked against
    /// the remaining bytes before looping over it.
    pub const fn min_size(self) -> usize {
        match self.fixed_size() {
            Some(n) => n,
            // u64 length prefix
            None if matches!(self, ValueType::String) => 8,
            // u32 element type + u64 length
            None => 12,
        }
    }

    /// The name GGUF tools print for the type.
    pub const fn name(self) -> &'static str {
        match self {
            ValueType::U8 => "u8",
            ValueType::I8 => "i8",
            ValueType::U16 => "u16",
            ValueType::I16 => "i16",
            ValueType::U32 => "u32",
            ValueType::I32 => "i32",
            ValueType::F32 => "f32",
            ValueType::Bool => "bool",
            ValueType::String => "string",
            ValueType::Array => "array",
            ValueType::U64 => "u64",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowing strings and arrays from the file.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// Type 0. [`Value::as_u64`], [`Value::as_u32`] and [`Value::as_i64`] read any integer
    /// variant that holds the value, as writers disagree on widths.
    U8(u8),
    /// Type 1; read with [`Value::as_u64`] and its kin, like every integer.
    I8(i8),
    /// Type 2; read with [`Value::as_u64`] and its kin, like every integer.
    U16(u16),
    /// Type 3; read with [`Value::as_u64`] and its kin, like every integer.
    I16(i16),
    /// Type 4; read with [`Value::as_u64`] and its kin, like every integer.
    U32(u32),
    /// Type 5; read with [`Value::as_u64`] and its kin, like every integer.
    I32(i32),
    /// Type 10; read with [`Value::as_u64`] and its kin, like every integer.
    U64(u64),
    /// Type 11; read with [`Value::as_u64`] and its kin, like every integer.
    I64(i64),
    /// Type 6; [`Value::as_f32`] reads it, as it does F64 and integers.
    F32(f32),
    /// Type 12; [`Value::as_f32`] reads it rounded to f32.
    F64(f64),
    /// Type 7: checked to be 0 or 1 when the file is parsed.
    Bool(bool),
    /// Type 8: UTF-8 (checked when the file is parsed), borrowed from the file.
    String(&'a str),
    /// Type 9: a typed array borrowed from the file, decoded only as it is read.
    Array(ArrayValue<'a>),
}

impl<'a> Value<'a> {
    /// The GGUF type of this value; for an array, `Array` (see [`ArrayValue::elem_type`] for
    /// its elements).
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
        }
    }

    /// The value as i128 when it is an integer of any width or sign: one place for the
    /// range checks of the narrower accessors.
    fn integer(&self) -> Option<i128> {
        Some(match *self {
            Value::U8(v) => v.into(),
            Value::I8(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U64(v) => v.into(),
            Value::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// Any non-negative integer. Writers disagree on integer widths (u32 vs i32 vs u64 for
    /// the same key), so readers should accept any that holds the value.
    pub fn as_u64(&self) -> Option<u64> {
        u64::try_from(self.integer()?).ok()
    }

    /// Any integer that fits in u32.
    pub fn as_u32(&self) -> Option<u32> {
        u32::try_from(self.integer()?).ok()
    }

    /// Any integer that fits in i64.
    pub fn as_i64(&self) -> Option<i64> {
        i64::try_from(self.integer()?).ok()
    }

    /// F32, F64 (rounded) or an integer (rounded).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => self.integer().map(|v| v as f32),
        }
    }

    /// The bool, if this is a `Bool` (integers are not read as bools).
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The array, if this is an `Array`.
    pub fn as_array(&self) -> Option<ArrayValue<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Scalars print as themselves, strings quoted, arrays as their type and length only
/// (vocabularies run to hundreds of thousands of entries).
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::U8(v) => write!(f, "{v}"),
            Value::I8(v) => write!(f, "{v}"),
            Value::U16(v) => write!(f, "{v}"),
            Value::I16(v) => write!(f, "{v}"),
            Value::U32(v) => write!(f, "{v}"),
            Value::I32(v) => write!(f, "{v}"),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(a) => write!(f, "[{}; {}]", a.elem_type(), a.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for (i, t) in ValueType::ALL.into_iter().enumerate() {
            assert_eq!(t.id() as usize, i);
            assert_eq!(ValueType::from_id(t.id()), Some(t));
        }
        assert_eq!(ValueType::from_id(13), None);
        assert_eq!(ValueType::from_id(u32::MAX), None);
    }

    #[test]
    fn integer_accessors_accept_any_width_that_fits() {
        assert_eq!(Value::U8(7).as_u32(), Some(7));
        assert_eq!(Value::I32(7).as_u64(), Some(7));
        assert_eq!(Value::I32(-1).as_u64(), None);
        assert_eq!(Value::I64(-1).as_u32(), None);
        assert_eq!(Value::U64(1 << 32).as_u32(), None);
        assert_eq!(Value::U64(u64::MAX).as_i64(), None);
        assert_eq!(Value::I16(-3).as_i64(), Some(-3));
        assert_eq!(Value::F32(1.0).as_u32(), None);
        assert_eq!(Value::Bool(true).as_u32(), None);
    }

    #[test]
    fn float_accessor_converts() {
        assert_eq!(Value::F32(0.5).as_f32(), Some(0.5));
        assert_eq!(Value::F64(0.25).as_f32(), Some(0.25));
        assert_eq!(Value::U32(3).as_f32(), Some(3.0));
        assert_eq!(Value::String("x").as_f32(), None);
    }

    #[test]
    fn other_accessors_match_only_their_type() {
        assert_eq!(Value::Bool(true).as_bool(), Some(true));
        assert_eq!(Value::U8(1).as_bool(), None);
        assert_eq!(Value::String("llama").as_str(), Some("llama"));
        assert!(Value::U8(1).as_str().is_none());
        assert!(Value::U8(1).as_array().is_none());
    }
}
