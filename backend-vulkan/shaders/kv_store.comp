#version 450
#extension GL_GOOGLE_include_directive : require
// Stores `n` consecutive f32 elements (whole rows of `width`) into one layer of a KV cache
// buffer, from the row of the step's first position on, as f32 (KV_F32) or as f16 rounded
// to nearest even (KV_F16, two elements per word: one thread per word, keeping the half of an
// edge word that lies outside the range). The position is read from a buffer, not pushed, so
// a recording serves every step; rows that would pass the layer's end are not written.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };
layout(std430, binding = 2) readonly buffer Step { uint step[]; };

layout(push_constant) uniform Params {
    uint n;
    uint src_off;
    uint layer_off; // elements of the cache: the layer's first row
    uint width;     // elements per row
    uint capacity;  // elements per layer
    uint pos_off;   // word of `step` holding the first position
} p;

#include "common.glsl"

void main() {
    uint idx = group_index() * 64u + gl_LocalInvocationID.x;
    uint first = step[p.pos_off];
    if (first > p.capacity / max(p.width, 1u) || first * p.width > p.capacity - p.n) {
        return;
    }
    uint dst = p.layer_off + first * p.width;
#if defined(KV_F32)
    if (idx >= p.n) {
        return;
    }
    cache[dst + idx] = floatBitsToUint(src[p.src_off + idx]);
#elif defined(KV_F16)
    uint first_word = dst / 2u;
    uint last_word = (dst + p.n - 1u) / 2u;
    uint word = first_word + idx;
    if (p.n == 0u || word > last_word) {
        return;
    }
    uint bits = cache[word];
    for (uint k = 0u; k < 2u; k++) {
        uint e = 2u * word + k;
        if (e >= dst && e < dst + p.n) {
            uint h = f32_to_f16_bits(src[p.src_off + (e - dst)]);
            bits = (bits & ~(0xffffu << (16u * k))) | (h << (16u * k));
        }
    }
    cache[word] = bits;
#else
#error "no cache format defined"
#endif
}
