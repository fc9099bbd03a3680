//! [`Cpu`]: the [`Backend`] of every CPU, generic over its microkernels.

use alloc::borrow::Cow;

use super::codes::CodeFormat;
use super::kernels::CpuKernels;
use super::matmul::{Packed, matmul};
use super::panel::{F32Panels, PanelLayout, panel_count};
use super::split::{SharedMut, share};
use crate::DType;
use crate::backend::reference;
use crate::backend::{Backend, Holding, Parallel, Positions, PrepareError};
use crate::kv::KvCache;
use crate::model::{ModelConfig, WeightRole, WeightView};
use crate::numerics::ActivationFormat;

/// Whether weights of `dtype` get integer kernels (others are dequantized to f32 panels).
pub const fn has_fast_path(dtype: DType) -> bool {
    CodeFormat::of(dtype).is_some()
}

/// How a weight is packed: matrices of formats with codes as code panels, other matrices
/// as f32 panels; vectors and the embedding table not at all (`None`).
enum Packing {
    Codes(PanelLayout),
    F32(ActivationFormat),
}

fn packing_of(view: &WeightView<'_>, role: WeightRole) -> Option<Packing> {
    if role != WeightRole::Matrix {
        return None;
    }
    Some(match CodeFormat::of(view.dtype) {
        Some(format) => Packing::Codes(PanelLayout {
            format,
            cols: view.cols,
        }),
        None => Packing::F32(ActivationFormat::for_weights(view.dtype)),
    })
}

/// A CPU backend over the microkernels `K`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu<K> {
    /// The microkernels every hot operation runs on; the driver around them is shared.
    pub kernels: K,
}

/// A weight for [`Cpu`]: the file's view (read by element-wise ops and the embedding
/// lookup), and for matrices their repacked panels.
pub struct CpuWeight<'w> {
    /// The weight as the file stores it; kept for matrices too, as [`Backend::stored`]
    /// hands it out.
    pub view: WeightView<'w>,
    /// The panels [`matmul`](fn@matmul) reads, for matrices; `None` for vectors and the
    /// embedding table.
    pub packed: Option<Packed<'w>>,
}

/// Bumped whenever the bytes of a packed layout change (what [`super::pack_codes`] or
/// [`F32Panels`] write), so packed-weight caches of an older layout are rebuilt rather than
/// misread.
pub const PACKED_LAYOUT_VERSION: u32 = 2;

impl<K: CpuKernels> Cpu<K> {
    /// The backend that runs on `kernels`.
    pub fn new(kernels: K) -> Self {
        Cpu { kernels }
    }

    /// What a packed-weight cache of this backend must match: the kernels (their packers
    /// may lay panels out their own way) and the layout version.
    pub fn packing(&self) -> alloc::string::String {
        alloc::format!("cpu-{}-v{PACKED_LAYOUT_VERSION}", self.kernels.name())
    }

    /// [`Backend::prepare`] with the packed data read in place from `blob` (what
    /// [`Packed::bytes`] gave for the same weight and backend), or `None` where `blob` does
    /// not have the size the weight's layout needs. Weights kept as views take an empty
    /// blob.
    pub fn prepare_cached<'w>(
        &self,
        view: WeightView<'w>,
        role: WeightRole,
        blob: &'w [u8],
    ) -> Option<CpuWeight<'w>> {
        let packed = match packing_of(&view, role) {
            Some(Packing::Codes(layout)) => {
                let len = panel_count(view.rows).checked_mul(layout.panel_bytes())?;
                if blob.len() != len {
                    return None;
                }
                Some(Packed::Codes {
                    layout,
                    rows: view.rows,
                    data: Cow::Borrowed(blob),
                })
            }
            Some(Packing::F32(activations)) => Some(Packed::F32 {
                activations,
                panels: F32Panels::from_bytes(view.rows, view.cols, blob)?,
            }),
            None if blob.is_empty() => None,
            None => return None,
        };
        Some(CpuWeight { view, packed })
    }
}

impl<'w, K: CpuKernels> Backend<'w> for Cpu<K> {
    type Weight = CpuWeight<'w>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn prepare(
        &self,
        view: WeightView<'w>,
        role: WeightRole,
    ) -> Result<CpuWeight<'w>, PrepareError> {
        let packed = packing_of(&view, role).map(|packing| match packing {
            Packing::Codes(layout) => Packed::Codes {
                layout,
                rows: view.rows,
                data: Cow::Owned(self.kernels.pack_codes(&view, layout)),
            },
            Packing::F32(activations) => Packed::F32 {
                activations,
                panels: F32Panels::pack(&view),
            },
        });
        Ok(CpuWeight { view, packed })
    }

    fn stored(&self, weight: &CpuWeight<'w>) -> WeightView<'w> {
        weight.view
    }

    fn holding(&self, weight: &CpuWeight<'w>) -> Holding {
        match &weight.packed {
            None => Holding::File,
            Some(p) if p.is_owned() => Holding::Dram(p.bytes().len() as u64),
            Some(p) => Holding::Cached(p.bytes().len() as u64),
        }
    }

    fn embed(&self, table: &CpuWeight<'w>, tokens: &[u32], out: &mut [f32]) {
        reference::embed(&table.view, tokens, out);
    }

    fn rms_norm(&self, x: &[f32], weight: &CpuWeight<'w>, eps: f32, out: &mut [f32]) {
        reference::rms_norm(x, &weight.view, eps, out);
    }

    fn matmul(
        &self,
        weight: &CpuWeight<'w>,
        x: &[f32],
        out: &mut [f32],
        scratch: &mut [f32],
        par: &dyn Parallel,
    ) {
        match &weight.packed {
            Some(packed) => matmul(&self.kernels, packed, x, out, scratch, par),
            // Only matrices are multiplied, and every matrix is packed at `prepare`.
            None => reference::matmul(&weight.view, x, out),
        }
    }

    fn add_bias(&self, x: &mut [f32], bias: &CpuWeight<'w>) {
        reference::add_bias(x, &bias.view);
    }

    fn head_norm(&self, x: &mut [f32], weight: &CpuWeight<'w>, eps: f32) {
        reference::head_norm(x, &weight.view, eps);
    }

    fn rope(
        &self,
        x: &mut [f32],
        n_heads: usize,
        config: &ModelConfig,
        at: Positions,
        par: &dyn Parallel,
    ) {
        super::rope::rope(x, n_heads, config, at.first, par);
    }

    fn attention(
        &self,
        q: &[f32],
        kv: &dyn KvCache,
        layer: usize,
        config: &ModelConfig,
        at: Positions,
        _scores: &mut [f32],
        out: &mut [f32],
        par: &dyn Parallel,
    ) {
        super::attention::attention(&self.kernels, q, kv, layer, config, at.first, out, par);
    }

    fn swiglu(&self, gate: &mut [f32], up: &[f32], par: &dyn Parallel) {
        // In pieces of whole cache lines, spread over the threads.
        const PIECE: usize = 64;
        let pieces = gate.len().div_ceil(PIECE);
        let gate = SharedMut::new(gate);
        par.run(par.n_threads().max(1), &|i| {
            let r = share(pieces, par, i);
            let (start, end) = (r.start * PIECE, (r.end * PIECE).min(up.len()));
            if start < end {
                // SAFETY: the threads' shares of pieces are disjoint.
                let g = unsafe { gate.range(start..end) };
                self.kernels.swiglu(g, &up[start..end]);
            }
        });
    }

    fn add(&self, x: &mut [f32], y: &[f32]) {
        reference::add(x, y);
    }
}
