//! The problems the suite poses: quantized matrices with activation rows for `gemm_codes`
//! (row counts that leave partial panels, block counts that leave tails), activation layouts
//! for `quantize_row`, and a small model configuration for the driver's attention and RoPE.

use core::ops::RangeInclusive;
use std::vec;
use std::vec::Vec;

use super::Rng;
use crate::DType;
use crate::cpu::codes::{BlockCodes, CodeFormat, ZeroPoint};
use crate::cpu::{
    ActLayout, ActRow, ActScale, CpuKernels, PanelLayout, pack_codes, panel_count, quantize_row,
};
use crate::model::{Arch, ModelConfig, RopeStyle, WeightView};
use crate::quant::quantize;

/// A matrix quantized to a format, in the file's bytes.
pub struct Matrix {
    /// Its format.
    pub dtype: DType,
    /// Rows.
    pub rows: usize,
    /// Columns, whole blocks of the format.
    pub cols: usize,
    /// `rows` rows of `cols / dtype.block_len()` blocks.
    pub bytes: Vec<u8>,
}

impl Matrix {
    /// `values` (`rows` rows of `cols`, whole blocks) quantized to `dtype`.
    pub fn quantize(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Matrix {
        let mut bytes = vec![0u8; dtype.bytes_for(rows * cols).unwrap()];
        quantize(dtype, values, &mut bytes).unwrap();
        Matrix {
            dtype,
            rows,
            cols,
            bytes,
        }
    }

    /// The matrix as the driver and the packers take it.
    pub fn view(&self) -> WeightView<'_> {
        WeightView {
            name: "w",
            dtype: self.dtype,
            rows: self.rows,
            cols: self.cols,
            data: &self.bytes,
        }
    }
}

/// A random `gemm_codes` problem: a quantized matrix in its file format and in the portable
/// panel layout (which the definition reads), `n` activation rows quantized by the
/// definition, and for every (token, row) the magnitude `Σ (|s| (q + o) + |m|) |a|` that
/// bounds every partial sum.
pub struct Problem {
    /// The matrix in its file format.
    pub matrix: Matrix,
    /// Its format's panel layout.
    pub layout: PanelLayout,
    /// The matrix in the portable layout.
    pub packed: Vec<u8>,
    /// The activation layout the format multiplies with.
    pub act: ActLayout,
    /// Tokens.
    pub n: usize,
    /// Unquantized activations, `n` rows of `cols`.
    pub x: Vec<f32>,
    /// `x` quantized by the definition, `n` rows of `act.stride()` bytes.
    pub acts: Vec<u8>,
    /// `magnitude[t][r]`, of token `t` and row `r`.
    pub magnitude: Vec<Vec<f64>>,
}

impl Problem {
    /// `rows` rows of `blocks` blocks of `dtype` (a format with codes), `n` tokens.
    pub fn new(dtype: DType, rows: usize, blocks: usize, n: usize, seed: u64) -> Problem {
        let mut rng = Rng::new(seed);
        let cols = blocks * dtype.block_len();
        let matrix = Matrix::quantize(dtype, rows, cols, &rng.weights(rows, cols));
        let view = matrix.view();
        let format = CodeFormat::of(dtype).unwrap();
        let layout = PanelLayout { format, cols };
        let packed = pack_codes(&view, layout);
        let act = ActLayout::for_codes(format, cols);
        let x = rng.activations(n * cols);
        let mut acts = vec![0u8; n * act.stride()];
        for (x, row) in x
            .chunks_exact(cols)
            .zip(acts.chunks_exact_mut(act.stride()))
        {
            quantize_row(act, x, row);
        }
        let magnitude = (0..n)
            .map(|t| {
                let a = ActRow {
                    layout: act,
                    bytes: &acts[t * act.stride()..][..act.stride()],
                };
                (0..rows).map(|r| magnitude(&view, format, a, r)).collect()
            })
            .collect();
        Problem {
            matrix,
            layout,
            packed,
            act,
            n,
            x,
            acts,
            magnitude,
        }
    }

    /// Panel `p` in the portable layout.
    pub fn panel(&self, p: usize) -> &[u8] {
        let bytes = self.layout.panel_bytes();
        &self.packed[p * bytes..(p + 1) * bytes]
    }

