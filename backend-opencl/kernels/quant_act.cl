// Activations rounded to Q8_0 for the fast matmuls (gemv.cl, gemm.cl), as round_act.cl and
// core/src/numerics/activation.rs round them (ggml's SIMD quantize_row_q8_0), but kept as
// what they are: per 32-element block, codes q = rint(x * 127 / amax) and the f16 scale d16,
// the rounded values being d16 * q. With them goes Q8_1's block sum s = f16(d * Σq) (d the
// unrounded scale), which Q4_1 weights multiply by their minimum, as matmul.cl's q8_1_sum
// computes it. A block holding a NaN or an infinity (some q is NaN: its rounded values are
// NaN) gets a NaN scale, so its products are NaN as the reference's are.
//
// One work-item per block: `blocks` blocks of `x` from element `x_off`; codes (8 words per
// block, byte i of word j: element 4j + i) into `xq` from word `code_off`, scales and sums
// as f32 words from `scale_off` and `sum_off`.
__kernel void quant_act(__global const float *x, __global uint *xq, const uint blocks,
                        const uint x_off, const uint code_off, const uint scale_off,
                        const uint sum_off) {
    uint g = get_global_id(0);
    if (g >= blocks) {
        return;
    }
    uint at = x_off + g * 32u;
    float amax = 0.0f;
    for (uint i = 0u; i < 32u; i++) {
        amax = fmax(amax, fabs(x[at + i]));
    }
    float d = div_rn(amax, 127.0f);
    float id = amax != 0.0f ? div_rn(127.0f, amax) : 0.0f;
    float sum = 0.0f;
    bool nan = false;
    for (uint j = 0u; j < 8u; j++) {
        uint word = 0u;
        for (uint i = 0u; i < 4u; i++) {
            float q = rint(x[at + 4u * j + i] * id);
            nan = nan || isnan(q);
            sum = sum + q;
            word |= ((uint)(int)q & 0xffu) << (8u * i);
        }
        xq[code_off + g * 8u + j] = word;
    }
    float s = d * sum;
    float r = round_f16(s);
    xq[scale_off + g] = as_uint(nan ? NAN : round_f16(d));
    xq[sum_off + g] = as_uint(isinf(r) ? s : r);
}
