//! `tern devices`: the GPU devices this machine offers, numbered for `--device N`.

use clap::Args;

use tern::EngineError;

#[derive(Args, Debug)]
pub struct DevicesArgs {}

pub fn devices(_: DevicesArgs) -> Result<(), EngineError> {
    for line in tern::engine::list_devices().map_err(EngineError::Backend)? {
        println!("{line}");
    }
    Ok(())
}
