//! Array values: a typed, counted run of elements borrowed from the file.

use super::cursor::Cursor;
use super::read::{Check, read_str, read_value};
use super::value::{Value, ValueType};

/// An array value. Holds exactly its elements' bytes, validated by `Gguf::parse`; iterating
/// decodes them one at a time, so a vocabulary of 150k strings costs nothing until read.
#[derive(Clone, Copy, Debug)]
pub struct ArrayValue<'a> {
    elem_type: ValueType,
    len: usize,
    data: &'a [u8],
}

impl<'a> ArrayValue<'a> {
    /// `data` must be exactly `len` validated elements of `elem_type`.
    pub(crate) fn new(elem_type: ValueType, len: usize, data: &'a [u8]) -> ArrayValue<'a> {
        ArrayValue {
            elem_type,
            len,
            data,
        }
    }

    /// Type of every element; arrays of arrays nest, each inner array typed on its own.
    pub fn elem_type(&self) -> ValueType {
        self.elem_type
    }

    /// Number of elements (not bytes).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded elements, for callers that decode fixed-size elements in bulk.
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The elements in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            elem_type: self.elem_type,
            remaining: self.len,
            cur: Cursor::new(self.data, 0),
        }
    }

    /// The elements as strings; `None` unless the elements are strings.
    pub fn strings(&self) -> Option<StringIter<'a>> {
        (self.elem_type == ValueType::String).then(|| StringIter {
            remaining: self.len,
            cur: Cursor::new(self.data, 0),
        })
    }
}

impl<'a> IntoIterator for ArrayValue<'a> {
    type Item = Value<'a>;
    type IntoIter = ArrayIter<'a>;

    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

/// The elements of an [`ArrayValue`].
#[derive(Clone, Debug)]
pub struct ArrayIter<'a> {
    elem_type: ValueType,
    remaining: usize,
    cur: Cursor<'a>,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Depth 1: nesting below this array is at most what parse already accepted.
        match read_value(&mut self.cur, self.elem_type, 1, Check::Lengths) {
            Ok(v) => {
                self.remaining -= 1;
                Some(v)
            }
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}

/// The elements of a string [`ArrayValue`].
#[derive(Clone, Debug)]
pub struct StringIter<'a> {
    remaining: usize,
    cur: Cursor<'a>,
}

impl<'a> Iterator for StringIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.remaining == 0 {
            return None;
        }
        match read_str(&mut self.cur) {
            Ok(s) => {
                self.remaining -= 1;
                Some(s)
            }
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for StringIter<'_> {}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::testing::gguf_writer::Meta;
    use std::vec::Vec;

    #[test]
    fn fixed_size_elements_iterate_in_order() {
        let data: Vec<u8> = [1i32, -2, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = ArrayValue::new(ValueType::I32, 3, &data);
        let it = a.iter();
        assert_eq!(it.len(), 3);
        let got: Vec<i64> = it.map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(got, [1, -2, 3]);
        assert!(a.strings().is_none());
        assert_eq!(a.raw_bytes().len(), 12);
    }

    #[test]
    fn strings_iterate_with_exact_size() {
        let data: Vec<u8> = ["<unk>", "", "▁the"]
            .iter()
            .flat_map(|s| Meta::str(s).to_bytes())
            .collect();
        let a = ArrayValue::new(ValueType::String, 3, &data);
        let mut it = a.strings().unwrap();
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some("<unk>"));
        assert_eq!(it.len(), 2);
        assert_eq!(it.collect::<Vec<_>>(), ["", "▁the"]);
        assert_eq!(
            a.into_iter().filter_map(|v| v.as_str()).last(),
            Some("▁the")
        );
    }

    #[test]
    fn inconsistent_bytes_end_iteration_instead_of_panicking() {
        // Only reachable by bypassing parse; the iterators must still stop cleanly.
        let a = ArrayValue::new(ValueType::U64, 5, &[0; 12]);
        assert_eq!(a.iter().count(), 1);
        let s = ArrayValue::new(ValueType::String, 2, &[9, 0, 0, 0, 0, 0, 0, 0, b'x']);
        assert_eq!(s.strings().unwrap().count(), 0);
    }
}
