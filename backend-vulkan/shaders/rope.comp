#version 450
#extension GL_GOOGLE_include_directive : require
// Rotates the first 2*half dimensions of every head of every token row in place. The
// (cos, sin) of each (token, pair) come from a table the host computes with the reference's
// own angle function, since GPU sin/cos are only accurate to about 2^-11.
// style 0: pairs (2i, 2i+1) (llama "normal"); style 1: pairs (i, i + half) ("neox").

layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Table { vec2 cos_sin[]; };

layout(push_constant) uniform Params {
    uint n_tokens;
    uint n_heads;
    uint head_dim;
    uint half_dim;
    uint style;
    uint x_off;
    uint table_off; // in (cos, sin) pairs
} p;

#include "common.glsl"

void main() {
    uint idx = group_index() * 64u + gl_LocalInvocationID.x;
    uint per_token = p.n_heads * p.half_dim;
    if (idx >= p.n_tokens * per_token) {
        return;
    }
    uint t = idx / per_token;
    uint h = (idx % per_token) / p.half_dim;
    uint i = idx % p.half_dim;
    uint head = p.x_off + (t * p.n_heads + h) * p.head_dim;
    uint a = p.style == 0u ? head + 2u * i : head + i;
    uint b = p.style == 0u ? a + 1u : a + p.half_dim;
    vec2 cs = cos_sin[p.table_off + t * p.half_dim + i];
    float v0 = x[a];
    float v1 = x[b];
    precise float s1 = v1 * cs.y;
    precise float r0 = fma_rn(v0, cs.x, -s1);
    precise float c1 = v1 * cs.x;
    precise float r1 = fma_rn(v0, cs.y, c1);
    x[a] = r0;
    x[b] = r1;
}
