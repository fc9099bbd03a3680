//! Weight blocks as integer codes: the form the integer microkernels multiply.
//!
//! Every fast format is, per sub-block of 16 or 32 weights, small unsigned codes `q` with a
//! scale, and either a fixed zero point (`w = scale * (q - offset)`) or a minimum
//! (`w = scale * q + min`). Unsigned codes let x86's `vpdpbusd`/`pmaddubsw` (unsigned times
//! signed bytes) take weights directly; the zero point or minimum becomes one correction per
//! sub-block from the activations' block sums, so no per-weight work is spent on it.

use crate::DType;
use crate::dtype::QK_K;
use crate::quant::float::read_f16;
use crate::quant::kquant::scale_min_k4;

/// How codes become weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroPoint {
    /// `w = scale * (q - offset)`.
    Offset(u8),
    /// `w = scale * q + min`, a minimum per sub-block.
    Min,
}

/// The integer shape of a format with a fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeFormat {
    /// Weights per sub-block (one scale each): 16 or 32.
    pub sub_block: usize,
    /// Bits per code: 4 (packed two per byte in panels) or up to 8 (one byte each).
    pub bits: u8,
    pub zero: ZeroPoint,
    /// Whether scales (and minimums) are exact in f16: true for formats that store them as
    /// f16; K-quant sub-block scales are products and need f32.
    pub f16_scales: bool,
}

impl CodeFormat {
    /// Every format with integer codes (a fast path), in `ggml_type` order.
    pub const DTYPES: [DType; 8] = [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q5_1,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
    ];

    /// The integer shape of `dtype`, or `None` for formats without a fast path.
    pub const fn of(dtype: DType) -> Option<CodeFormat> {
        let (sub_block, bits, zero, f16_scales) = match dtype {
            DType::Q4_0 => (32, 4, ZeroPoint::Offset(8), true),
            DType::Q4_1 => (32, 4, ZeroPoint::Min, true),
            DType::Q5_0 => (32, 5, ZeroPoint::Offset(16), true),
            DType::Q5_1 => (32, 5, ZeroPoint::Min, true),
            DType::Q8_0 => (32, 8, ZeroPoint::Offset(128), true),
            DType::Q4_K => (32, 4, ZeroPoint::Min, false),
            DType::Q5_K => (32, 5, ZeroPoint::Min, false),
            DType::Q6_K => (16, 6, ZeroPoint::Offset(32), false),
            _ => return None,
        };
        Some(CodeFormat {
            sub_block,
            bits,
            zero,
            f16_scales,
        })
    }
}

/// Codes, scales and minimums of one file block (up to [`QK_K`] weights).
pub struct BlockCodes {
    pub q: [u8; QK_K],
    pub scales: [f32; QK_K / 16],
    /// Zero unless the format has [`ZeroPoint::Min`].
    pub mins: [f32; QK_K / 16],
}

impl BlockCodes {
    pub const fn new() -> BlockCodes {
        BlockCodes {
            q: [0; QK_K],
            scales: [0.0; QK_K / 16],
            mins: [0.0; QK_K / 16],
        }
    }

    /// Decodes one block of `dtype` (exactly `dtype.block_bytes()` bytes). Returns `false`
    /// for a format without a [`CodeFormat`] or a block of the wrong size.
    pub fn unpack(&mut self, dtype: DType, block: &[u8]) -> bool {
        if CodeFormat::of(dtype).is_none() || block.len() != dtype.block_bytes() {
            return false;
        }
        let f16_at = |i: usize| read_f16([block[i], block[i + 1]]);
        match dtype {
            DType::Q4_0 => {
                self.scales[0] = f16_at(0);
                split_nibbles(&block[2..18], &mut self.q[..32]);
            }
            DType::Q4_1 => {
                self.scales[0] = f16_at(0);
                self.mins[0] = f16_at(2);
                split_nibbles(&block[4..20], &mut self.q[..32]);
            }
            DType::Q5_0 => {
                self.scales[0] = f16_at(0);
                split_nibbles(&block[6..22], &mut self.q[..32]);
                add_fifth_bits(&block[2..6], &mut self.q[..32]);
            }
            DType::Q5_1 => {
                self.scales[0] = f16_at(0);
                self.mins[0] = f16_at(2);
                split_nibbles(&block[8..24], &mut self.q[..32]);
                add_fifth_bits(&block[4..8], &mut self.q[..32]);
            }
            DType::Q8_0 => {
                self.scales[0] = f16_at(0);
                for (q, &b) in self.q.iter_mut().zip(&block[2..34]) {
                    *q = (b as i8 as i16 + 128) as u8;
                }
            }
            DType::Q4_K | DType::Q5_K => self.unpack_k4(dtype, block),
            DType::Q6_K => self.unpack_q6_k(block),
            _ => return false,
        }
        true
    }

