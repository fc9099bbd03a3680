//! The GGUF reader on raw bytes: `Gguf::parse` either rejects the file with an error or
//! returns a view whose every accessor works; the model configuration is read from any file
//! that parses. Nothing may panic, and nothing may read outside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::gguf::{Gguf, Value};
use tern_core::model::ModelConfig;

fuzz_target!(|data: &[u8]| {
    let gguf = match Gguf::parse(data) {
        Ok(gguf) => gguf,
        Err(e) => {
            // Every error renders as a message.
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    walk(&gguf, data);
    if let Err(e) = ModelConfig::from_gguf(&gguf) {
        assert!(!e.to_string().is_empty());
    }
});

/// Reads everything a parsed file offers, checking what the reader promises about it.
fn walk(gguf: &Gguf<'_>, data: &[u8]) {
    // A file without tensors may end before the padding that would start its data.
    assert!(gguf.data_offset() <= data.len() || gguf.tensor_count() == 0);
    assert_eq!(gguf.data_offset() % gguf.alignment(), 0);
    let mut keys = 0;
    for (key, value) in gguf.metadata() {
        keys += 1;
        walk_value(value);
        let again = gguf.get(key).expect("a listed key is found");
        assert_eq!(again.value_type(), value.value_type());
    }
    assert_eq!(keys, gguf.metadata_count());
    let _ = gguf.architecture();
    let mut tensors = 0;
    for t in gguf.tensors() {
        tensors += 1;
        let n = usize::try_from(t.n_elements()).expect("element count fits");
        assert_eq!(Some(t.data.len()), t.dtype.bytes_for(n), "{}", t.name);
        assert_eq!(t.shape().len(), t.n_dims);
        let found = gguf.tensor(t.name).expect("a listed tensor is found");
        assert_eq!(found.offset, t.offset);
        // The data lies inside the file, where the offset says.
        let start = t.data.as_ptr() as usize - data.as_ptr() as usize;
        assert_eq!(start as u64, gguf.data_offset() as u64 + t.offset);
        assert!(start + t.data.len() <= data.len());
    }
    assert_eq!(tensors, gguf.tensor_count());
}

fn walk_value(value: Value<'_>) {
    match value {
        Value::Array(a) => {
            let mut n = 0;
            for v in a.iter() {
                assert_eq!(v.value_type(), a.elem_type());
                walk_value(v);
                n += 1;
            }
            assert_eq!(n, a.len());
            if let Some(strings) = a.strings() {
                assert_eq!(strings.count(), a.len());
            }
        }
        Value::String(s) => assert!(s.len() <= usize::MAX / 2),
        other => {
            let _ = (
                other.as_u64(),
                other.as_i64(),
                other.as_f32(),
                other.as_u32(),
            );
        }
    }
}
