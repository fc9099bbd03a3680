//! `tern devices`: the GPU devices this machine offers, numbered for `--device N`.

use clap::Args;

use tern::EngineError;

#[derive(Args, Debug)]
pub struct DevicesArgs {}

pub fn devices(_: DevicesArgs) -> Result<(), EngineError> {
    let lines = tern::engine::list_devices().map_err(EngineError::Backend)?;
    if lines.is_empty() {
        return Err(EngineError::Option(
            "Vulkan: the loader found no device".into(),
        ));
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
