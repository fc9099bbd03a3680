//! `tern inspect`: what a model file holds, like gguf-dump.

use std::path::PathBuf;

use clap::Args;
use tern::engine::{BackendKind, Engine, EngineOptions};
use tern::error::EngineError;
use tern_core::cpu::has_fast_path;
use tern_core::gguf::Value;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// GGUF model file [default: the bundled model]
    #[arg(value_name = "MODEL.gguf")]
    path: Option<PathBuf>,
    /// The model file as the other commands take it (the same as the path alone)
    #[arg(short, long, value_name = "MODEL.gguf", conflicts_with = "path")]
    model: Option<PathBuf>,
    /// Also print every metadata key and value
    #[arg(long)]
    metadata: bool,
}

pub fn inspect(args: InspectArgs) -> Result<(), EngineError> {
    // The reference backend keeps weights as the file stores them: nothing to repack, so a
    // large model opens at once.
    let options = EngineOptions {
        backend: BackendKind::Reference,
        threads: 1,
        ..EngineOptions::default()
    };
    let model = args.model.or(args.path);
    let engine = super::run::load(model.as_deref(), options)?;
    print!("{}", report(&engine, args.metadata));
    Ok(())
}

/// The whole report as text.
fn report(engine: &Engine, with_metadata: bool) -> String {
    use std::fmt::Write;
    let gguf = engine.gguf();
    let c = engine.config();
    let tok = engine.tokenizer();
    let mut s = String::new();
    let _ = writeln!(s, "model:         {}", engine.name());
    let _ = writeln!(
        s,
        "format:        GGUF v{}, {} metadata keys, {} tensors, alignment {}",
        gguf.version(),
        gguf.metadata_count(),
        gguf.tensor_count(),
        gguf.alignment()
    );
    if let Some(name) = gguf.get("general.name").and_then(|v| v.as_str()) {
        let _ = writeln!(s, "name:          {name}");
    }
    let _ = writeln!(s, "architecture:  {}", c.arch.name());
    let _ = writeln!(
        s,
        "dimensions:    embd {} | layers {} | ffn {} | vocab {} | trained ctx {}",
        c.n_embd, c.n_layer, c.n_ff, c.n_vocab, c.n_ctx_train
    );
    let _ = writeln!(
        s,
        "attention:     heads {} | kv heads {} (group {}) | head dim {}{}{}",
        c.n_head,
        c.n_head_kv,
        c.group_size(),
        c.head_dim,
        if c.qkv_bias { " | qkv bias" } else { "" },
        if c.qk_norm { " | q/k norm" } else { "" },
    );
    let _ = writeln!(
        s,
        "rope:          {:?} | dims {} | theta {} | freq scale {} | rms eps {:e}",
        c.rope_style, c.rope_dim, c.rope_theta, c.rope_freq_scale, c.rms_eps
    );
    let _ = writeln!(
        s,
        "tokenizer:     {} | {} tokens | bos {} | eos {} | adds bos: {}",
        gguf.get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        tok.n_vocab(),
        opt(tok.bos()),
        opt(tok.eos()),
        tok.add_bos()
    );
    if with_metadata {
        let _ = writeln!(s, "\nmetadata:");
        for (key, value) in gguf.metadata() {
            let _ = writeln!(s, "  {key:<44} {}", show_value(&value));
        }
    }
    let _ = writeln!(s, "\ntensors:");
    let _ = writeln!(
        s,
        "  {:<36} {:<6} {:<22} {:>12}  cpu matmul",
        "name", "type", "shape", "bytes"
    );
    let mut total = 0usize;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut fallback = std::collections::BTreeSet::<&str>::new();
    let tied = gguf.tensor("output.weight").is_none();
    for t in gguf.tensors() {
        let shape: Vec<String> = t.dims[..t.n_dims].iter().map(u64::to_string).collect();
        let multiplied = t.n_dims == 2 && (t.name != "token_embd.weight" || tied);
        let path = match (multiplied, has_fast_path(t.dtype)) {
            (false, _) => "-",
            (true, true) => "int8 dot",
            (true, false) => {
                fallback.insert(t.dtype.name());
                "f32 (dequantized)"
            }
        };
        let _ = writeln!(
            s,
            "  {:<36} {:<6} {:<22} {:>12}  {path}",
            t.name,
            t.dtype.name(),
            format!("[{}]", shape.join(", ")),
            t.data.len()
        );
        total += t.data.len();
        *counts.entry(t.dtype.name()).or_default() += 1;
    }
    let by_type: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        s,
        "  {} tensors ({}), {:.2} MiB of weights",
        gguf.tensor_count(),
        by_type.join(", "),
        total as f64 / (1024.0 * 1024.0)
    );
    if !fallback.is_empty() {
        let types: Vec<&str> = fallback.into_iter().collect();
        let _ = writeln!(
            s,
            "  note: the cpu backend has no integer kernels for {}; those matrices are \
             dequantized to f32 at load",
            types.join(", ")
        );
    }
    s
}

fn opt(id: Option<u32>) -> String {
    id.map_or_else(|| "none".into(), |id| id.to_string())
}

/// One metadata value, arrays abbreviated to their first few elements.
fn show_value(v: &Value<'_>) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => {
            let head: Vec<String> = a.iter().take(6).map(|x| show_value(&x)).collect();
            let more = if a.len() > 6 { ", ..." } else { "" };
            format!(
                "[{}{more}] ({} x {:?})",
                head.join(", "),
                a.len(),
                a.elem_type()
            )
        }
        other => format!("{other:?}")
            .trim_start_matches(|c: char| c.is_alphanumeric())
            .trim_matches(|c| c == '(' || c == ')')
            .to_string(),
    }
}
