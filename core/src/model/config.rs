//! Hyperparameters of a llama-family model, read from GGUF metadata and checked for sense.

use core::fmt;

use crate::gguf::{Gguf, Value};

/// The architectures Tern plans for. Each differs from `llama` in a few well-defined places,
/// which the flags of [`ModelConfig`] carry, so the plan never matches on the architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Meta's llama and the models that share its layout (TinyLlama, the llama2.c stories).
    Llama,
    /// Qwen2 and Qwen2.5: biases on the q, k and v projections, half-split RoPE.
    Qwen2,
    /// Qwen3: an RMS norm on each query and key head before RoPE, half-split RoPE.
    Qwen3,
}

impl Arch {
    /// The value of `general.architecture`, which also prefixes every hyperparameter key.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    fn from_name(name: &str) -> Option<Arch> {
        [Arch::Llama, Arch::Qwen2, Arch::Qwen3]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// How RoPE pairs the dimensions of a head, in llama.cpp's two conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimensions (2i, 2i+1) rotate together (`LLAMA_ROPE_TYPE_NORM`, llama2.c).
    AdjacentPairs,
    /// Dimensions (i, i + d/2) rotate together (`LLAMA_ROPE_TYPE_NEOX`, HF `rotate_half`).
    HalfSplit,
}

/// Everything the plan needs to know about a model's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    /// Which architecture's keys the file uses; its differences are in the flags below.
    pub arch: Arch,
    /// Tokens in the vocabulary: rows of the embedding table and of the logits.
    pub n_vocab: usize,
    /// Width of the residual stream (the embedding length).
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Query heads per layer.
    pub n_head: usize,
    /// Key/value heads per layer; divides `n_head` (fewer under grouped-query attention).
    pub n_head_kv: usize,
    /// Elements per head, even and at most [`limits::MAX_HEAD_DIM`]; `n_embd / n_head` unless
    /// the file says otherwise.
    pub head_dim: usize,
    /// Width of the feed-forward hidden layer.
    pub n_ff: usize,
    /// The context the model was trained for; the default and the upper bound of a session.
    pub n_ctx_train: usize,
    /// Epsilon added to the mean square in every RMS norm.
    pub rms_eps: f32,
    /// RoPE base frequency (`rope.freq_base`, 10000 when absent).
    pub rope_theta: f32,
    /// Multiplies positions before rotation (1 / linear scaling factor).
    pub rope_freq_scale: f32,
    /// Leading dimensions of each head that RoPE rotates (the rest pass through).
    pub rope_dim: usize,
    /// How RoPE pairs the dimensions it rotates, fixed by the architecture.
    pub rope_style: RopeStyle,
    /// q, k and v projections carry a bias (`qwen2`).
    pub qkv_bias: bool,
    /// Each head of q and k is RMS-normalised before RoPE (`qwen3`).
    pub qk_norm: bool,
}

/// The upper bounds Tern accepts, far above any real model but low enough that the sizes
/// computed from them cannot overflow.
pub mod limits {
    /// Largest embedding length and feed-forward width.
    pub const MAX_DIM: usize = 1 << 20;
    /// Largest number of blocks.
    pub const MAX_LAYERS: usize = 1024;
    /// Largest number of query or key/value heads.
    pub const MAX_HEADS: usize = 4096;
    /// Largest head dimension; also sizes the stack buffers of RoPE and attention.
    pub const MAX_HEAD_DIM: usize = 1024;
    /// Largest vocabulary.
    pub const MAX_VOCAB: usize = 1 << 22;
    /// Largest trained context length.
    pub const MAX_CTX: usize = 1 << 24;
}

