//! `tern devices`: the GPU devices this machine offers, per API, numbered for
//! `--backend API --device N`.

use std::path::PathBuf;

use clap::Args;

use tern::EngineError;

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// The OpenCL library to open [default: $TERN_OPENCL_LIB, else the usual names]
    #[arg(long, value_name = "PATH")]
    opencl_lib: Option<PathBuf>,
}

/// Prints each API's devices, and why an API has none; fails only when no API has one.
pub fn devices(args: DevicesArgs) -> Result<(), EngineError> {
    let lists = tern::engine::list_devices(args.opencl_lib.as_deref());
    if lists.iter().all(|l| l.devices.is_err()) {
        let why: Vec<_> = lists
            .into_iter()
            .filter_map(|l| l.devices.err())
            .map(|e| e.to_string())
            .collect();
        return Err(EngineError::Option(why.join("; ")));
    }
    for list in lists {
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
