//! The weights of a model: which tensors exist, what shape each must have, and how a backend
//! turns each into its own prepared form at load.

use core::fmt;
use core::fmt::Write as _;

use super::config::ModelConfig;
use crate::DType;
use crate::gguf::{Gguf, TensorInfo};

/// A weight as the file stores it: `rows` rows of `cols` elements each, row-major, in `dtype`
/// blocks (ggml's `ne[0]` is `cols`). One-dimensional tensors are one row.
#[derive(Clone, Copy, Debug)]
pub struct WeightView<'a> {
    /// The tensor's name in the file, e.g. `blk.0.attn_q.weight`.
    pub name: &'a str,
    /// How the elements are encoded.
    pub dtype: DType,
    /// Number of rows (ggml's `ne[1]`); 1 for a one-dimensional tensor.
    pub rows: usize,
    /// Elements per row (ggml's `ne[0]`); a whole number of `dtype` blocks.
    pub cols: usize,
    /// The tensor's bytes in the file: exactly `rows` rows of [`WeightView::row_bytes`].
    pub data: &'a [u8],
}

impl<'a> WeightView<'a> {
    /// Bytes of one row. `cols` is a whole number of blocks (the GGUF reader checks it).
    pub fn row_bytes(&self) -> usize {
        self.cols / self.dtype.block_len() * self.dtype.block_bytes()
    }

    /// The bytes of row `r`, or `None` past the last row.
    pub fn row(&self, r: usize) -> Option<&'a [u8]> {
        let n = self.row_bytes();
        self.data
            .get(r.checked_mul(n)?..r.checked_add(1)?.checked_mul(n)?)
    }

    /// Elements in the whole tensor.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a weight is used for, so a backend can pick a layout: matrices are multiplied,
/// vectors (norms, biases) are read element-wise, the embedding table is read one row at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightRole {
    /// Multiplied by activations: the projections and the output head.
    Matrix,
    /// Read element-wise: norm weights and biases.
    Vector,
    /// Read one row per token: the token embedding table.
    Embedding,
}

/// A tensor of one transformer block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerTensor {
    /// RMS norm weight before attention, `n_embd` elements.
    AttnNorm,
    /// Query projection, `n_embd` inputs to `n_head * head_dim` outputs.
    Q,
    /// Key projection, `n_embd` inputs to `n_head_kv * head_dim` outputs.
    K,
    /// Value projection, shaped as the key projection.
    V,
    /// Bias added to the query projection (models with `qkv_bias` only).
    QBias,
    /// Bias added to the key projection (models with `qkv_bias` only).
    KBias,
    /// Bias added to the value projection (models with `qkv_bias` only).
    VBias,
    /// RMS norm weight of each query head before RoPE, `head_dim` elements (models with
    /// `qk_norm` only).
    QNorm,
    /// RMS norm weight of each key head before RoPE, `head_dim` elements (models with
    /// `qk_norm` only).
    KNorm,
    /// Attention output projection, `n_head * head_dim` inputs to `n_embd` outputs.
    Output,
    /// RMS norm weight before the feed-forward block, `n_embd` elements.
    FfnNorm,
    /// Feed-forward gate projection, `n_embd` to `n_ff`; SiLU of it scales `Up`'s output.
    Gate,
    /// Feed-forward up projection, `n_embd` to `n_ff`.
    Up,
    /// Feed-forward down projection, `n_ff` to `n_embd`.
    Down,
}

