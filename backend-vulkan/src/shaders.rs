//! The SPIR-V of every kernel, compiled from `shaders/*.comp` by scripts/vulkan-shaders.sh
//! and embedded here, with the interface each declares (storage buffers, push-constant
//! words).

/// A compiled kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    MatmulF32,
    MatmulF16,
    MatmulQ4_0,
    MatmulQ4_1,
    MatmulQ5_1,
    MatmulQ8_0,
    MatmulF16A16,
    MatmulQ4_0A16,
    MatmulQ8_0A16,
    MatmulQ4K,
    MatmulQ5K,
    MatmulQ6K,
    EmbedF32,
    EmbedF16,
    EmbedQ4_0,
    EmbedQ8_0,
    EmbedQ4K,
    EmbedQ6K,
    RoundF16,
    RoundQ8_0,
    AttentionF32,
    AttentionF16,
    KvStoreF32,
    KvStoreF16,
    RmsNorm,
    Binary,
    Rope,
    Raster,
}

macro_rules! spv {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/",
            $name,
            ".spv"
        ))
    };
}

impl Shader {
    /// Every kernel, for building them all up front.
    pub(crate) const ALL: [Shader; 28] = [
        Shader::MatmulF32,
        Shader::MatmulF16,
        Shader::MatmulQ4_0,
        Shader::MatmulQ4_1,
        Shader::MatmulQ5_1,
        Shader::MatmulQ8_0,
        Shader::MatmulF16A16,
        Shader::MatmulQ4_0A16,
        Shader::MatmulQ8_0A16,
        Shader::MatmulQ4K,
        Shader::MatmulQ5K,
        Shader::MatmulQ6K,
        Shader::EmbedF32,
        Shader::EmbedF16,
        Shader::EmbedQ4_0,
        Shader::EmbedQ8_0,
        Shader::EmbedQ4K,
        Shader::EmbedQ6K,
        Shader::RoundF16,
        Shader::RoundQ8_0,
        Shader::AttentionF32,
        Shader::AttentionF16,
        Shader::KvStoreF32,
        Shader::KvStoreF16,
        Shader::RmsNorm,
        Shader::Binary,
        Shader::Rope,
        Shader::Raster,
    ];

    /// Whether the kernel does f16 arithmetic, which needs the shaderFloat16 feature.
    pub(crate) fn needs_float16(self) -> bool {
        matches!(
            self,
            Shader::MatmulF16A16 | Shader::MatmulQ4_0A16 | Shader::MatmulQ8_0A16
        )
    }

    /// (name, SPIR-V, storage buffers, push-constant words)
    pub(crate) fn interface(self) -> (&'static str, &'static [u8], u32, u32) {
        use Shader::*;
        match self {
            MatmulF32 => ("matmul_f32", spv!("matmul_f32"), 3, 6),
            MatmulF16 => ("matmul_f16", spv!("matmul_f16"), 3, 6),
            MatmulQ4_0 => ("matmul_q4_0", spv!("matmul_q4_0"), 3, 6),
            MatmulQ4_1 => ("matmul_q4_1", spv!("matmul_q4_1"), 4, 6),
            MatmulQ5_1 => ("matmul_q5_1", spv!("matmul_q5_1"), 4, 6),
            MatmulQ8_0 => ("matmul_q8_0", spv!("matmul_q8_0"), 3, 6),
            MatmulF16A16 => ("matmul_f16_a16", spv!("matmul_f16_a16"), 3, 6),
            MatmulQ4_0A16 => ("matmul_q4_0_a16", spv!("matmul_q4_0_a16"), 3, 6),
            MatmulQ8_0A16 => ("matmul_q8_0_a16", spv!("matmul_q8_0_a16"), 3, 6),
            MatmulQ4K => ("matmul_q4_k", spv!("matmul_q4_k"), 3, 5),
            MatmulQ5K => ("matmul_q5_k", spv!("matmul_q5_k"), 3, 5),
            MatmulQ6K => ("matmul_q6_k", spv!("matmul_q6_k"), 3, 5),
            EmbedF32 => ("embed_f32", spv!("embed_f32"), 3, 6),
            EmbedF16 => ("embed_f16", spv!("embed_f16"), 3, 6),
            EmbedQ4_0 => ("embed_q4_0", spv!("embed_q4_0"), 3, 6),
            EmbedQ8_0 => ("embed_q8_0", spv!("embed_q8_0"), 3, 6),
            EmbedQ4K => ("embed_q4_k", spv!("embed_q4_k"), 3, 6),
            EmbedQ6K => ("embed_q6_k", spv!("embed_q6_k"), 3, 6),
            RoundF16 => ("round_f16", spv!("round_f16"), 2, 3),
            RoundQ8_0 => ("round_q8_0", spv!("round_q8_0"), 2, 3),
            AttentionF32 => ("attention_f32", spv!("attention_f32"), 6, 11),
            AttentionF16 => ("attention_f16", spv!("attention_f16"), 6, 11),
            KvStoreF32 => ("kv_store_f32", spv!("kv_store_f32"), 3, 6),
            KvStoreF16 => ("kv_store_f16", spv!("kv_store_f16"), 3, 6),
            RmsNorm => ("rms_norm", spv!("rms_norm"), 3, 6),
            Binary => ("binary", spv!("binary"), 2, 5),
            Rope => ("rope", spv!("rope"), 2, 7),
            Raster => ("raster", spv!("raster"), 2, 11),
        }
    }
}