    /// Q4_K and Q5_K share their scale packing; Q5_K adds a fifth bit from `qh`.
    fn unpack_k4(&mut self, dtype: DType, block: &[u8]) {
        let d = read_f16([block[0], block[1]]);
        let dmin = read_f16([block[2], block[3]]);
        let mut s = [0u8; 12];
        s.copy_from_slice(&block[4..16]);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &s);
            // As the dequantizer: both products first, `w = (d*sc)*q - (dmin*m)`.
            self.scales[j] = d * f32::from(sc);
            self.mins[j] = -(dmin * f32::from(m));
        }
        let (qh, qs) = if dtype == DType::Q5_K {
            (Some(&block[16..48]), &block[48..176])
        } else {
            (None, &block[16..144])
        };
        for (c, group) in qs.chunks_exact(32).enumerate() {
            for (l, &b) in group.iter().enumerate() {
                let (mut lo, mut hi) = (b & 0x0f, b >> 4);
                if let Some(qh) = qh {
                    lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                self.q[64 * c + l] = lo;
                self.q[64 * c + 32 + l] = hi;
            }
        }
    }

    fn unpack_q6_k(&mut self, block: &[u8]) {
        let d = read_f16([block[208], block[209]]);
        let (ql, rest) = block.split_at(128);
        let (qh, sc) = rest.split_at(64);
        for (j, s) in self.scales.iter_mut().enumerate() {
            *s = d * f32::from(sc[j] as i8);
        }
        for half in 0..2 {
            let (ql, qh, q) = (
                &ql[64 * half..],
                &qh[32 * half..],
                &mut self.q[128 * half..],
            );
            for l in 0..32 {
                let (a, b, h) = (ql[l], ql[l + 32], qh[l]);
                q[l] = (a & 0x0f) | (h & 3) << 4;
                q[l + 32] = (b & 0x0f) | ((h >> 2) & 3) << 4;
                q[l + 64] = (a >> 4) | ((h >> 4) & 3) << 4;
                q[l + 96] = (b >> 4) | ((h >> 6) & 3) << 4;
            }
        }
    }
}

impl Default for BlockCodes {
    fn default() -> Self {
        BlockCodes::new()
    }
}

/// ggml's legacy 4-bit order: byte `i` holds weight `i` (low nibble) and `i + 16` (high).
fn split_nibbles(bytes: &[u8], q: &mut [u8]) {
    let (lo, hi) = q.split_at_mut(bytes.len());
    for ((&b, lo), hi) in bytes.iter().zip(lo).zip(hi) {
        *lo = b & 0x0f;
        *hi = b >> 4;
    }
}

/// Q5_0/Q5_1's `qh`: bit `i` of the little-endian u32 is the fifth bit of code `i`.
fn add_fifth_bits(qh: &[u8], q: &mut [u8]) {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (i, q) in q.iter_mut().enumerate() {
        *q |= (((qh >> i) & 1) as u8) << 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequantize;
    use proptest::prelude::*;

    /// Codes times scales (plus minimums) reproduce the dequantizer exactly.
    fn check(dtype: DType, block: &[u8]) {
        let f = CodeFormat::of(dtype).unwrap();
        let mut codes = BlockCodes::new();
        assert!(codes.unpack(dtype, block));
        let n = dtype.block_len();
        let mut want = [0f32; QK_K];
        dequantize(dtype, block, &mut want[..n]).unwrap();
        for (i, &w) in want[..n].iter().enumerate() {
            let j = i / f.sub_block;
            let q = f32::from(codes.q[i]);
            assert!(u32::from(codes.q[i]) < 1 << f.bits, "{dtype} code {i}");
            let got = match f.zero {
                ZeroPoint::Offset(o) => codes.scales[j] * (q - f32::from(o)),
                ZeroPoint::Min => codes.scales[j] * q + codes.mins[j],
            };
            assert!(
                got == w || (got.is_nan() && w.is_nan()) || (got - w).abs() <= w.abs() * 1e-6,
                "{dtype} weight {i}: {got} vs {w}"
            );
        }
    }

    proptest! {
        #[test]
        fn codes_reproduce_the_dequantizer(seed in any::<u64>(), which in 0usize..CodeFormat::DTYPES.len()) {
            let dtype = CodeFormat::DTYPES[which];
            let mut rng = crate::sample::Xoshiro256::seed_from_u64(seed);
            let mut block = [0u8; 256];
            let block = &mut block[..dtype.block_bytes()];
            for b in block.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            // Keep the f16 factors finite and modest so products stay exact-comparable.
            let f16_fields: &[usize] = match dtype {
                DType::Q4_0 | DType::Q5_0 | DType::Q8_0 => &[0],
                DType::Q4_1 | DType::Q5_1 | DType::Q4_K | DType::Q5_K => &[0, 2],
                _ => &[208],
            };
            for &at in f16_fields {
                let v = half::f16::from_f32((rng.next_u64() % 2000) as f32 / 1000.0 - 1.0);
                block[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
            check(dtype, block);
        }
    }

    #[test]
    fn the_list_of_code_formats_is_complete() {
        for dtype in DType::ALL {
            let listed = CodeFormat::DTYPES.contains(&dtype);
            assert_eq!(CodeFormat::of(dtype).is_some(), listed, "{dtype}");
        }
    }

    #[test]
    fn formats_without_a_fast_path_have_no_codes() {
        let mut codes = BlockCodes::new();
        assert!(CodeFormat::of(DType::BF16).is_none());
        assert!(!codes.unpack(DType::F16, &[0, 0]));
        assert!(!codes.unpack(DType::Q4_0, &[0; 17]));
    }
}
