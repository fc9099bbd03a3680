//! One forward step of the bundled model with no std, no heap and no runtime but libc's
//! entry point and `write`. Prints the greedy token after BOS and exits 0, or prints the
//! error and exits 1.
#![no_std]
#![no_main]

use core::fmt::Write;

use tern_core::arena::Arena;
use tern_core::backend::reference::Reference;
use tern_core::backend::{Backend, Sequential};
use tern_core::exec::Runner;
use tern_core::gguf::Gguf;
use tern_core::kv::DenseKv;
use tern_core::model::{LayerWeights, Model, ModelConfig, WeightView};
use tern_core::plan::{LogitRows, Plan};
use tern_core::sample::argmax;

static MODEL: &[u8] = include_bytes!("../../models/stories260K-q8_0.gguf");

const N_CTX: usize = 16;
const MAX_LAYERS: usize = 8;
const KV_ELEMENTS: usize = MAX_LAYERS * N_CTX * 64;
const ARENA_BYTES: usize = 16 * 1024;

#[link(name = "c")]
unsafe extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn abort() -> !;
}

fn print(fd: i32, text: &str) {
    // SAFETY: `text` is a live, initialised buffer of `text.len()` bytes for the call.
    unsafe {
        write(fd, text.as_ptr(), text.len());
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    print(2, "tern-nostd-smoke: panic\n");
    // SAFETY: abort takes no arguments and never returns.
    unsafe { abort() }
}

/// The prebuilt `core` of hosted targets refers to the unwinder's personality routine even
/// when this program aborts on panic; nothing here unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut line = heapless::String::<128>::new();
    match first_token() {
        Ok(id) => {
            let _ = writeln!(line, "greedy token after BOS: {id}");
            print(1, &line);
            0
        }
        Err(why) => {
            let _ = writeln!(line, "tern-nostd-smoke: {why}");
            print(2, &line);
            1
        }
    }
}

fn first_token() -> Result<u32, &'static str> {
    let gguf = Gguf::parse(MODEL).map_err(|_| "the bundled GGUF does not parse")?;
    let config = ModelConfig::from_gguf(&gguf).map_err(|_| "bad model metadata")?;
    let layers = heapless::Vec::<LayerWeights<WeightView<'_>>, MAX_LAYERS>::new();
    let model = Model::load(&gguf, config, layers, |view, role| {
        Reference.prepare(view, role)
    })
    .map_err(|_| "the model's weights do not load")?;

    let width = config.kv_width();
    let elements = config.n_layer * N_CTX * width;
    if elements > KV_ELEMENTS {
        return Err("the model is larger than this smoke test's buffers");
    }
    let mut keys = [0f32; KV_ELEMENTS];
    let mut values = [0f32; KV_ELEMENTS];
    let mut kv = DenseKv::new(
        config.n_layer,
        N_CTX,
        width,
        &mut keys[..elements],
        &mut values[..elements],
    )
    .map_err(|_| "KV cache shape")?;

    let plan = Plan::new(&config, 1, N_CTX, LogitRows::Last).map_err(|_| "plan")?;
    let mut arena_bytes = [0u8; ARENA_BYTES];
    let arena = Arena::new(&mut arena_bytes);
    let runner = Runner {
        backend: &Reference,
        model: &model,
        parallel: &Sequential,
    };
    let bos = gguf
        .get("tokenizer.ggml.bos_token_id")
        .and_then(|v| v.as_u32())
        .unwrap_or(1);
    let logits = runner
        .step(&plan, &mut kv, arena, &[bos], 0)
        .map_err(|_| "the forward step failed")?;
    Ok(argmax(logits))
}
