//! The types a KV cache can store its keys and values in, by name.

use core::fmt;

/// Element type of one half (keys or values) of a KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum KvType {
    /// Full precision.
    F32,
    /// Half the memory of f32; llama.cpp's default.
    #[default]
    F16,
    /// ggml's q8_0 blocks: 34 bytes per 32 elements, 0.53 of f16's memory. Attention
    /// multiplies q8_0 keys by the query quantized to q8_0, in integers.
    Q8_0,
    /// FP8 E4M3, one byte per element, for values only: keys, whose errors the softmax
    /// amplifies, need the finer steps of q8_0 or better.
    Fp8,
}

impl KvType {
    /// Every type, in the order users are told them.
    pub const ALL: [KvType; 4] = [KvType::F32, KvType::F16, KvType::Q8_0, KvType::Fp8];

    /// The name users give it (as llama.cpp's `--cache-type-k` names its types; `fp8` is
    /// Tern's own).
    pub const fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Fp8 => "fp8",
        }
    }

    /// The type of that name.
    pub fn from_name(name: &str) -> Option<KvType> {
        KvType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether keys may be stored in it.
    pub const fn holds_keys(self) -> bool {
        !matches!(self, KvType::Fp8)
    }

    /// Elements that are stored together (a q8_0 block shares one scale).
    pub const fn block_len(self) -> usize {
        match self {
            KvType::Q8_0 => super::Q8_BLOCK,
            KvType::F32 | KvType::F16 | KvType::Fp8 => 1,
        }
    }

    /// Bytes of one stored block.
    const fn block_bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
            KvType::Q8_0 => size_of::<super::BlockQ8_0>(),
            KvType::Fp8 => 1,
        }
    }

    /// Bytes of a row of `width` elements (a whole number of [`KvType::block_len`]).
    pub const fn row_bytes(self, width: usize) -> usize {
        width / self.block_len() * self.block_bytes()
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The types of a cache's keys and of its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct KvTypes {
    /// The keys' type.
    pub keys: KvType,
    /// The values' type.
    pub values: KvType,
}

impl KvTypes {
    /// Keys and values of one type.
    pub const fn same(t: KvType) -> KvTypes {
        KvTypes { keys: t, values: t }
    }

    /// Bytes of one position's key and value rows of `width` elements each, one layer.
    pub const fn position_bytes(self, width: usize) -> usize {
        self.keys.row_bytes(width) + self.values.row_bytes(width)
    }

    /// Whether both halves are f32 or f16, the types llama.cpp's default attention reads.
    pub const fn is_float(self) -> bool {
        matches!(
            (self.keys, self.values),
            (KvType::F32 | KvType::F16, KvType::F32 | KvType::F16)
        )
    }
}

impl fmt::Display for KvTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.keys, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_q8_0_is_0_53_of_f16() {
        for t in KvType::ALL {
            assert_eq!(KvType::from_name(t.name()), Some(t));
        }
        assert_eq!(KvType::from_name("q4_0"), None);
        let (q8, f16) = (KvTypes::same(KvType::Q8_0), KvTypes::same(KvType::F16));
        assert_eq!(q8.position_bytes(128) * 64, f16.position_bytes(128) * 34);
        assert_eq!(KvTypes::default(), f16);
        assert!(!KvType::Fp8.holds_keys() && KvType::Q8_0.holds_keys());
    }
}