    /// The matrix as `k` packs it (its layout may differ from the portable one, never its
    /// size).
    pub fn packed_for<K: CpuKernels>(&self, k: &K) -> Vec<u8> {
        let packed = k.pack_codes(&self.matrix.view(), self.layout);
        assert_eq!(
            packed.len(),
            self.packed.len(),
            "{} {}",
            k.name(),
            self.matrix.dtype
        );
        packed
    }

    /// Panels of the matrix (the last one partial where the rows leave a remainder).
    pub fn panels(&self) -> usize {
        panel_count(self.matrix.rows)
    }
}

/// `Σ (|s| (q + o) + |m|) |a|` over row `r`, from the file's blocks.
fn magnitude(w: &WeightView<'_>, format: CodeFormat, a: ActRow<'_>, r: usize) -> f64 {
    let offset = match format.zero {
        ZeroPoint::Offset(o) => f64::from(o),
        ZeroPoint::Min => 0.0,
    };
    let (len, bytes) = (w.dtype.block_len(), w.dtype.block_bytes());
    let row = w.row(r).unwrap();
    let mut codes = BlockCodes::new();
    let mut sum = 0.0;
    for (blk, block) in row.chunks_exact(bytes).enumerate() {
        assert!(codes.unpack(w.dtype, block));
        for i in 0..len {
            let col = blk * len + i;
            let sub = i / format.sub_block;
            let s = f64::from(codes.scales[sub]).abs();
            let m = f64::from(codes.mins[sub]).abs();
            let av = f64::from(a.d(col / format.sub_block) * f32::from(a.code(col))).abs();
            sum += (s * (f64::from(codes.q[i]) + offset) + m) * av;
        }
    }
    sum
}

/// Blocks per row of a `dtype` problem: up to nine of 32 (tails of the eight-block paths),
/// up to three super-blocks of 256.
pub fn blocks_of(dtype: DType) -> RangeInclusive<usize> {
    if dtype.block_len() == 32 {
        1..=9
    } else {
        1..=3
    }
}

/// An activation layout of both scale kinds with both sub-block sizes (`kind` in `0..4`):
/// `groups` blocks of 256 values, or five blocks of 32 per group (so that rows reach, and
/// leave tails of, the eight-block path).
pub fn act_layout(kind: usize, groups: usize) -> ActLayout {
    let (scale, group) = if kind < 2 {
        (ActScale::PerBlock32, 5 * 32)
    } else {
        (ActScale::PerBlock256, 256)
    };
    let sub_block = if kind % 2 == 0 { 32 } else { 16 };
    ActLayout {
        cols: groups * group,
        sub_block,
        scale,
    }
}

/// A one-layer Llama configuration of `n_head` query heads (`n_head_kv` key-value heads) of
/// `head_dim`, for attention and RoPE.
pub fn model_config(n_head: usize, n_head_kv: usize, head_dim: usize) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        n_vocab: 32,
        n_embd: n_head * head_dim,
        n_layer: 1,
        n_head,
        n_head_kv,
        head_dim,
        n_ff: 64,
        n_ctx_train: 4096,
        rms_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_freq_scale: 1.0,
        rope_dim: head_dim,
        rope_style: RopeStyle::AdjacentPairs,
        qkv_bias: false,
        qk_norm: false,
    }
}

/// A RoPE case of `n_head` heads of `2 * half_head`, rotating all but `rope_cut` of the
/// pairs (at least one stays rotated), in llama's adjacent pairs or NeoX's halves, with
/// llama's base or a long-context base and frequency scale: the choices a RoPE kernel must
/// get right, drawn by a property test.
pub fn rope_config(
    n_head: usize,
    half_head: usize,
    rope_cut: usize,
    neox: bool,
    long_theta: bool,
) -> ModelConfig {
    let mut c = model_config(n_head, n_head, 2 * half_head);
    c.rope_dim = 2 * (half_head - rope_cut.min(half_head - 1));
    c.rope_style = if neox {
        RopeStyle::HalfSplit
    } else {
        RopeStyle::AdjacentPairs
    };
    if long_theta {
        c.rope_theta = 1_000_000.0;
        c.rope_freq_scale = 0.25;
    }
    c
}
