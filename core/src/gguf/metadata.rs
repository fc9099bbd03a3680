//! Metadata entries: a key string, a value type and a value.

use super::cursor::Cursor;
use super::error::{GgufError, Location};
use super::read::{Check, read_str, read_value, read_value_type};
use super::value::{Value, ValueType};

/// The fewest bytes a metadata entry can take: key length, empty key, type, a 1-byte value.
pub(crate) const MIN_ENTRY_BYTES: usize = 8 + 4 + ValueType::U8.min_size();

/// Reads entry `index` at the cursor. `check` applies to the elements of array values.
pub(crate) fn read_entry<'a>(
    cur: &mut Cursor<'a>,
    index: usize,
    check: Check,
) -> Result<(&'a str, Value<'a>), GgufError> {
    let key = read_str(cur).map_err(|f| f.at(Location::metadata(index, "")))?;
    let at = |f: super::error::Fault| f.at(Location::metadata(index, key));
    let ty = read_value_type(cur).map_err(at)?;
    let value = read_value(cur, ty, 0, check).map_err(at)?;
    Ok((key, value))
}

/// The metadata entries of a parsed file, in file order.
#[derive(Clone, Debug)]
pub struct MetadataIter<'a> {
    cur: Cursor<'a>,
    index: usize,
    count: usize,
}

impl<'a> MetadataIter<'a> {
    /// `count` validated entries starting at byte `start` of `bytes`.
    pub(crate) fn new(bytes: &'a [u8], start: usize, count: usize) -> MetadataIter<'a> {
        MetadataIter {
            cur: Cursor::new(bytes, start),
            index: 0,
            count,
        }
    }
}

impl<'a> Iterator for MetadataIter<'a> {
    type Item = (&'a str, Value<'a>);

    fn next(&mut self) -> Option<(&'a str, Value<'a>)> {
        if self.index >= self.count {
            return None;
        }
        match read_entry(&mut self.cur, self.index, Check::Lengths) {
            Ok(entry) => {
                self.index += 1;
                Some(entry)
            }
            Err(_) => {
                self.index = self.count;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count.saturating_sub(self.index);
        (n, Some(n))
    }
}

impl ExactSizeIterator for MetadataIter<'_> {}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::testing::gguf_writer::{GgufWriter, Meta};
    use std::vec;
    use std::vec::Vec;

    /// The metadata entry of `key`, holding `value`.
    fn entry(key: &str, value: Meta) -> Vec<u8> {
        GgufWriter::new().kv(key, value).metadata_bytes()
    }

    /// A value of type `ty` made of `bytes`, whether they fit it or not.
    fn raw(ty: ValueType, bytes: &[u8]) -> Meta {
        Meta::Raw {
            type_id: ty.id(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn entries_iterate_in_order() {
        let mut bytes = entry("a.b", Meta::U32(7));
        bytes.extend(entry("c", Meta::Bool(false)));
        let got: Vec<_> = MetadataIter::new(&bytes, 0, 2).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "a.b");
        assert_eq!(got[0].1.as_u32(), Some(7));
        assert_eq!(got[1].1.as_bool(), Some(false));
        assert_eq!(MIN_ENTRY_BYTES, 13);
    }

    #[test]
    fn errors_name_the_entry() {
        let bytes = entry("general.x", raw(ValueType::U32, &[1, 2]));
        let err = read_entry(&mut Cursor::new(&bytes, 0), 3, Check::Full).unwrap_err();
        assert!(matches!(
            err,
            GgufError::Truncated { at: Location::Metadata { index: 3, key }, pos: 21, needed: 4, .. }
                if key == "general.x"
        ));
        let type_99 = Meta::Raw {
            type_id: 99,
            bytes: vec![0],
        };
        let bytes = entry("k", type_99);
        let err = read_entry(&mut Cursor::new(&bytes, 0), 0, Check::Full).unwrap_err();
        assert!(matches!(
            err,
            GgufError::UnknownValueType {
                pos: 9,
                type_id: 99,
                ..
            }
        ));
    }

    #[test]
    fn a_bad_entry_ends_iteration() {
        let bytes = entry("k", raw(ValueType::U64, &[1]));
        assert_eq!(MetadataIter::new(&bytes, 0, 5).count(), 0);
    }
}