impl LayerTensor {
    /// The tensor's name after `blk.N.` in llama.cpp's naming.
    pub const fn gguf_name(self) -> &'static str {
        match self {
            LayerTensor::AttnNorm => "attn_norm.weight",
            LayerTensor::Q => "attn_q.weight",
            LayerTensor::K => "attn_k.weight",
            LayerTensor::V => "attn_v.weight",
            LayerTensor::QBias => "attn_q.bias",
            LayerTensor::KBias => "attn_k.bias",
            LayerTensor::VBias => "attn_v.bias",
            LayerTensor::QNorm => "attn_q_norm.weight",
            LayerTensor::KNorm => "attn_k_norm.weight",
            LayerTensor::Output => "attn_output.weight",
            LayerTensor::FfnNorm => "ffn_norm.weight",
            LayerTensor::Gate => "ffn_gate.weight",
            LayerTensor::Up => "ffn_up.weight",
            LayerTensor::Down => "ffn_down.weight",
        }
    }

    /// Expected `[cols, rows]` and role for this model, or `None` when the model lacks it.
    fn expected(self, c: &ModelConfig) -> Option<([usize; 2], WeightRole)> {
        use WeightRole::{Matrix, Vector};
        let (shape, role) = match self {
            LayerTensor::AttnNorm | LayerTensor::FfnNorm => ([c.n_embd, 1], Vector),
            LayerTensor::Q => ([c.n_embd, c.q_width()], Matrix),
            LayerTensor::K | LayerTensor::V => ([c.n_embd, c.kv_width()], Matrix),
            LayerTensor::QBias if c.qkv_bias => ([c.q_width(), 1], Vector),
            LayerTensor::KBias | LayerTensor::VBias if c.qkv_bias => ([c.kv_width(), 1], Vector),
            LayerTensor::QNorm | LayerTensor::KNorm if c.qk_norm => ([c.head_dim, 1], Vector),
            LayerTensor::Output => ([c.q_width(), c.n_embd], Matrix),
            LayerTensor::Gate | LayerTensor::Up => ([c.n_embd, c.n_ff], Matrix),
            LayerTensor::Down => ([c.n_ff, c.n_embd], Matrix),
            _ => return None,
        };
        Some((shape, role))
    }

    const ALL: [LayerTensor; 14] = [
        LayerTensor::AttnNorm,
        LayerTensor::Q,
        LayerTensor::K,
        LayerTensor::V,
        LayerTensor::QBias,
        LayerTensor::KBias,
        LayerTensor::VBias,
        LayerTensor::QNorm,
        LayerTensor::KNorm,
        LayerTensor::Output,
        LayerTensor::FfnNorm,
        LayerTensor::Gate,
        LayerTensor::Up,
        LayerTensor::Down,
    ];
}

/// The prepared weights of one transformer block; optional tensors are present exactly when
/// the configuration asks for them.
#[derive(Debug)]
pub struct LayerWeights<W> {
    tensors: [Option<W>; 14],
}

impl<W> LayerWeights<W> {
    /// The prepared tensor `t` of this block, or `None` when the model has no such tensor.
    pub fn get(&self, t: LayerTensor) -> Option<&W> {
        self.tensors[t as usize].as_ref()
    }
}

/// Names every weight of the model, for plans and backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightId {
    /// The token embedding table (`token_embd.weight`), `n_vocab` rows of `n_embd`.
    Embedding,
    /// The RMS norm weight after the last block (`output_norm.weight`).
    OutputNorm,
    /// The output head: `output.weight`, or the embedding table when they are tied.
    OutputHead,
    /// Tensor `t` of block `n` (`blk.n.…` in the file).
    Layer(u16, LayerTensor),
}

/// Where prepared per-layer weights are kept: a `Vec` with `alloc`, a `heapless::Vec` without.
pub trait LayerStore<W>: AsRef<[LayerWeights<W>]> {
    /// Appends a layer, or hands it back when the store is full.
    fn try_push(&mut self, layer: LayerWeights<W>) -> Result<(), LayerWeights<W>>;
}

impl<W, const N: usize> LayerStore<W> for heapless::Vec<LayerWeights<W>, N> {
    fn try_push(&mut self, layer: LayerWeights<W>) -> Result<(), LayerWeights<W>> {
        self.push(layer)
    }
}

#[cfg(feature = "alloc")]
impl<W> LayerStore<W> for alloc::vec::Vec<LayerWeights<W>> {
    fn try_push(&mut self, layer: LayerWeights<W>) -> Result<(), LayerWeights<W>> {
        self.push(layer);
        Ok(())
    }
}

/// A tensor name formatted without allocating (`blk.123.attn_output.weight` fits easily).
pub type TensorName = heapless::String<64>;

/// Why a model's weights could not be loaded.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadError<E> {
    /// A tensor the configuration calls for is absent; holds its name.
    MissingTensor(TensorName),
    /// A tensor's shape differs from what the configuration implies.
    ShapeMismatch {
        /// The tensor's name.
        name: TensorName,
        /// The shape the configuration implies, `[cols, rows]` in ggml order (rows 1 for a
        /// vector).
        expected: [usize; 2],
        /// The dimensions the file states, in ggml order; unused ones are 1.
        found: [u64; 4],
    },
    /// The layer store ran out of room (a fixed-capacity store on a no-alloc target).
    TooManyLayers {
        /// Layers the store could hold.
        capacity: usize,
    },
    /// The backend could not prepare a weight.
    Prepare {
        /// The tensor's name.
        name: TensorName,
        /// The backend's error.
        error: E,
    },
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for LoadError<E> {}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::MissingTensor(name) => write!(f, "model lacks tensor `{name}`"),
            LoadError::ShapeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, expected {expected:?} from the metadata"
            ),
            LoadError::TooManyLayers { capacity } => {
                write!(f, "model has more layers than the store holds ({capacity})")
            }
            LoadError::Prepare { name, error } => write!(f, "cannot prepare `{name}`: {error}"),
        }
    }
}

