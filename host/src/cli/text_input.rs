//! Text from outside for `-f`: a UTF-8 file read whole, within a bound.

use std::io::Read;
use std::path::Path;

use tern::error::EngineError;

/// The largest text file read: more text than a context of 2^24 tokens (Tern's limit)
/// holds at ~4 bytes a token, and a bound on what `-f /dev/zero` can cost.
const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Reads the UTF-8 file `-f` names; `what` names it in errors ("prompt", "text").
pub(super) fn read_text(path: &Path, what: &str) -> Result<String, EngineError> {
    let cannot_read = |e: std::io::Error| {
        EngineError::Option(format!("cannot read {what} file `{}`: {e}", path.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(EngineError::Option(format!(
            "{what} file `{}` is larger than {} MiB",
            path.display(),
            MAX_TEXT_FILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        EngineError::Option(format!(
            "{what} file `{}` is not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}
