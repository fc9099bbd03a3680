//! The shape rules of a device's KV-cache ops, checked before a kernel is recorded: what a
//! kernel would read or write out of bounds is an error here, with what did not fit.

use alloc::format;
use alloc::string::String;

use crate::model::ModelConfig;

/// Most elements per head the attention kernels hold (their query lives in shared memory).
pub const MAX_HEAD_DIM: usize = 1024;

/// The head layout attention needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Query heads; a whole multiple of `n_head_kv`.
    pub n_head: usize,
    /// Key and value heads; each serves `n_head / n_head_kv` query heads (grouped-query
    /// attention).
    pub n_head_kv: usize,
    /// Elements per head, at most [`MAX_HEAD_DIM`].
    pub head_dim: usize,
}

/// The token rows RoPE of `x_len` elements (rows of `n_heads` heads of `c`) rotates, with
/// a `(cos, sin)` table of `table_len` floats from float `table_offset` on (even, as the
/// kernels read pairs).
pub fn rope_rows(
    c: &ModelConfig,
    n_heads: usize,
    x_len: usize,
    table_offset: usize,
    table_len: usize,
) -> Result<usize, String> {
    let width = n_heads.saturating_mul(c.head_dim);
    if width == 0 || x_len % width != 0 || c.rope_dim > c.head_dim {
        return Err(format!(
            "{x_len} elements, {n_heads} heads of {}, rope_dim {}",
            c.head_dim, c.rope_dim
        ));
    }
    let tokens = x_len / width;
    let want = tokens * (c.rope_dim / 2) * 2;
    if table_len != want {
        return Err(format!("table holds {table_len} elements, expected {want}"));
    }
    if table_offset % 2 != 0 {
        return Err("the table must start at an even word".into());
    }
    Ok(tokens)
}

/// A KV cache's extent: `n_layer` x `n_ctx` rows of `width` elements, keys and values alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// Layers the cache covers.
    pub n_layer: usize,
    /// Positions per layer.
    pub n_ctx: usize,
    /// Elements per row: every key (or value) head of one position.
    pub width: usize,
}

impl KvShape {
    /// The rows a store of `k_len` key and `v_len` value elements into `layer` writes.
    pub fn store_rows(&self, layer: usize, k_len: usize, v_len: usize) -> Result<usize, String> {
        if self.width == 0 || k_len % self.width != 0 {
            return Err(format!("{k_len} elements, not rows of {}", self.width));
        }
        if v_len != k_len {
            return Err(format!("v holds {v_len} elements, expected {k_len}"));
        }
        let rows = k_len / self.width;
        if layer >= self.n_layer || rows > self.n_ctx {
            return Err(format!(
                "{rows} rows into layer {layer} of a {} x {} cache",
                self.n_layer, self.n_ctx
            ));
        }
        Ok(rows)
    }

    /// The query rows attention of `q_len` query elements over `layer` computes.
    pub fn attention_rows(
        &self,
        shape: AttentionShape,
        layer: usize,
        q_len: usize,
    ) -> Result<usize, String> {
        let AttentionShape {
            n_head,
            n_head_kv,
            head_dim,
        } = shape;
        let q_width = n_head.saturating_mul(head_dim);
        if q_width == 0
            || n_head_kv == 0
            || n_head % n_head_kv != 0
            || n_head_kv.checked_mul(head_dim) != Some(self.width)
            || head_dim > MAX_HEAD_DIM
            || q_len % q_width != 0
        {
            return Err(format!(
                "{q_len} query elements, {n_head} heads, {n_head_kv} KV heads of {head_dim}, \
                 cache width {}",
                self.width
            ));
        }
        let rows = q_len / q_width;
        if layer >= self.n_layer || rows > self.n_ctx {
            return Err(format!(
                "{rows} rows over layer {layer} of a {} x {} cache",
                self.n_layer, self.n_ctx
            ));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KV: KvShape = KvShape {
        n_layer: 2,
        n_ctx: 8,
        width: 4,
    };
    const HEADS: AttentionShape = AttentionShape {
        n_head: 4,
        n_head_kv: 2,
        head_dim: 2,
    };

    #[test]
    fn rope_fits_its_heads_and_its_table_or_says_why_not() {
        let c = crate::testing::conformance::model_config(4, 2, 8);
        let heads = c.n_head;
        let row = heads * c.head_dim;
        let table = 3 * (c.rope_dim / 2) * 2;
        assert_eq!(rope_rows(&c, heads, 3 * row, 4, table), Ok(3));
        assert!(
            rope_rows(&c, heads, 3 * row + 1, 4, table)
                .unwrap_err()
                .contains("heads of")
        );
        assert!(rope_rows(&c, 0, 0, 4, 0).is_err());
        assert!(
            rope_rows(&c, heads, 3 * row, 4, table - 2)
                .unwrap_err()
                .contains("table holds")
        );
        assert!(
            rope_rows(&c, heads, 3 * row, 5, table)
                .unwrap_err()
                .contains("even word")
        );
    }

    #[test]
    fn stores_fit_the_cache_or_say_why_not() {
        assert_eq!(KV.store_rows(1, 12, 12), Ok(3));
        assert!(
            KV.store_rows(0, 13, 13)
                .unwrap_err()
                .contains("not rows of 4")
        );
        assert!(KV.store_rows(0, 12, 8).unwrap_err().contains("v holds 8"));
        assert!(KV.store_rows(2, 4, 4).unwrap_err().contains("layer 2"));
        assert!(KV.store_rows(0, 36, 36).unwrap_err().contains("9 rows"));
    }

    #[test]
    fn attention_fits_the_heads_and_the_cache_or_says_why_not() {
        assert_eq!(KV.attention_rows(HEADS, 0, 16), Ok(2));
        assert!(KV.attention_rows(HEADS, 0, 15).is_err());
        let odd_group = AttentionShape { n_head: 3, ..HEADS };
        assert!(KV.attention_rows(odd_group, 0, 6).is_err());
        let wide = AttentionShape {
            head_dim: 4,
            ..HEADS
        };
        assert!(
            KV.attention_rows(wide, 0, 16)
                .unwrap_err()
                .contains("cache width 4")
        );
        assert!(
            KV.attention_rows(HEADS, 5, 8)
                .unwrap_err()
                .contains("layer 5")
        );
        assert!(
            KV.attention_rows(HEADS, 0, 8 * 9)
                .unwrap_err()
                .contains("9 rows")
        );
        let huge = AttentionShape {
            n_head: usize::MAX,
            ..HEADS
        };
        assert!(KV.attention_rows(huge, 0, 8).is_err());
    }
}
