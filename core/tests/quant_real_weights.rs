//! The block formats against real model files: every quantized tensor in the fixture GGUFs
//! decodes close to the same tensor of the F32 file, and the reference quantizers rebuild the
//! fixture bytes exactly (llama.cpp wrote them with the same `quantize_row_*_ref` functions,
//! no importance matrix).

use tern_core::DType;
use tern_core::gguf::{Gguf, TensorInfo};
use tern_core::quant::{dequantize, quantize};

/// Each fixture model as (F32 file, quantized files), relative to the workspace root.
fn fixture_sets() -> Vec<(String, Vec<String>)> {
    let variants = ["f16", "q4_0", "q4_1", "q4_k_m", "q5_k_m", "q6_k", "q8_0"];
    let mut sets: Vec<_> = ["llama", "qwen2", "qwen3"]
        .iter()
        .map(|m| {
            let dir = format!("testdata/fixtures/{m}/{m}");
            let quantized = variants.iter().map(|v| format!("{dir}-{v}.gguf")).collect();
            (format!("{dir}-f32.gguf"), quantized)
        })
        .collect();
    sets.push((
        "models/stories260K-f32.gguf".into(),
        vec!["models/stories260K-q8_0.gguf".into()],
    ));
    sets
}

fn read(rel: &str) -> Vec<u8> {
    let path = format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Calls `check(file, source f32 weights, tensor)` for every non-F32 tensor of every fixture.
fn for_each_quantized_tensor(mut check: impl FnMut(&str, &[f32], &TensorInfo<'_>)) {
    for (source_path, quantized) in fixture_sets() {
        let source_bytes = read(&source_path);
        let source = Gguf::parse(&source_bytes).unwrap();
        for path in quantized {
            let bytes = read(&path);
            let file = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
            for t in file.tensors().filter(|t| t.dtype != DType::F32) {
                let s = source
                    .tensor(t.name)
                    .unwrap_or_else(|| panic!("{}", t.name));
                assert_eq!((s.dtype, s.dims), (DType::F32, t.dims), "{path} {}", t.name);
                let mut x = vec![0.0f32; s.n_elements() as usize];
                dequantize(DType::F32, s.data, &mut x).unwrap();
                check(&path, &x, &t);
            }
        }
    }
}

/// Largest relative L2 error each format may show on these weights; each sits a little above
/// what the fixtures measure (F16 2e-4, Q8_0 0.54%, Q6_K 1.8%, Q5_K 3.6%, Q4_K 7.2%,
/// Q4_1 7.9%, Q4_0 8.7%).
fn max_relative_error(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 1e-3,
        DType::Q8_0 => 0.01,
        DType::Q6_K => 0.025,
        DType::Q5_K | DType::Q5_0 | DType::Q5_1 => 0.05,
        DType::Q4_K | DType::Q4_1 => 0.09,
        DType::Q4_0 => 0.10,
        DType::F32 => 0.0,
    }
}

#[test]
fn quantized_fixtures_decode_close_to_the_f32_weights() {
    let mut seen = Vec::new();
    for_each_quantized_tensor(|path, x, t| {
        let mut y = vec![0.0f32; x.len()];
        dequantize(t.dtype, t.data, &mut y).unwrap_or_else(|e| panic!("{path} {}: {e}", t.name));
        let err: f64 = x
            .iter()
            .zip(&y)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum();
        let norm: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
        let rel = (err / norm).sqrt();
        let limit = max_relative_error(t.dtype);
        assert!(
            rel < limit,
            "{path} {} ({}): relative L2 error {rel} >= {limit}",
            t.name,
            t.dtype
        );
        if !seen.contains(&t.dtype) {
            seen.push(t.dtype);
        }
    });
    for dtype in [
        DType::F16,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q4_K,
        DType::Q5_K,
        DType::Q6_K,
        DType::Q8_0,
    ] {
        assert!(seen.contains(&dtype), "no {dtype} tensor in the fixtures");
    }
}

#[test]
fn reference_quantizers_rebuild_the_fixture_bytes() {
    let mut tensors = 0;
    for_each_quantized_tensor(|path, x, t| {
        let mut bytes = vec![0u8; t.data.len()];
        quantize(t.dtype, x, &mut bytes).unwrap_or_else(|e| panic!("{path} {}: {e}", t.name));
        let bb = t.dtype.block_bytes();
        let first_diff = bytes
            .chunks(bb)
            .zip(t.data.chunks(bb))
            .position(|(a, b)| a != b);
        assert_eq!(
            first_diff, None,
            "{path} {} ({}): first differing block",
            t.name, t.dtype
        );
        tensors += 1;
    });
    assert!(tensors > 300, "only {tensors} tensors checked");
}
