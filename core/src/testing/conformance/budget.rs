//! How much work each property of the suite takes: case counts and largest shapes, full on
//! native hardware and cut where every instruction is emulated (qemu runs the aarch64 tests).

/// Case counts and shape limits of the suite's properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Cases of each format's `gemm_codes` property.
    pub gemm_codes_cases: u32,
    /// Rows of a `gemm_codes` problem: `1..gemm_codes_rows`.
    pub gemm_codes_rows: usize,
    /// Cases of the run that quantizes and multiplies any format at once.
    pub fuzz_cases: u32,
    /// Rows of its problems: `1..fuzz_rows`.
    pub fuzz_rows: usize,
    /// Cases of each float-kernel property.
    pub float_cases: u32,
    /// Columns of a `gemm_f32` panel: `1..gemm_f32_cols`.
    pub gemm_f32_cols: usize,
    /// Tokens of a `gemm_f32` call: `1..=gemm_f32_tokens`.
    pub gemm_f32_tokens: usize,
    /// Lengths of the dot products and `axpy`: `0..vector_len`.
    pub vector_len: usize,
    /// Rows of a `dot_rows` block: `0..=dot_rows`.
    pub dot_rows: usize,
    /// Cases of the random `exp` and `swiglu` property.
    pub exp_cases: u32,
    /// Every bit pattern within this many ulps of each `exp` threshold is tested.
    pub exp_dense_ulps: u32,
    /// Every `exp_sweep_stride`-th bit pattern of all floats is tested.
    pub exp_sweep_stride: usize,
}

impl Budget {
    /// For kernels that run natively.
    pub const NATIVE: Budget = Budget {
        gemm_codes_cases: 64,
        gemm_codes_rows: 40,
        fuzz_cases: 3000,
        fuzz_rows: 40,
        float_cases: 200,
        gemm_f32_cols: 150,
        gemm_f32_tokens: 12,
        vector_len: 300,
        dot_rows: 40,
        exp_cases: 1000,
        exp_dense_ulps: 1 << 16,
        exp_sweep_stride: 4093,
    };

    /// For kernels whose tests usually run emulated (emulated float is slow).
    pub const EMULATED: Budget = Budget {
        gemm_codes_cases: 24,
        gemm_codes_rows: 30,
        fuzz_cases: 200,
        fuzz_rows: 24,
        float_cases: 48,
        gemm_f32_cols: 70,
        gemm_f32_tokens: 9,
        vector_len: 150,
        dot_rows: 12,
        exp_cases: 300,
        exp_dense_ulps: 1 << 12,
        exp_sweep_stride: 65521,
    };
}
