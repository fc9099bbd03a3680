#version 450
#extension GL_GOOGLE_include_directive : require
// out[t][r] = dot(row r of W, x[t]) with f32 accumulation. `x` is already rounded to the
// activation format of W's type (round_act.comp), as the reference rounds it. One
// workgroup per (row, token); its threads take the row's blocks in turn, then reduce.

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
} p;

#include "common.glsl"
#include "formats.glsl"

shared float partial[64];

void main() {
    uint r = group_index();
    if (r >= p.rows) {
        return;
    }
    uint t = gl_WorkGroupID.z;
    uint tid = gl_LocalInvocationID.x;
    uint nb = p.cols / BLOCK_LEN;
    uint row = p.w_off + r * nb * BLOCK_BYTES;
    uint xrow = p.x_off + t * p.cols;
    float acc = 0.0;
    for (uint b = tid; b < nb; b += 64u) {
        uint block = row + b * BLOCK_BYTES;
        uint xb = xrow + b * BLOCK_LEN;
        for (uint i = 0u; i < BLOCK_LEN; i++) {
            acc += dequant_one(block, i) * x[xb + i];
        }
    }
    partial[tid] = acc;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        barrier();
    }
    if (tid == 0u) {
        y[p.out_off + t * p.rows + r] = partial[0];
    }
}
