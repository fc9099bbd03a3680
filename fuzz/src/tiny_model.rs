//! Tiny models of every architecture Tern runs, written as GGUF: the valid seeds of the file
//! fuzz targets, and the base that the hand-made bad files change one thing of.
//!
//! Real weights would make seeds too large for a fuzzer to mutate quickly, so the models are
//! as small as the formats allow (rows of one 32-element block, one layer, a vocabulary of a
//! few dozen tokens) with seeded random weights.

use tern_core::DType;
use tern_core::quant::quantize;
use tern_core::sample::Xoshiro256;
use tern_core::testing::gguf_writer::{GgufWriter, Meta, Tensor};

/// The shape and formats of a tiny model.
#[derive(Clone, Copy, Debug)]
pub struct TinySpec {
    /// `llama`, `qwen2` or `qwen3`.
    pub arch: &'static str,
    /// Format of the matrices and the embedding table (norms and biases stay F32).
    pub dtype: DType,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_layer: usize,
    /// Byte-level BPE (`gpt2`) instead of SentencePiece (`llama`).
    pub bpe: bool,
    /// Without `output.weight`: the head is the embedding table.
    pub tied: bool,
    /// `attention.key_length`, when heads are not `n_embd / n_head` wide.
    pub key_length: Option<usize>,
    pub context_length: u32,
    pub seed: u64,
}

impl TinySpec {
    pub const fn llama(dtype: DType) -> TinySpec {
        TinySpec {
            arch: "llama",
            dtype,
            n_embd: 32,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 64,
            n_layer: 1,
            bpe: false,
            tied: false,
            key_length: None,
            context_length: 64,
            seed: 1,
        }
    }

    /// The width of one head: `key_length` where set, else 16 for qwen3 (heads x head_dim
    /// != n_embd, as in the real ones), else `n_embd / n_head`.
    pub fn head_dim(&self) -> usize {
        match self.key_length {
            Some(d) => d,
            None if self.arch == "qwen3" => 16,
            None => self.n_embd / self.n_head,
        }
    }
}

/// SentencePiece pieces: specials, the space mark, letters and a few merged words.
const SPM_TOKENS: &[&str] = &[
    "<unk>",
    "<s>",
    "</s>",
    "\u{2581}",
    "a",
    "e",
    "h",
    "i",
    "n",
    "o",
    "s",
    "t",
    "u",
    "w",
    "y",
    "\u{2581}t",
    "he",
    "\u{2581}the",
    "\u{2581}a",
    "in",
    "on",
    "\u{2581}was",
    "<0x0A>",
    "<0x2E>",
    "<0x2C>",
];

