//! One forward step of the bundled model with no std, no heap and no runtime but libc's
//! entry point and `write`. Prints the greedy token after BOS and exits 0, or prints the
//! error and exits 1.
//!
//! On aarch64 the same step also runs on the CPU backend with tern-backend-neon (default
//! features off: the kernels the target features allow, no run-time detection), which must
//! pick the same token. Its load-time repacking allocates, from a fixed static arena
//! ([`static_arena`]): still no heap.
#![no_std]
#![no_main]

use core::fmt::Write;

use tern_core::arena::Arena;
use tern_core::backend::Backend;
use tern_core::backend::reference::Reference;
use tern_core::backend::spin_pool::SpinPool;

#[cfg(target_arch = "aarch64")]
mod static_arena;
use tern_core::exec::Runner;
use tern_core::gguf::Gguf;
use tern_core::kv::DenseKv;
use tern_core::model::{LayerWeights, Model, ModelConfig};
use tern_core::plan::{LogitRows, Plan};
use tern_core::sample::argmax;

static MODEL: &[u8] = include_bytes!("../../models/stories260K-q8_0.gguf");

const N_CTX: usize = 16;
const MAX_LAYERS: usize = 8;
const KV_ELEMENTS: usize = MAX_LAYERS * N_CTX * 64;
const ARENA_BYTES: usize = 16 * 1024;

/// The firmware's thread pool, in a static as firmware keeps it. This program starts no
/// other threads, so the pool has the calling one alone; what it proves is that the pool
/// builds and links with no std.
static PARALLEL: SpinPool<1> = SpinPool::new();

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
    match first_token(&Reference).and_then(agrees_on_neon) {
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

/// The reference's token `id`, once the CPU backend with the NEON kernels picked it too.
#[cfg(target_arch = "aarch64")]
fn agrees_on_neon(id: u32) -> Result<u32, &'static str> {
    use tern_backend_neon::{Features, NeonKernels};
    use tern_core::cpu::CpuKernels;
    // SAFETY: the features are those this program was compiled for, so the CPU that runs it
    // has them.
    let kernels = unsafe { NeonKernels::from_features(Features::compiled()) };
    let mut line = heapless::String::<128>::new();
    let _ = writeln!(
        line,
        "tern-nostd-smoke: CPU backend with {}",
        kernels.name()
    );
    print(2, &line);
    let on_neon = first_token(&tern_core::cpu::Cpu::new(kernels))?;
    if on_neon == id {
        Ok(id)
    } else {
        Err("the NEON kernels picked another token than the reference")
    }
}

#[cfg(not(target_arch = "aarch64"))]
fn agrees_on_neon(id: u32) -> Result<u32, &'static str> {
    Ok(id)
}

fn first_token<B: Backend<'static>>(backend: &B) -> Result<u32, &'static str> {
    let gguf = Gguf::parse(MODEL).map_err(|_| "the bundled GGUF does not parse")?;
    let config = ModelConfig::from_gguf(&gguf).map_err(|_| "bad model metadata")?;
    let layers = heapless::Vec::<LayerWeights<_>, MAX_LAYERS>::new();
    let model = Model::load(&gguf, config, layers, |view, role| {
        backend.prepare(view, role)
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
    let mut runner = Runner {
        backend,
        model: &model,
        parallel: &PARALLEL,
        embeddings: None,
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
