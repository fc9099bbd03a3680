//! `tern devices`: the Vulkan devices this machine offers, numbered for `--device N`.

use clap::Args;

use tern::EngineError;

#[derive(Args, Debug)]
pub struct DevicesArgs {}

pub fn devices(_: DevicesArgs) -> Result<(), EngineError> {
    #[cfg(feature = "vulkan")]
    {
        let lines = tern::engine::describe_devices().map_err(EngineError::Backend)?;
        if lines.is_empty() {
            return Err(EngineError::Backend(
                "Vulkan: the loader found no device".into(),
            ));
        }
        for line in lines {
            println!("{line}");
        }
        Ok(())
    }
    #[cfg(not(feature = "vulkan"))]
    Err(EngineError::Backend(
        "this build of Tern has no Vulkan backend (cargo feature `vulkan`)".into(),
    ))
}
