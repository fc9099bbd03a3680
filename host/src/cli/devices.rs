//! `tern devices`: the CPU backend and the GPU devices this machine offers, per API,
//! numbered for `--backend API --device N`.

use std::path::PathBuf;

use clap::Args;

use tern::EngineError;

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// The OpenCL library to open [default: $TERN_OPENCL_LIB, else the usual names]
    #[arg(long, value_name = "PATH")]
    opencl_lib: Option<PathBuf>,
}

/// Prints the CPU backend's kernels and cores, then each GPU API's devices or why it has
/// none. The CPU always computes, so the listing never fails.
pub fn devices(args: DevicesArgs) -> Result<(), EngineError> {
    println!("CPU (--backend cpu): {}", tern::engine::cpu_device());
    for list in tern::engine::list_devices(args.opencl_lib.as_deref()) {
        match list.devices {
            Ok(devices) => {
                let flag = list.backend.to_lowercase();
                println!("{} (--backend {flag} --device N):", list.backend);
                for line in devices {
                    println!("  {line}");
                }
            }
            Err(e) => println!("{}: none ({e})", list.backend),
        }
    }
    Ok(())
}