/// A problem with a model's metadata.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError<'a> {
    /// A required key is absent; holds the full key, e.g. `llama.block_count`.
    MissingKey(KeyBuf),
    /// A tensor needed to infer a hyperparameter is absent; holds its name.
    MissingTensor(&'static str),
    /// The key exists under the architecture's prefix but has the wrong type or range.
    BadValue {
        /// The key as the file stores it.
        key: &'a str,
        /// What is wrong with its value, in words.
        why: &'static str,
    },
    /// `general.architecture` names an architecture Tern does not run; holds the name.
    UnsupportedArchitecture(&'a str),
    /// Two hyperparameters contradict each other.
    Inconsistent(&'static str),
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingKey(key) => write!(f, "model metadata lacks `{key}`"),
            ConfigError::MissingTensor(name) => write!(f, "model lacks tensor `{name}`"),
            ConfigError::BadValue { key, why } => write!(f, "model metadata `{key}`: {why}"),
            ConfigError::UnsupportedArchitecture(name) => write!(
                f,
                "unsupported architecture `{name}` (Tern runs llama, qwen2 and qwen3)"
            ),
            ConfigError::Inconsistent(why) => write!(f, "inconsistent model metadata: {why}"),
        }
    }
}

/// Reads `{arch}.{suffix}` keys without allocating: the key is formatted into a fixed buffer.
struct Keys<'g, 'a> {
    gguf: &'g Gguf<'a>,
    arch: Arch,
}

/// A metadata key, formatted without allocating.
pub type KeyBuf = heapless::String<96>;

impl<'a> Keys<'_, 'a> {
    fn key(&self, suffix: &str) -> KeyBuf {
        let mut key = KeyBuf::new();
        // The longest architecture name plus the longest suffix used here fit in 96 bytes.
        let _ = key.push_str(self.arch.name());
        let _ = key.push_str(".");
        let _ = key.push_str(suffix);
        key
    }

    fn lookup(&self, suffix: &str) -> Option<(Value<'a>, &'a str)> {
        let key = self.key(suffix);
        // Return the key as stored in the file, so errors can borrow it for 'a.
        self.gguf
            .metadata()
            .find(|(k, _)| *k == key.as_str())
            .map(|(k, v)| (v, k))
    }

    fn count(&self, suffix: &str, max: usize) -> Result<Option<usize>, ConfigError<'a>> {
        let Some((value, key)) = self.lookup(suffix) else {
            return Ok(None);
        };
        match value.as_u64() {
            Some(0) => Err(ConfigError::BadValue {
                key,
                why: "must be positive",
            }),
            Some(n) if n as u128 <= max as u128 => Ok(Some(n as usize)),
            Some(_) => Err(ConfigError::BadValue {
                key,
                why: "is absurdly large",
            }),
            None => Err(ConfigError::BadValue {
                key,
                why: "is not a non-negative integer",
            }),
        }
    }

    fn required_count(&self, suffix: &str, max: usize) -> Result<usize, ConfigError<'a>> {
        self.count(suffix, max)?
            .ok_or_else(|| ConfigError::MissingKey(self.key(suffix)))
    }

    fn float(&self, suffix: &str) -> Result<Option<f32>, ConfigError<'a>> {
        let Some((value, key)) = self.lookup(suffix) else {
            return Ok(None);
        };
        match value.as_f32() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(ConfigError::BadValue {
                key,
                why: "must be a positive finite number",
            }),
        }
    }
}