/// A model: its configuration and every weight, prepared by a backend.
#[derive(Debug)]
pub struct Model<W, L> {
    /// The hyperparameters the weights were checked against.
    pub config: ModelConfig,
    embedding: W,
    output_norm: W,
    output_head: W,
    /// True when the output head is the embedding table (no `output.weight`).
    pub tied_output: bool,
    layers: L,
}

impl<W, L: LayerStore<W>> Model<W, L> {
    /// Finds, checks and prepares every weight. `prepare` is the backend's hook; `layers` an
    /// empty store.
    pub fn load<'a, E>(
        gguf: &Gguf<'a>,
        config: ModelConfig,
        mut layers: L,
        mut prepare: impl FnMut(WeightView<'a>, WeightRole) -> Result<W, E>,
    ) -> Result<Self, LoadError<E>> {
        let c = &config;
        let mut take = |name: &TensorName, shape: [usize; 2], role| {
            let view = find(gguf, name, shape)?;
            prepare(view, role).map_err(|error| LoadError::Prepare {
                name: name.clone(),
                error,
            })
        };
        let embd_name = tensor_name(format_args!("token_embd.weight"));
        let vocab_shape = [c.n_embd, c.n_vocab];
        let embedding = take(&embd_name, vocab_shape, WeightRole::Embedding)?;
        let output_norm = take(
            &tensor_name(format_args!("output_norm.weight")),
            [c.n_embd, 1],
            WeightRole::Vector,
        )?;
        let head_name = tensor_name(format_args!("output.weight"));
        let tied_output = gguf.tensor(&head_name).is_none();
        let head_source = if tied_output { &embd_name } else { &head_name };
        let output_head = take(head_source, vocab_shape, WeightRole::Matrix)?;

        for layer in 0..c.n_layer {
            let mut tensors: [Option<W>; 14] = Default::default();
            for t in LayerTensor::ALL {
                if let Some((shape, role)) = t.expected(c) {
                    let name = tensor_name(format_args!("blk.{layer}.{}", t.gguf_name()));
                    tensors[t as usize] = Some(take(&name, shape, role)?);
                }
            }
            layers
                .try_push(LayerWeights { tensors })
                .map_err(|_| LoadError::TooManyLayers { capacity: layer })?;
        }
        Ok(Model {
            config,
            embedding,
            output_norm,
            output_head,
            tied_output,
            layers,
        })
    }

    /// Every prepared weight, in the order [`Model::load`] prepared them: the embedding
    /// table, the output norm, the output head, then each layer's tensors in
    /// the order [`LayerTensor`] declares them. A cache of prepared weights follows this order.
    pub fn weights(&self) -> impl Iterator<Item = &W> {
        let layers = self.layers.as_ref().iter();
        [&self.embedding, &self.output_norm, &self.output_head]
            .into_iter()
            .chain(layers.flat_map(|l| LayerTensor::ALL.iter().filter_map(|&t| l.get(t))))
    }

    /// The prepared weight `id`, or `None` when this model has no such tensor.
    pub fn weight(&self, id: WeightId) -> Option<&W> {
        match id {
            WeightId::Embedding => Some(&self.embedding),
            WeightId::OutputNorm => Some(&self.output_norm),
            WeightId::OutputHead => Some(&self.output_head),
            WeightId::Layer(l, t) => self.layers.as_ref().get(l as usize)?.get(t),
        }
    }
}

fn tensor_name(args: fmt::Arguments<'_>) -> TensorName {
    let mut name = TensorName::new();
    // Names longer than 64 bytes cannot be in a valid model; a cut name is then reported missing.
    let _ = name.write_fmt(args);
    name
}

/// Looks up a tensor and checks its shape against `[cols, rows]` (rows 1 for vectors).
fn find<'a, E>(
    gguf: &Gguf<'a>,
    name: &TensorName,
    [cols, rows]: [usize; 2],
) -> Result<WeightView<'a>, LoadError<E>> {
    let info: TensorInfo<'a> = gguf
        .tensor(name)
        .ok_or_else(|| LoadError::MissingTensor(name.clone()))?;
    let vector = rows == 1;
    let shape_ok = if vector {
        info.n_dims == 1 && info.dims[0] == cols as u64
    } else {
        info.n_dims == 2 && info.dims[0] == cols as u64 && info.dims[1] == rows as u64
    };
    if !shape_ok {
        return Err(LoadError::ShapeMismatch {
            name: name.clone(),
            expected: [cols, rows],
            found: info.dims,
        });
    }
    Ok(WeightView {
        name: info.name,
        dtype: info.dtype,
        rows,
        cols,
        data: info.data,
    })
}
