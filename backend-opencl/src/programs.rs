//! Every kernel program: which OpenCL C files it is built from and with which defines. Each
//! variant of a kernel family (a weight format, a cache format) is one source compiled with
//! different defines, so the variant CI runs is the code a phone GPU runs.

use tern_core::DType;

use crate::device::{DeviceInfo, IntegerDot};
use crate::ops::planar::{GEMM_STAGE, GEMM_TOKENS, GEMV_ROWS, GEMV_STAGE};

/// Helpers every program starts with: exact f16 conversions, correctly rounded division and
/// square root.
const COMMON: &str = include_str!("../kernels/common.cl");
/// ggml's exp and the f64-like pair sums the reference uses.
const GGML_MATH: &str = include_str!("../kernels/ggml_math.cl");
/// Block decoding of GGUF weight formats.
const FORMATS: &str = include_str!("../kernels/formats.cl");
/// Weights in `Layout::Planar` and activation codes, for the fast matmuls.
const PLANAR: &str = include_str!("../kernels/planar.cl");

/// A kernel program and its entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// `matmul`: one work-item per (row, token), the reference's order (F32, F16, Q4_0,
    /// Q4_1, Q5_1, Q8_0).
    Matmul(DType),
    /// `matmul_kquant`: Q4_K, Q5_K, Q6_K, activations quantized to Q8_K on the fly.
    MatmulKQuant(DType),
    /// `gemv`: one token times a `Layout::Planar` matrix (Q4_0, Q4_1, Q8_0), each row's
    /// blocks in slices whose sums are added in local memory.
    Gemv(DType),
    /// `gemm`: several tokens times a `Layout::Planar` matrix, a tile of tokens' activations
    /// staged in local memory for every row of a tile.
    Gemm(DType),
    /// `quant_act`: activations rounded to Q8_0 as codes and scales, with Q8_1 block sums,
    /// for `Gemv` and `Gemm`.
    QuantizeActivations,
    /// `embed`: rows of an embedding table decoded to f32.
    Embed(DType),
    /// `round_act`: activations rounded to a matmul's input format (F16 or Q8_0).
    RoundActivations(DType),
    /// `kv_store`: key and value rows into an f32 (`false`) or f16 (`true`) cache.
    KvStore { f16: bool },
    /// `attention`: causal grouped-query attention over an f32 or f16 cache.
    Attention { f16: bool },
    /// `rms_norm`: RMS norm of rows (and heads, in place).
    RmsNorm,
    /// `binary`: add, bias and SwiGLU.
    Binary,
    /// `rope`: rotary position embedding, both pairings.
    Rope,
    /// `raster`: one strided region copy.
    Raster,
}

impl Source {
    /// The programs every model's steps run, whatever its weight formats (a load builds
    /// them first, so a driver that cannot compile one fails before any upload).
    pub(crate) const EVERY_MODEL: [Source; 9] = [
        Source::RmsNorm,
        Source::Binary,
        Source::Rope,
        Source::Raster,
        Source::KvStore { f16: false },
        Source::KvStore { f16: true },
        Source::Attention { f16: false },
        Source::Attention { f16: true },
        Source::RoundActivations(DType::Q8_0),
    ];
}

/// The define naming a weight format in `formats.cl`.
fn format_define(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "FMT_F32",
        DType::F16 => "FMT_F16",
        DType::Q4_0 => "FMT_Q4_0",
        DType::Q4_1 => "FMT_Q4_1",
        DType::Q5_1 => "FMT_Q5_1",
        DType::Q8_0 => "FMT_Q8_0",
        DType::Q4_K => "FMT_Q4_K",
        DType::Q5_K => "FMT_Q5_K",
        DType::Q6_K => "FMT_Q6_K",
        _ => "FMT_UNSUPPORTED",
    }
}

