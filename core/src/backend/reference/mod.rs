//! The scalar reference backend: every op written plainly, in the order of llama2.c's run.c
//! where run.c has the op, reading weights as the file stores them. It is slow on purpose
//! and is the oracle that every other backend is tested against.

pub(crate) mod attention;
mod elementwise;
mod matmul;
mod norm;
mod rope;
mod rows;

pub use attention::attention;
pub use elementwise::{add, add_bias, swiglu};
pub use matmul::{dot_row, matmul};
pub use norm::{head_norm, rms_norm};
pub use rope::rope;
pub use rows::{dequantize_row, embed, for_each_chunk};

use super::{Backend, Holding, Parallel, Positions, PrepareError};
use crate::kv::KvCache;
use crate::model::{ModelConfig, WeightRole, WeightView};

/// The reference backend. Weights stay views into the model file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl<'w> Backend<'w> for Reference {
    type Weight = WeightView<'w>;

    fn name(&self) -> &'static str {
        "reference"
    }

    fn prepare(
        &self,
        view: WeightView<'w>,
        _role: WeightRole,
    ) -> Result<WeightView<'w>, PrepareError> {
        Ok(view)
    }

    fn stored(&self, weight: &WeightView<'w>) -> WeightView<'w> {
        *weight
    }

    fn holding(&self, _weight: &WeightView<'w>) -> Holding {
        Holding::File
    }

    fn embed(&self, table: &WeightView<'w>, tokens: &[u32], out: &mut [f32]) {
        embed(table, tokens, out);
    }

    fn rms_norm(&self, x: &[f32], weight: &WeightView<'w>, eps: f32, out: &mut [f32]) {
        rms_norm(x, weight, eps, out);
    }

    fn matmul(
        &self,
        weight: &WeightView<'w>,
        x: &[f32],
        out: &mut [f32],
        _scratch: &mut [f32],
        _par: &dyn Parallel,
    ) {
        matmul(weight, x, out);
    }

    fn add_bias(&self, x: &mut [f32], bias: &WeightView<'w>) {
        add_bias(x, bias);
    }

    fn head_norm(&self, x: &mut [f32], weight: &WeightView<'w>, eps: f32) {
        head_norm(x, weight, eps);
    }

    fn rope(
        &self,
        x: &mut [f32],
        n_heads: usize,
        config: &ModelConfig,
        at: Positions,
        _par: &dyn Parallel,
    ) {
        rope(x, n_heads, config, at.first);
    }

    fn attention(
        &self,
        q: &[f32],
        kv: &dyn KvCache,
        layer: usize,
        config: &ModelConfig,
        at: Positions,
        scores: &mut [f32],
        out: &mut [f32],
        _par: &dyn Parallel,
    ) {
        attention(q, kv, layer, config, at.first, scores, out);
    }

    fn swiglu(&self, gate: &mut [f32], up: &[f32], _par: &dyn Parallel) {
        swiglu(gate, up);
    }

    fn add(&self, x: &mut [f32], y: &[f32]) {
        add(x, y);
    }
}