/// Byte-level pieces: `Ġ` is the space byte; merges build a few words.
const BPE_TOKENS: &[&str] = &[
    "a",
    "e",
    "h",
    "i",
    "n",
    "o",
    "s",
    "t",
    "u",
    "w",
    "y",
    ".",
    ",",
    "Ġ",
    "Ċ",
    "Ġt",
    "he",
    "Ġthe",
    "Ġa",
    "in",
    "on",
    "Ġw",
    "Ġwas",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
];
const BPE_MERGES: &[&str] = &["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "o n", "Ġ w", "Ġw as"];

/// The tokenizer keys and the vocabulary size.
fn tokenizer(spec: &TinySpec, w: &mut GgufWriter) -> usize {
    if spec.bpe {
        let n = BPE_TOKENS.len();
        let control = n - 3;
        w.set("tokenizer.ggml.model", Meta::str("gpt2"));
        w.set("tokenizer.ggml.pre", Meta::str("qwen2"));
        w.set("tokenizer.ggml.tokens", Meta::strings(BPE_TOKENS));
        let types = (0..n).map(|i| if i >= control { 3 } else { 1 });
        w.set("tokenizer.ggml.token_type", Meta::i32s(types));
        w.set("tokenizer.ggml.merges", Meta::strings(BPE_MERGES));
        w.set("tokenizer.ggml.eos_token_id", Meta::U32(control as u32));
        w.set("tokenizer.ggml.bos_token_id", Meta::U32(control as u32));
        w.set("tokenizer.ggml.add_bos_token", Meta::Bool(false));
        n
    } else {
        let n = SPM_TOKENS.len();
        w.set("tokenizer.ggml.model", Meta::str("llama"));
        w.set("tokenizer.ggml.tokens", Meta::strings(SPM_TOKENS));
        let scores = (0..n).map(|i| -(i as f32));
        w.set("tokenizer.ggml.scores", Meta::f32s(scores));
        let types = SPM_TOKENS.iter().enumerate().map(|(i, t)| match i {
            0 => 2,
            1 | 2 => 3,
            _ if t.starts_with("<0x") => 6,
            _ => 1,
        });
        w.set("tokenizer.ggml.token_type", Meta::i32s(types));
        w.set("tokenizer.ggml.bos_token_id", Meta::U32(1));
        w.set("tokenizer.ggml.eos_token_id", Meta::U32(2));
        w.set("tokenizer.ggml.unknown_token_id", Meta::U32(0));
        n
    }
}

/// The model as a writer, so that callers can break one thing before writing it out.
pub fn tiny_model(spec: &TinySpec) -> GgufWriter {
    let mut w = GgufWriter::default();
    let a = spec.arch;
    let head_dim = spec.head_dim();
    w.set("general.architecture", Meta::str(a));
    w.set("general.name", Meta::Str(format!("tiny {a}")));
    w.set(
        &format!("{a}.context_length"),
        Meta::U32(spec.context_length),
    );
    w.set(
        &format!("{a}.embedding_length"),
        Meta::U32(spec.n_embd as u32),
    );
    w.set(&format!("{a}.block_count"), Meta::U32(spec.n_layer as u32));
    w.set(
        &format!("{a}.feed_forward_length"),
        Meta::U32(spec.n_ff as u32),
    );
    w.set(
        &format!("{a}.attention.head_count"),
        Meta::U32(spec.n_head as u32),
    );
    w.set(
        &format!("{a}.attention.head_count_kv"),
        Meta::U32(spec.n_head_kv as u32),
    );
    if a == "qwen3" || spec.key_length.is_some() {
        w.set(
            &format!("{a}.attention.key_length"),
            Meta::U32(head_dim as u32),
        );
        w.set(
            &format!("{a}.attention.value_length"),
            Meta::U32(head_dim as u32),
        );
    }
    w.set(
        &format!("{a}.attention.layer_norm_rms_epsilon"),
        Meta::F32(1e-5),
    );
    w.set(&format!("{a}.rope.freq_base"), Meta::F32(10_000.0));
    let n_vocab = tokenizer(spec, &mut w);

    let mut rng = Xoshiro256::seed_from_u64(spec.seed);
    let (e, q, kv, ff) = (
        spec.n_embd,
        spec.n_head * head_dim,
        spec.n_head_kv * head_dim,
        spec.n_ff,
    );
    let mut add = |name: String, cols: usize, rows: usize, dtype: DType| {
        w.tensors
            .push(random_tensor(name, cols, rows, dtype, &mut rng));
    };
    add("token_embd.weight".into(), e, n_vocab, spec.dtype);
    add("output_norm.weight".into(), e, 1, DType::F32);
    if !spec.tied {
        add("output.weight".into(), e, n_vocab, spec.dtype);
    }
    for l in 0..spec.n_layer {
        let blk = |part: &str| format!("blk.{l}.{part}");
        add(blk("attn_norm.weight"), e, 1, DType::F32);
        add(blk("attn_q.weight"), e, q, spec.dtype);
        add(blk("attn_k.weight"), e, kv, spec.dtype);
        add(blk("attn_v.weight"), e, kv, spec.dtype);
        if a == "qwen2" {
            add(blk("attn_q.bias"), q, 1, DType::F32);
            add(blk("attn_k.bias"), kv, 1, DType::F32);
            add(blk("attn_v.bias"), kv, 1, DType::F32);
        }
        if a == "qwen3" {
            add(blk("attn_q_norm.weight"), head_dim, 1, DType::F32);
            add(blk("attn_k_norm.weight"), head_dim, 1, DType::F32);
        }
        add(blk("attn_output.weight"), q, e, spec.dtype);
        add(blk("ffn_norm.weight"), e, 1, DType::F32);
        add(blk("ffn_gate.weight"), e, ff, spec.dtype);
        add(blk("ffn_up.weight"), e, ff, spec.dtype);
        add(blk("ffn_down.weight"), ff, e, spec.dtype);
    }
    w
}

/// `rows` rows of `cols` random values in [-0.5, 0.5) (one-dimensional when `rows` is 1),
/// quantized to `dtype`.
fn random_tensor(
    name: String,
    cols: usize,
    rows: usize,
    dtype: DType,
    rng: &mut Xoshiro256,
) -> Tensor {
    let values: Vec<f32> = (0..cols * rows)
        .map(|_| rng.next_f64() as f32 - 0.5)
        .collect();
    let mut data = vec![0u8; dtype.bytes_for(values.len()).expect("whole blocks")];
    quantize(dtype, &values, &mut data).expect("a format Tern can write");
    let dims = if rows == 1 {
        vec![cols as u64]
    } else {
        vec![cols as u64, rows as u64]
    };
    Tensor::new(&name, &dims, dtype, data)
}
