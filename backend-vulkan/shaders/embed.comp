#version 450
#extension GL_GOOGLE_include_directive : require
// out[t] = row tokens[t] of the table, decoded to f32; a token past the last row gives zeros.
// One thread per output element.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Table { uint wq[]; };
layout(std430, binding = 1) readonly buffer Tokens { uint tokens[]; };
layout(std430, binding = 2) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Params {
    uint rows;
    uint cols;
    uint n_tokens;
    uint w_off;   // bytes
    uint tok_off; // elements
    uint out_off; // elements
} p;

#include "common.glsl"
#include "formats.glsl"

void main() {
    uint idx = group_index() * 64u + gl_LocalInvocationID.x;
    if (idx >= p.n_tokens * p.cols) {
        return;
    }
    uint t = idx / p.cols;
    uint j = idx % p.cols;
    uint token = tokens[p.tok_off + t];
    float v = 0.0;
    if (token < p.rows) {
        uint nb = p.cols / BLOCK_LEN;
        uint block = p.w_off + (token * nb + j / BLOCK_LEN) * BLOCK_BYTES;
        v = dequant_one(block, j % BLOCK_LEN);
    }
    y[p.out_off + idx] = v;
}
