#version 450
#extension GL_GOOGLE_include_directive : require
// Stores `n` consecutive f32 elements into a KV cache buffer from element `dst` on, as f32
// (KV_F32) or as f16 rounded to nearest even (KV_F16, two elements per word: one thread per
// word, keeping the half of an edge word that lies outside the range).

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Cache { uint cache[]; };

layout(push_constant) uniform Params {
    uint n;
    uint src_off;
    uint dst; // elements of the cache
} p;

#include "common.glsl"

void main() {
    uint idx = group_index() * 64u + gl_LocalInvocationID.x;
#if defined(KV_F32)
    if (idx >= p.n) {
        return;
    }
    cache[p.dst + idx] = floatBitsToUint(src[p.src_off + idx]);
#elif defined(KV_F16)
    uint first_word = p.dst / 2u;
    uint last_word = (p.dst + p.n - 1u) / 2u;
    uint word = first_word + idx;
    if (p.n == 0u || word > last_word) {
        return;
    }
    uint bits = cache[word];
    for (uint k = 0u; k < 2u; k++) {
        uint e = 2u * word + k;
        if (e >= p.dst && e < p.dst + p.n) {
            uint h = f32_to_f16_bits(src[p.src_off + (e - p.dst)]);
            bits = (bits & ~(0xffffu << (16u * k))) | (h << (16u * k));
        }
    }
    cache[word] = bits;
#else
#error "no cache format defined"
#endif
}