impl ModelConfig {
    /// Reads and checks the hyperparameters. `n_vocab` comes from `{arch}.vocab_size`, else
    /// from the token list, else from the embedding table's shape.
    pub fn from_gguf<'a>(gguf: &Gguf<'a>) -> Result<ModelConfig, ConfigError<'a>> {
        let arch_name = gguf
            .get("general.architecture")
            .ok_or_else(|| {
                ConfigError::MissingKey(
                    KeyBuf::try_from("general.architecture").unwrap_or_default(),
                )
            })?
            .as_str()
            .ok_or(ConfigError::BadValue {
                key: "general.architecture",
                why: "is not a string",
            })?;
        let arch =
            Arch::from_name(arch_name).ok_or(ConfigError::UnsupportedArchitecture(arch_name))?;
        let keys = Keys { gguf, arch };
        use limits::*;

        let n_embd = keys.required_count("embedding_length", MAX_DIM)?;
        let n_layer = keys.required_count("block_count", MAX_LAYERS)?;
        let n_ff = keys.required_count("feed_forward_length", MAX_DIM)?;
        let n_head = keys.required_count("attention.head_count", MAX_HEADS)?;
        let n_head_kv = keys
            .count("attention.head_count_kv", MAX_HEADS)?
            .unwrap_or(n_head);
        let head_dim = match keys.count("attention.key_length", MAX_HEAD_DIM)? {
            Some(d) => d,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(ConfigError::Inconsistent(
                    "head_count does not divide embedding_length and key_length is absent",
                ));
            }
        };
        if head_dim > MAX_HEAD_DIM || head_dim % 2 != 0 {
            return Err(ConfigError::Inconsistent(
                "head dimension must be even and at most 1024",
            ));
        }
        if let Some(v) = keys.count("attention.value_length", MAX_HEAD_DIM)?
            && v != head_dim
        {
            return Err(ConfigError::Inconsistent(
                "value_length differs from key_length (unsupported)",
            ));
        }
        if n_head % n_head_kv != 0 {
            return Err(ConfigError::Inconsistent(
                "head_count is not a multiple of head_count_kv",
            ));
        }
        let n_ctx_train = keys.count("context_length", MAX_CTX)?.unwrap_or(2048);
        let rms_eps = keys
            .float("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| ConfigError::MissingKey(keys.key("attention.layer_norm_rms_epsilon")))?;
        let rope_theta = keys.float("rope.freq_base")?.unwrap_or(10_000.0);
        let rope_dim = keys
            .count("rope.dimension_count", MAX_HEAD_DIM)?
            .unwrap_or(head_dim);
        if rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(ConfigError::Inconsistent(
                "rope.dimension_count must be even and at most the head dimension",
            ));
        }
        let rope_freq_scale = rope_freq_scale(&keys)?;
        let n_vocab = match keys.count("vocab_size", MAX_VOCAB)? {
            Some(n) => n,
            None => vocab_from_tensors(gguf)?,
        };

        let (rope_style, qkv_bias, qk_norm) = match arch {
            Arch::Llama => (RopeStyle::AdjacentPairs, false, false),
            Arch::Qwen2 => (RopeStyle::HalfSplit, true, false),
            Arch::Qwen3 => (RopeStyle::HalfSplit, false, true),
        };
        Ok(ModelConfig {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_ctx_train,
            rms_eps,
            rope_theta,
            rope_freq_scale,
            rope_dim,
            rope_style,
            qkv_bias,
            qk_norm,
        })
    }

    /// Width of the concatenated query heads.
    pub const fn q_width(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of the concatenated key (or value) heads.
    pub const fn kv_width(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    /// Query heads that share one key/value head (grouped-query attention).
    pub const fn group_size(&self) -> usize {
        self.n_head / self.n_head_kv
    }
}

fn rope_freq_scale<'a>(keys: &Keys<'_, 'a>) -> Result<f32, ConfigError<'a>> {
    let kind = keys
        .lookup("rope.scaling.type")
        .map(|(v, k)| (v.as_str(), k));
    let factor = keys.float("rope.scaling.factor")?;
    match (kind, factor) {
        (None | Some((Some("none"), _)), _) => Ok(1.0),
        (Some((Some("linear"), _)), Some(factor)) => Ok(1.0 / factor),
        (Some((Some("linear"), _)), None) => Ok(1.0),
        (Some((_, key)), _) => Err(ConfigError::BadValue {
            key,
            why: "unsupported RoPE scaling (Tern supports none and linear)",
        }),
    }
}

fn vocab_from_tensors<'a>(gguf: &Gguf<'a>) -> Result<usize, ConfigError<'a>> {
    if let Some(tokens) = gguf.get("tokenizer.ggml.tokens").and_then(|v| v.as_array()) {
        if !tokens.is_empty() && tokens.len() <= limits::MAX_VOCAB {
            return Ok(tokens.len());
        }
    }
    let embd = gguf
        .tensor("token_embd.weight")
        .ok_or(ConfigError::MissingTensor("token_embd.weight"))?;
    match usize::try_from(embd.dims[1]) {
        Ok(n) if n > 0 && n <= limits::MAX_VOCAB => Ok(n),
        _ => Err(ConfigError::Inconsistent(
            "vocabulary size is zero or absurd",
        )),
    }
}
