#version 450
#extension GL_GOOGLE_include_directive : require
// Rounds activations to the format a matmul multiplies them in, as
// core/src/backend/reference/activation.rs does: ACT_F16 element-wise; ACT_Q8_0 in
// 32-element blocks (ggml's SIMD quantize_row_q8_0).
// One thread per block; a partial block at the end is copied unchanged.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Params {
    uint n;       // elements
    uint x_off;
    uint out_off;
} p;

#include "common.glsl"

#if defined(ACT_F16)
#define BLOCK 1u
#elif defined(ACT_Q8_0)
#define BLOCK 32u
#else
#error "no activation format defined"
#endif

void main() {
    uint b = group_index() * 64u + gl_LocalInvocationID.x;
    uint start = b * BLOCK;
    if (start >= p.n) {
        return;
    }
    if (start + BLOCK > p.n) {
        for (uint i = start; i < p.n; i++) {
            y[p.out_off + i] = x[p.x_off + i];
        }
        return;
    }
#if defined(ACT_F16)
    y[p.out_off + start] = round_f16(x[p.x_off + start]);
#elif defined(ACT_Q8_0)
    float amax = 0.0;
    for (uint i = 0u; i < BLOCK; i++) {
        amax = max(amax, abs(x[p.x_off + start + i]));
    }
    float d = div_rn(amax, 127.0);
    float d16 = round_f16(d);
    float id = amax != 0.0 ? div_rn(127.0, amax) : 0.0;
    for (uint i = 0u; i < BLOCK; i++) {
        precise float scaled = x[p.x_off + start + i] * id;
        precise float v = d16 * roundEven(scaled);
        y[p.out_off + start + i] = v;
    }
#endif
}