impl Source {
    /// The program's name, for build errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Matmul(_) => "matmul.cl",
            Source::MatmulKQuant(_) => "matmul_kquant.cl",
            Source::Gemv(_) => "gemv.cl",
            Source::Gemm(_) => "gemm.cl",
            Source::QuantizeActivations => "quant_act.cl",
            Source::Embed(_) => "embed.cl",
            Source::RoundActivations(_) => "round_act.cl",
            Source::KvStore { .. } => "kv_store.cl",
            Source::Attention { .. } => "attention.cl",
            Source::RmsNorm => "rms_norm.cl",
            Source::Binary => "binary.cl",
            Source::Rope => "rope.cl",
            Source::Raster => "raster.cl",
        }
    }

    /// The kernel function the program's entry point is.
    pub(crate) fn entry(self) -> &'static str {
        self.name().trim_end_matches(".cl")
    }

    /// The program's text: the shared helpers, then its own file.
    pub(crate) fn text(self) -> String {
        let own = match self {
            Source::Matmul(_) => include_str!("../kernels/matmul.cl"),
            Source::MatmulKQuant(_) => include_str!("../kernels/matmul_kquant.cl"),
            Source::Gemv(_) => include_str!("../kernels/gemv.cl"),
            Source::Gemm(_) => include_str!("../kernels/gemm.cl"),
            Source::QuantizeActivations => include_str!("../kernels/quant_act.cl"),
            Source::Embed(_) => include_str!("../kernels/embed.cl"),
            Source::RoundActivations(_) => include_str!("../kernels/round_act.cl"),
            Source::KvStore { .. } => include_str!("../kernels/kv_store.cl"),
            Source::Attention { .. } => include_str!("../kernels/attention.cl"),
            Source::RmsNorm => include_str!("../kernels/rms_norm.cl"),
            Source::Binary => include_str!("../kernels/binary.cl"),
            Source::Rope => include_str!("../kernels/rope.cl"),
            Source::Raster => include_str!("../kernels/raster.cl"),
        };
        let mut text = String::from(COMMON);
        text.push_str(GGML_MATH);
        if matches!(self, Source::Matmul(_) | Source::Embed(_)) {
            text.push_str(FORMATS);
        }
        if matches!(self, Source::Gemv(_) | Source::Gemm(_)) {
            text.push_str(PLANAR);
        }
        text.push_str(own);
        text
    }

    /// The compiler options for `device`: OpenCL C 1.2, the variant's defines, and
    /// `SOFT_FMA` where the device's `fma` is not hardware keeping subnormals. With
    /// `extensions`, the optional extensions the program can use (an integer dot product
    /// for the fast matmuls: `DOT4_KHR`, `DOT4_ARM`); every such variant computes the same
    /// bits as the one without, which is what a driver that fails to build it gets. No
    /// fast-math option: the kernels count on IEEE arithmetic.
    pub(crate) fn options(self, device: &DeviceInfo, extensions: bool) -> String {
        let define = match self {
            Source::Matmul(t)
            | Source::MatmulKQuant(t)
            | Source::Gemv(t)
            | Source::Gemm(t)
            | Source::Embed(t) => format_define(t),
            Source::RoundActivations(DType::F16) => "ACT_F16",
            Source::RoundActivations(_) => "ACT_Q8_0",
            Source::KvStore { f16 } | Source::Attention { f16 } => {
                if f16 {
                    "KV_F16"
                } else {
                    "KV_F32"
                }
            }
            Source::QuantizeActivations
            | Source::RmsNorm
            | Source::Binary
            | Source::Rope
            | Source::Raster => "TERN",
        };
        let tiles = match self {
            Source::Gemv(_) => format!(" -D GEMV_ROWS={GEMV_ROWS}u -D GEMV_STAGE={GEMV_STAGE}u"),
            Source::Gemm(_) => {
                format!(" -D GEMM_TOKENS={GEMM_TOKENS}u -D GEMM_STAGE={GEMM_STAGE}u")
            }
            _ => String::new(),
        };
        let fma = if device.hardware_fma {
            ""
        } else {
            " -D SOFT_FMA"
        };
        let dot = match (extensions, self, device.extensions.integer_dot) {
            (true, Source::Gemv(_) | Source::Gemm(_), Some(IntegerDot::Khr)) => " -D DOT4_KHR",
            (true, Source::Gemv(_) | Source::Gemm(_), Some(IntegerDot::Arm)) => " -D DOT4_ARM",
            _ => "",
        };
        format!("-cl-std=CL1.2 -D {define}{tiles}{fma}{dot}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Extensions;

    #[test]
    fn only_the_fast_matmuls_take_an_integer_dot_product_and_only_when_asked() {
        let mut arm = DeviceInfo::for_tests();
        arm.extensions = Extensions::parse("cl_arm_integer_dot_product_int8");
        let mut khr = DeviceInfo::for_tests();
        khr.extensions = Extensions::parse("cl_khr_integer_dot_product");
        for fast in [Source::Gemv(DType::Q4_0), Source::Gemm(DType::Q8_0)] {
            assert!(fast.options(&arm, true).ends_with(" -D DOT4_ARM"));
            assert!(fast.options(&khr, true).ends_with(" -D DOT4_KHR"));
            assert!(!fast.options(&arm, false).contains("DOT4"));
            assert!(
                !fast
                    .options(&DeviceInfo::for_tests(), true)
                    .contains("DOT4")
            );
        }
        assert!(
            !Source::Matmul(DType::Q4_0)
                .options(&arm, true)
                .contains("DOT4")
        );
    }

    #[test]
    fn software_fma_is_a_define() {
        let mut soft = DeviceInfo::for_tests();
        soft.hardware_fma = false;
        assert!(
            Source::RmsNorm
                .options(&soft, true)
                .contains(" -D SOFT_FMA")
        );
        assert!(
            !Source::RmsNorm
                .options(&DeviceInfo::for_tests(), true)
                .contains("SOFT_FMA")
        );
    }

    /// The variants no CI device runs (the integer dot products of Mali and of
    /// `cl_khr_integer_dot_product` devices) are compiled here by clang's OpenCL front end
    /// (PoCL's dependency, so CI has it), checked to call the dot product they exist for.
    /// Without clang the test says so and returns, unless `TERN_OPENCL_TESTS` is set.
    #[test]
    fn the_integer_dot_variants_compile_and_call_their_dot_product() {
        let clang = "clang-15";
        if std::process::Command::new(clang)
            .arg("--version")
            .output()
            .is_err()
        {
            let required =
                std::env::var_os("TERN_OPENCL_TESTS").is_some_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "TERN_OPENCL_TESTS is set but {clang} is missing");
            eprintln!("{clang} not found: the integer-dot variants are not compiled");
            return;
        }
        let dir = std::env::temp_dir().join(format!("tern-cl-variants-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let variants = [
            (
                "cl_khr_integer_dot_product",
                "CL3.0",
                "+cl_khr_integer_dot_product,+__opencl_c_integer_dot_product_input_4x8bit",
                "_Z3dotDv4_cS_",
            ),
            (
                "cl_arm_integer_dot_product_int8",
                "CL1.2",
                "+cl_arm_integer_dot_product_int8",
                "_Z7arm_dotDv4_cS_",
            ),
        ];
        for (extension, std, ext_flags, symbol) in variants {
            let mut device = DeviceInfo::for_tests();
            device.extensions = crate::device::Extensions::parse(extension);
            for dtype in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
                for source in [Source::Gemv(dtype), Source::Gemm(dtype)] {
                    let path = dir.join(source.name());
                    std::fs::write(&path, source.text()).unwrap();
                    let out = dir.join("out.ll");
                    let options = source.options(&device, true);
                    let defines = options.split(" -D ").skip(1).map(|d| format!("-D{d}"));
                    let result = std::process::Command::new(clang)
                        .args(["-x", "cl", "-target", "spir64", "-emit-llvm", "-S"])
                        .arg(format!("-cl-std={std}"))
                        .args(["-Xclang", "-finclude-default-header", "-Xclang"])
                        .arg(format!("-cl-ext={ext_flags}"))
                        .args(defines)
                        .arg(&path)
                        .arg("-o")
                        .arg(&out)
                        .output()
                        .unwrap();
                    let log = String::from_utf8_lossy(&result.stderr);
                    assert!(
                        result.status.success(),
                        "{source:?} with {extension}: {log}"
                    );
                    let ir = std::fs::read_to_string(&out).unwrap();
                    assert!(
                        ir.contains(symbol),
                        "{source:?} with {extension} calls no {symbol}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
