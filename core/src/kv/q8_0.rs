//! The cache's q8_0 block: ggml's `block_q8_0` (an f16 scale, then 32 signed bytes), laid out
//! as ggml lays it out, so a cached row is the bytes llama.cpp's q8_0 cache would hold.
//! Blocks run along each head's dimension; a row of `width` elements is `width / 32` blocks.

use half::f16;

/// Elements per block.
pub const Q8_BLOCK: usize = crate::quant::q8_0::BLOCK_LEN;

/// 32 cached elements: element `i` is `qs[i] * d`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// The scale.
    pub d: f16,
    /// The codes.
    pub qs: [i8; Q8_BLOCK],
}

const _: () = assert!(size_of::<BlockQ8_0>() == crate::quant::q8_0::BLOCK_BYTES);

impl BlockQ8_0 {
    /// `x` quantized as ggml quantizes a row it stores into a q8_0 cache (its vectorized
    /// `quantize_row_q8_0`, which `set_rows` calls): `d = amax / 127` stored as f16 and
    /// `q = round_even(x * 127 / amax)`. The codes stay within ±127, never -128.
    pub fn quantize(x: &[f32; Q8_BLOCK]) -> BlockQ8_0 {
        let amax = x.iter().fold(0f32, |m, v| m.max(libm::fabsf(*v)));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        BlockQ8_0 {
            d: f16::from_f32(amax / 127.0),
            qs: core::array::from_fn(|i| libm::rintf(x[i] * id) as i8),
        }
    }

    /// Element `i`.
    pub fn get(&self, i: usize) -> f32 {
        f32::from(self.qs[i]) * self.d.to_f32()
    }
}

/// Quantizes `x` (a whole number of blocks) into `blocks`, one block per 32 elements.
pub fn quantize_row(x: &[f32], blocks: &mut [BlockQ8_0]) {
    for (b, x) in blocks.iter_mut().zip(x.chunks_exact(Q8_BLOCK)) {
        *b = BlockQ8_0::quantize(x.try_into().expect("a chunk of one block"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::activation::{ActivationFormat, round};
    use proptest::prelude::*;

    proptest! {
        /// A stored block reads back as the activation rounding of the same values, which is
        /// what the reference attention multiplies.
        #[test]
        fn reads_back_as_the_q8_0_activation_rounding(
            x in proptest::collection::vec(-100f32..100.0, Q8_BLOCK),
            zeros in 0usize..4,
        ) {
            let mut x: [f32; Q8_BLOCK] = x.try_into().unwrap();
            x[..zeros * 8].fill(0.0);
            let b = BlockQ8_0::quantize(&x);
            let mut want = x;
            round(ActivationFormat::Q8_0, &mut want);
            // Equal as numbers: the rounding keeps a code's sign on zero, the block cannot.
            for (i, w) in want.iter().enumerate() {
                prop_assert_eq!(b.get(i), *w);
            }
            prop_assert!(b.qs.iter().all(|&q| q != i8::MIN));
        }
    }

    #[test]
    fn zero_block_is_zero() {
        let b = BlockQ8_0::quantize(&[0.0; Q8_BLOCK]);
        assert_eq!(b, BlockQ8_0::default());
    }
}
