//! Text from outside: a UTF-8 file (or standard input, `-`) read whole within a bound, and
//! llama.cpp's escapes (`-e`).

use std::io::Read;
use std::path::Path;

use tern::error::EngineError;

/// The largest text file read: more text than a context of 2^24 tokens (Tern's limit)
/// holds at ~4 bytes a token, and a bound on what `-f /dev/zero` can cost.
const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Reads the UTF-8 file `-f` names, or standard input for `-` (a file of that name is
/// `./-`); `what` names it in errors ("prompt", "text").
pub(super) fn read_text(path: &Path, what: &str) -> Result<String, EngineError> {
    let stdin = path.as_os_str() == "-";
    let source = match stdin {
        true => format!("{what} on standard input"),
        false => format!("{what} file `{}`", path.display()),
    };
    let mut bytes = Vec::new();
    let read = match stdin {
        true => std::io::stdin()
            .lock()
            .take(MAX_TEXT_FILE_BYTES + 1)
            .read_to_end(&mut bytes),
        false => std::fs::File::open(path)
            .and_then(|file| file.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes)),
    };
    read.map_err(|e| EngineError::Option(format!("cannot read {source}: {e}")))?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        return Err(EngineError::Option(format!(
            "{source} is larger than {} MiB",
            MAX_TEXT_FILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        EngineError::Option(format!(
            "{source} is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// `text` with llama.cpp's escapes replaced (its `string_process_escapes`): `\n`, `\r`,
/// `\t`, `\'`, `\"`, `\\`, and `\xHH` for the byte HH; any other backslash stays as
/// written. Bytes from `\xHH` must still make UTF-8 with their neighbours.
pub(super) fn process_escapes(text: &str) -> Result<String, EngineError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (byte, used) = match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'n')) => (b'\n', 2),
            (b'\\', Some(b'r')) => (b'\r', 2),
            (b'\\', Some(b't')) => (b'\t', 2),
            (b'\\', Some(b'\'')) => (b'\'', 2),
            (b'\\', Some(b'"')) => (b'"', 2),
            (b'\\', Some(b'\\')) => (b'\\', 2),
            (b'\\', Some(b'x')) => match bytes.get(i + 2..i + 4).and_then(hex_byte) {
                Some(byte) => (byte, 4),
                None => (b'\\', 1),
            },
            (byte, _) => (byte, 1),
        };
        out.push(byte);
        i += used;
    }
    String::from_utf8(out).map_err(|e| {
        EngineError::Option(format!(
            "the prompt's \\x escapes make text that is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Two hexadecimal digits as the byte they spell.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    let text = std::str::from_utf8(digits).ok()?;
    match text.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => u8::from_str_radix(text, 16).ok(),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::process_escapes;

    fn escaped(text: &str) -> String {
        process_escapes(text).unwrap()
    }

    #[test]
    fn llama_cpp_escapes_become_their_characters() {
        assert_eq!(escaped(r"a\nb\tc\rd"), "a\nb\tc\rd");
        assert_eq!(escaped(r#"\'q\" \\n"#), "'q\" \\n");
        assert_eq!(escaped(r"\x41\x7e\x0A"), "A~\n");
    }

    #[test]
    fn other_backslashes_stay_as_written() {
        assert_eq!(escaped(r"\q \x4 \xzz \"), r"\q \x4 \xzz \");
        assert_eq!(escaped(r"end\"), r"end\");
        assert_eq!(escaped("plain ünïcödé"), "plain ünïcödé");
    }

    #[test]
    fn hex_escapes_may_spell_utf8_but_not_break_it() {
        assert_eq!(escaped(r"\xc3\xa9"), "é");
        let err = process_escapes(r"ok \xff").unwrap_err().to_string();
        assert!(
            err.contains("not UTF-8") && err.contains("offset 3"),
            "{err}"
        );
    }
}
