//! Element types and block formats as GGUF numbers them.

use core::fmt;

/// A tensor element type. Quantized types store elements in fixed-size blocks; the
/// discriminant is the `ggml_type` id that GGUF files use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(non_camel_case_types)]
pub enum DType {
    /// IEEE 754 binary32: 4 bytes per element.
    F32 = 0,
    /// IEEE 754 binary16: 2 bytes per element.
    F16 = 1,
    /// Blocks of 32 as 4-bit codes around 8 times an f16 scale: 18 bytes per block.
    Q4_0 = 2,
    /// Blocks of 32 as 4-bit codes times an f16 scale plus an f16 minimum: 20 bytes per block.
    Q4_1 = 3,
    /// Blocks of 32 as 5-bit codes around 16 times an f16 scale: 22 bytes per block.
    Q5_0 = 6,
    /// Blocks of 32 as 5-bit codes times an f16 scale plus an f16 minimum: 24 bytes per block.
    Q5_1 = 7,
    /// Blocks of 32 as i8 codes times an f16 scale: 34 bytes per block.
    Q8_0 = 8,
    /// Super-blocks of 256: eight sub-blocks of 4-bit codes, each with a 6-bit scale and
    /// minimum, under two f16 factors; 144 bytes (4.5 bits per weight).
    Q4_K = 12,
    /// Q4_K with a fifth bit per weight: 176 bytes per 256 weights (5.5 bits per weight).
    Q5_K = 13,
    /// Super-blocks of 256: sixteen sub-blocks of 6-bit codes around 32, each with an i8
    /// scale, under one f16 factor; 210 bytes (6.5625 bits per weight).
    Q6_K = 14,
    /// bfloat16: the upper half of an f32's bits, 2 bytes per element.
    BF16 = 30,
}

/// Elements in one K-quant super-block.
pub const QK_K: usize = 256;

impl DType {
    /// Every type Tern reads, in `ggml_type` order.
    pub const ALL: [DType; 11] = [
        DType::F32,
        DType::F16,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
        DType::BF16,
    ];

    /// The type with this `ggml_type` id, if Tern supports it.
    pub fn from_ggml(id: u32) -> Option<DType> {
        DType::ALL.into_iter().find(|t| *t as u32 == id)
    }

    /// Elements per block (1 for plain floats).
    pub const fn block_len(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q8_0 => 32,
            DType::Q4_K | DType::Q5_K | DType::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q4_0 => 2 + 16,
            DType::Q4_1 => 2 + 2 + 16,
            DType::Q5_0 => 2 + 4 + 16,
            DType::Q5_1 => 2 + 2 + 4 + 16,
            DType::Q8_0 => 2 + 32,
            DType::Q4_K => 2 + 2 + 12 + QK_K / 2,
            DType::Q5_K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2,
            DType::Q6_K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
        }
    }

    /// Bytes taken by `n` elements, or `None` when `n` is not a whole number of blocks
    /// or the size overflows.
    pub fn bytes_for(self, n: usize) -> Option<usize> {
        if n % self.block_len() != 0 {
            return None;
        }
        (n / self.block_len()).checked_mul(self.block_bytes())
    }

    /// True for the block-quantized formats.
    pub const fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    /// The name llama.cpp prints for this type.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::Q4_0 => "Q4_0",
            DType::Q4_1 => "Q4_1",
            DType::Q5_0 => "Q5_0",
            DType::Q5_1 => "Q5_1",
            DType::Q8_0 => "Q8_0",
            DType::Q4_K => "Q4_K",
            DType::Q5_K => "Q5_K",
            DType::Q6_K => "Q6_K",
            DType::BF16 => "BF16",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes_match_ggml() {
        let expect = [
            (DType::Q4_0, 18),
            (DType::Q4_1, 20),
            (DType::Q5_0, 22),
            (DType::Q5_1, 24),
            (DType::Q8_0, 34),
            (DType::Q4_K, 144),
            (DType::Q5_K, 176),
            (DType::Q6_K, 210),
        ];
        for (t, bytes) in expect {
            assert_eq!(t.block_bytes(), bytes, "{t}");
        }
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_none() {
        for t in DType::ALL {
            assert_eq!(DType::from_ggml(t as u32), Some(t));
        }
        for id in [4, 5, 9, 10, 11, 15, 16, 29, 31, 1000] {
            assert_eq!(DType::from_ggml(id), None);
        }
    }

    #[test]
    fn bytes_for_requires_whole_blocks() {
        assert_eq!(DType::Q8_0.bytes_for(64), Some(68));
        assert_eq!(DType::Q8_0.bytes_for(33), None);
        assert_eq!(DType::Q6_K.bytes_for(512), Some(420));
        assert_eq!(DType::F32.bytes_for(usize::MAX), None);
    }
}
