#version 450
#extension GL_GOOGLE_include_directive : require
// out[t][r] = dot(row r of W, x[t]) with f32 accumulation. `x` is already rounded to the
// activation format of W's type (round_act.comp), as the reference rounds it. One thread per
// (row, token) sums the products left to right, unfused, in the reference's own order, so a
// row's result carries the reference's bits (core/src/backend/reference/matmul.rs): on
// random-weight models a last-bit difference here can cross a rounding step of the next
// quantized activation and grow into percent-level drift.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Params {
    uint rows;
    uint cols;
    uint w_off;   // bytes
    uint x_off;   // elements
    uint out_off; // elements
    uint x0_off;  // elements of the unrounded activations (formats with a minimum)
} p;

#include "common.glsl"
#include "formats.glsl"
#include "interleaved.glsl"

#if defined(HAS_MIN)
// Q4_1 and Q5_1 pair with Q8_1 activations (the reference's dot_row_with_minimum): per block
// Σ (d q_i) x_i over the rounded activations, plus m * s, with s the activations' block sum
// as Q8_1 stores it (in f16 where finite), computed from the unrounded activations.
layout(std430, binding = 3) readonly buffer X0 { float x0[]; };

float q8_1_sum(uint xb) {
    float amax = 0.0;
    for (uint i = 0u; i < 32u; i++) {
        amax = max(amax, abs(x0[xb + i]));
    }
    float d = div_rn(amax, 127.0);
    float id = amax != 0.0 ? div_rn(127.0, amax) : 0.0;
    precise float sum = 0.0;
    for (uint i = 0u; i < 32u; i++) {
        precise float scaled = x0[xb + i] * id;
        sum = sum + roundEven(scaled);
    }
    precise float s = d * sum;
    float r = round_f16(s);
    return isinf(r) ? s : r;
}
#endif

void main() {
    uint r = group_index() * 64u + gl_LocalInvocationID.x;
    if (r >= p.rows) {
        return;
    }
    uint t = gl_WorkGroupID.z;
    uint nb = p.cols / BLOCK_LEN;
    uint xrow = p.x_off + t * p.cols;
    precise float acc = 0.0;
    for (uint b = 0u; b < nb; b++) {
        uint block = block_at(r, b, nb);
        uint xb = xrow + b * BLOCK_LEN;
        for (uint i = 0u; i < BLOCK_LEN; i++) {
            precise float product = dequant_one(block, i) * x[xb + i];
            acc = acc + product;
        }
#if defined(HAS_MIN)
        precise float ms = block_min(block) * q8_1_sum(p.x0_off + t * p.cols + b * 32u);
        acc = acc + ms;
#endif
    }
    y[p.out_off + t * p.rows + r] = acc;
}
