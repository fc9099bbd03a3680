//! Quantized blocks as small unsigned integer codes with per-sub-block scales: the form that
//! integer dot products (ggml's, and Tern's CPU kernels) multiply.
//!
//! Every format with codes is, per sub-block of 16 or 32 weights, codes `q` with a scale and
//! either a fixed zero point (`w = scale * (q - offset)`) or a minimum (`w = scale * q + min`).

use super::float::read_f16;
use super::kquant::scale_min_k4;
use crate::DType;
use crate::dtype::QK_K;

/// Codes, scales and minimums of one file block (up to [`QK_K`] weights).
pub struct BlockCodes {
    /// Unsigned codes, one per weight.
    pub q: [u8; QK_K],
    /// Scale of each sub-block, as the dequantizer computes it (`d * sc` for K-quants).
    pub scales: [f32; QK_K / 16],
    /// Minimum of each sub-block (`-(dmin * m)` for K-quants); zero for formats with a
    /// fixed zero point.
    pub mins: [f32; QK_K / 16],
    /// K-quants only: the integer factors behind `scales` and `mins`.
    pub k: SuperBlock,
}

/// A K-quant super-block's scales as the file stores them: two f16 factors and small
/// integers per sub-block. Integer kernels accumulate `Σ sc_j * dot_j` exactly and apply
/// `d` once per super-block, as ggml does; the f32 products in [`BlockCodes::scales`] round
/// once per sub-block instead.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SuperBlock {
    /// The f16 factor of the sub-block scales, widened to f32.
    pub d: f32,
    /// Zero for Q6_K, which has no minimums.
    pub dmin: f32,
    /// `sc_j`: 6-bit unsigned (Q4_K, Q5_K; 8 sub-blocks) or 8-bit signed (Q6_K; 16).
    pub sc: [i16; QK_K / 16],
    /// `m_j`: 6-bit unsigned (Q4_K, Q5_K); zero for Q6_K.
    pub m: [i16; QK_K / 16],
}

impl BlockCodes {
    /// Every code, scale and minimum zero; [`BlockCodes::unpack`] fills one block at a time.
    pub const fn new() -> BlockCodes {
        BlockCodes {
            q: [0; QK_K],
            scales: [0.0; QK_K / 16],
            mins: [0.0; QK_K / 16],
            k: SuperBlock {
                d: 0.0,
                dmin: 0.0,
                sc: [0; QK_K / 16],
                m: [0; QK_K / 16],
            },
        }
    }

    /// Decodes one block of `dtype` (exactly `dtype.block_bytes()` bytes). Returns `false`
    /// for a float format or a block of the wrong size.
    pub fn unpack(&mut self, dtype: DType, block: &[u8]) -> bool {
        if !dtype.is_quantized() || block.len() != dtype.block_bytes() {
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
        self.k = SuperBlock {
            d,
            dmin,
            ..SuperBlock::default()
        };
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &s);
            // As the dequantizer: both products first, `w = (d*sc)*q - (dmin*m)`.
            self.scales[j] = d * f32::from(sc);
            self.mins[j] = -(dmin * f32::from(m));
            self.k.sc[j] = i16::from(sc);
            self.k.m[j] = i16::from(m);
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
        self.k = SuperBlock {
            d,
            ..SuperBlock::default()
        };
        for (j, s) in self.scales.iter_mut().enumerate() {
            *s = d * f32::from(sc[j] as i8);
            self.k.sc[j] = i16::from(sc[j] as i8);
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
    use proptest::prelude::*;

    proptest! {
        /// The float scales and minimums of K-quants are the products of their integer factors.
        #[test]
        fn k_quant_scales_are_products_of_their_factors(
            seed in any::<u64>(), which in 0usize..3,
        ) {
            let dtype = [DType::Q4_K, DType::Q5_K, DType::Q6_K][which];
            let mut rng = crate::sample::Xoshiro256::seed_from_u64(seed);
            let mut block = [0u8; 256];
            let block = &mut block[..dtype.block_bytes()];
            block.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
            let mut codes = BlockCodes::new();
            prop_assert!(codes.unpack(dtype, block));
            let subs = if dtype == DType::Q6_K { 16 } else { 8 };
            for j in 0..subs {
                let k = codes.k;
                prop_assert!(same(codes.scales[j], k.d * f32::from(k.sc[j])));
                prop_assert!(same(codes.mins[j], -(k.dmin * f32::from(k.m[j]))));
            }
        }
    }

    fn same(a: f32, b: f32) -> bool {
        a == b || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn float_formats_and_short_blocks_have_no_codes() {
        let mut codes = BlockCodes::new();
        assert!(!codes.unpack(DType::F16, &[0, 0]));
        assert!(!codes.unpack(DType::Q4_0, &[0; 17]));
    }
}
