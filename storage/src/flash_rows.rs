//! An embedding table left on flash: each step reads the rows of its tokens into a row
//! buffer and decodes them, so the table (hundreds of MiB for a large vocabulary) never
//! occupies DRAM. One row per token is a few hundred bytes to a few KiB of I/O.

use tern_core::DType;
use tern_core::exec::{EmbedError, EmbeddingRows};
use tern_core::quant::dequantize;

use crate::{ReadAt, ReadExactAtError};

/// Where a table sits in its source and how its rows are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowTable {
    /// Byte offset of row 0 in the source.
    pub offset: u64,
    /// Encoding of every row; `cols` must be a whole number of its blocks.
    pub dtype: DType,
    /// Number of rows: the vocabulary size, one row per token id.
    pub rows: usize,
    /// Elements per row (a whole number of `dtype` blocks).
    pub cols: usize,
}

impl RowTable {
    /// Bytes of one encoded row.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.dtype.block_len() * self.dtype.block_bytes()
    }
}

/// Why a table cannot be read from a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowTableError {
    /// `cols` is not a whole number of blocks, or a row has no elements.
    BadShape,
    /// The row buffer holds fewer bytes than a row.
    BufferTooSmall {
        /// Bytes of one encoded row.
        needed: usize,
        /// Bytes the row buffer holds.
        got: usize,
    },
    /// The table runs past the end of the source.
    PastEnd {
        /// Byte offset just past the table's last row in the source (saturates at `u64::MAX`).
        end: u64,
        /// Bytes in the source.
        size: u64,
    },
}

impl core::fmt::Display for RowTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RowTableError::BadShape => f.write_str("the rows are not whole blocks"),
            RowTableError::BufferTooSmall { needed, got } => {
                write!(f, "a row needs {needed} bytes, the buffer holds {got}")
            }
            RowTableError::PastEnd { end, size } => {
                write!(f, "the table ends at byte {end}, the source holds {size}")
            }
        }
    }
}

/// Embedding rows read on demand from `R` through a row buffer `B`.
pub struct FlashRows<R: ReadAt, B> {
    source: R,
    table: RowTable,
    row: B,
    bytes_read: u64,
    error: Option<ReadExactAtError<R::Error>>,
}

impl<R: ReadAt, B: AsMut<[u8]>> FlashRows<R, B> {
    /// Reads `table` from `source` through `row` (at least one row's bytes).
    pub fn new(source: R, table: RowTable, mut row: B) -> Result<Self, RowTableError> {
        let (block, cols) = (table.dtype.block_len(), table.cols);
        if cols == 0 || cols % block != 0 {
            return Err(RowTableError::BadShape);
        }
        let row_bytes = table.row_bytes();
        let got = row.as_mut().len();
        if got < row_bytes {
            return Err(RowTableError::BufferTooSmall {
                needed: row_bytes,
                got,
            });
        }
        let end = (row_bytes as u64)
            .checked_mul(table.rows as u64)
            .and_then(|n| n.checked_add(table.offset))
            .unwrap_or(u64::MAX);
        if end > source.size() {
            return Err(RowTableError::PastEnd {
                end,
                size: source.size(),
            });
        }
        Ok(FlashRows {
            source,
            table,
            row,
            bytes_read: 0,
            error: None,
        })
    }

    /// Bytes read from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Where the table sits and how its rows are encoded, as given to [`FlashRows::new`].
    pub fn table(&self) -> &RowTable {
        &self.table
    }

    /// The error behind the last [`EmbedError`], if any.
    pub fn take_error(&mut self) -> Option<ReadExactAtError<R::Error>> {
        self.error.take()
    }
}

impl<R: ReadAt, B: AsMut<[u8]>> EmbeddingRows for FlashRows<R, B> {
    fn embed(&mut self, tokens: &[u32], out: &mut [f32]) -> Result<(), EmbedError> {
        let (cols, row_bytes) = (self.table.cols, self.table.row_bytes());
        for (&token, out) in tokens.iter().zip(out.chunks_exact_mut(cols)) {
            let fail = EmbedError { token };
            if token as usize >= self.table.rows {
                return Err(fail);
            }
            let at = self.table.offset + token as u64 * row_bytes as u64;
            let row = &mut self.row.as_mut()[..row_bytes];
            if let Err(e) = self.source.read_exact_at(at, row) {
                self.error = Some(e);
                return Err(fail);
            }
            self.bytes_read += row_bytes as u64;
            // The row is whole blocks of the table's type (checked in `new`).
            dequantize(self.table.dtype, row, out).map_err(|_| fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SliceReader;
    use tern_core::backend::reference::embed;
    use tern_core::model::WeightView;

    /// A Q8_0 table of `rows` rows of 64 columns after `pad` bytes of something else.
    fn q8_table(rows: usize, pad: usize) -> Vec<u8> {
        let mut bytes = vec![0xAB; pad];
        for r in 0..rows {
            for block in 0..2 {
                let d = half::f16::from_f32(0.01 * (r + block + 1) as f32);
                bytes.extend_from_slice(&d.to_le_bytes());
                bytes.extend((0..32).map(|i| (i as i8 - 16 + r as i8) as u8));
            }
        }
        bytes
    }

    #[test]
    fn rows_equal_the_backend_embedding_of_the_table_in_memory() {
        let (rows, pad) = (7, 13);
        let file = q8_table(rows, pad);
        let table = RowTable {
            offset: pad as u64,
            dtype: DType::Q8_0,
            rows,
            cols: 64,
        };
        let mut flash = FlashRows::new(SliceReader::new(&file), table, [0u8; 68]).unwrap();
        let tokens = [3, 0, 6, 3];
        let mut got = vec![0f32; tokens.len() * 64];
        flash.embed(&tokens, &mut got).unwrap();
        let view = WeightView {
            name: "token_embd.weight",
            dtype: DType::Q8_0,
            rows,
            cols: 64,
            data: &file[pad..],
        };
        let mut want = vec![0f32; tokens.len() * 64];
        embed(&view, &tokens, &mut want);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(flash.bytes_read(), 4 * 68);
    }

    #[test]
    fn bad_tables_and_failed_reads_are_errors() {
        let file = q8_table(2, 0);
        let table = RowTable {
            offset: 0,
            dtype: DType::Q8_0,
            rows: 2,
            cols: 64,
        };
        let source = || SliceReader::new(&file);
        let too_small = FlashRows::new(source(), table, [0u8; 10]);
        assert!(matches!(
            too_small.err(),
            Some(RowTableError::BufferTooSmall { .. })
        ));
        let odd = RowTable { cols: 40, ..table };
        assert_eq!(
            FlashRows::new(source(), odd, [0u8; 68]).err(),
            Some(RowTableError::BadShape)
        );
        let long = RowTable { rows: 3, ..table };
        assert!(matches!(
            FlashRows::new(source(), long, [0u8; 68]).err(),
            Some(RowTableError::PastEnd { .. })
        ));

        // A source that shrank after the table was checked: the read fails, and says why.
        let mut flash = FlashRows::new(source(), table, [0u8; 68]).unwrap();
        flash.source = SliceReader::new(&file[..100]);
        let mut out = [0f32; 64];
        assert_eq!(flash.embed(&[1], &mut out), Err(EmbedError { token: 1 }));
        assert!(matches!(
            flash.take_error(),
            Some(ReadExactAtError::UnexpectedEof { .. })
        ));
        assert_eq!(flash.embed(&[2], &mut out), Err(EmbedError { token: 2 }));
    }
}
