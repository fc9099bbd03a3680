#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// out[t][r] = dot(row r of W, x[t]) in f16 arithmetic (the paper's W4A16 on GPUs, for
// devices with shaderFloat16): weights dequantized to f16, activations already rounded to
// f16 (round_act.comp), products and each block's sum in f16, the blocks accumulated in f32.
// Faster where f16 math is (phone GPUs run it at twice the f32 rate), but not the
// reference's bits: the tests hold it to a bound instead. One thread per (row, token).

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
    uint x0_off;  // unused here
} p;

#include "common.glsl"
#include "formats.glsl"
#include "interleaved.glsl"

void main() {
    uint r = group_index() * 64u + gl_LocalInvocationID.x;
    if (r >= p.rows) {
        return;
    }
    uint t = gl_WorkGroupID.z;
    uint nb = p.cols / BLOCK_LEN;
    uint xrow = p.x_off + t * p.cols;
    float acc = 0.0;
    for (uint b = 0u; b < nb; b++) {
        uint block = block_at(r, b, nb);
        uint xb = xrow + b * BLOCK_LEN;
        float16_t partial = float16_t(0.0);
        for (uint i = 0u; i < BLOCK_LEN; i++) {
            partial += float16_t(dequant_one(block, i)) * float16_t(x[xb + i]);
        }
        acc += float(partial);
    }
    y[p.out_off + t * p.rows + r] = acc;
}
