// Rounds activations to the format a matmul multiplies them in, as
// core/src/backend/reference/activation.rs does: ACT_F16 element-wise; ACT_Q8_0 in
// 32-element blocks (ggml's SIMD quantize_row_q8_0). One work-item per block; a partial
// block at the end is copied unchanged.

#if defined(ACT_F16)
#define BLOCK 1u
#elif defined(ACT_Q8_0)
#define BLOCK 32u
#else
#error "no activation format defined"
#endif

// `n` elements of `x` from element `x_off` into `y` from element `out_off`.
__kernel void round_act(__global const float *x, __global float *y, const uint n,
                        const uint x_off, const uint out_off) {
    uint start = get_global_id(0) * BLOCK;
    if (start >= n) {
        return;
    }
    if (start + BLOCK > n) {
        for (uint i = start; i < n; i++) {
            y[out_off + i] = x[x_off + i];
        }
        return;
    }
#if defined(ACT_F16)
    y[out_off + start] = round_f16(x[x_off + start]);
#else
    float amax = 0.0f;
    for (uint i = 0u; i < BLOCK; i++) {
        amax = fmax(amax, fabs(x[x_off + start + i]));
    }
    float d = div_rn(amax, 127.0f);
    float d16 = round_f16(d);
    float id = amax != 0.0f ? div_rn(127.0f, amax) : 0.0f;
    for (uint i = 0u; i < BLOCK; i++) {
        y[out_off + start + i] = d16 * rint(x[x_off + start + i] * id);
    }
#endif
}
