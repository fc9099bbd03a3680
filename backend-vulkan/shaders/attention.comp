#version 450
#extension GL_GOOGLE_include_directive : require
// Causal grouped-query attention over a KV cache laid out [layer][pos][width], as
// core/src/backend/reference/attention.rs: query row t (position first + t), head h reads
// KV head h / group over positions 0..=first + t; scores scaled, softmax in f32, then the
// probability-weighted sum of values. With an f16 cache (KV_F16) the query and the
// probabilities are rounded to f16 first, as the reference does. One workgroup per
// (head, token); scores go to a scratch buffer, one `n_ctx`-long row per (token, head).
// The first position is read from a buffer, not pushed, so one recording serves every step;
// a step that would pass the cache's end writes nothing.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { uint keys[]; };
layout(std430, binding = 2) readonly buffer V { uint values[]; };
layout(std430, binding = 3) coherent buffer Scores { float scores[]; };
layout(std430, binding = 4) writeonly buffer Out { float y[]; };
layout(std430, binding = 5) readonly buffer Step { uint step[]; };

layout(push_constant) uniform Params {
    uint n_head;
    uint group;     // query heads per KV head
    uint head_dim;
    uint width;     // KV row width
    uint layer_off; // elements: layer * n_ctx * width
    uint pos_off;   // word of `step` holding the first position
    uint q_off;
    uint out_off;
    uint scores_off;
    uint n_ctx;
    float scale;
} p;

#include "common.glsl"

#define MAX_HEAD_DIM 1024u

#if defined(KV_F16)
float kv_at(uint e, bool is_key) {
    uint word = is_key ? keys[e >> 1] : values[e >> 1];
    return f16_bits_to_f32((word >> ((e & 1u) * 16u)) & 0xffffu);
}
float act(float v) {
    return round_f16(v);
}
#elif defined(KV_F32)
float kv_at(uint e, bool is_key) {
    return uintBitsToFloat(is_key ? keys[e] : values[e]);
}
float act(float v) {
    return v;
}
#else
#error "no cache format defined"
#endif

shared float qs[MAX_HEAD_DIM];
shared float red[64];

void main() {
    uint h = gl_WorkGroupID.x;
    uint t = gl_WorkGroupID.y;
    uint tid = gl_LocalInvocationID.x;
    uint hd = p.head_dim;
    uint first = step[p.pos_off];
    if (first >= p.n_ctx || t >= p.n_ctx - first) {
        return;
    }
    uint n_pos = first + t + 1u;
    uint kv_base = p.layer_off + (h / p.group) * hd;
    uint srow = p.scores_off + (t * p.n_head + h) * p.n_ctx;

    for (uint i = tid; i < hd; i += 64u) {
        qs[i] = act(q[p.q_off + (t * p.n_head + h) * hd + i]);
    }
    barrier();

    float local_max = uintBitsToFloat(0xff800000u);
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        uint k = kv_base + pos * p.width;
        float s = 0.0;
        for (uint i = 0u; i < hd; i++) {
            s += qs[i] * kv_at(k + i, true);
        }
        s *= p.scale;
        scores[srow + pos] = s;
        local_max = max(local_max, s);
    }
    red[tid] = local_max;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) {
            red[tid] = max(red[tid], red[tid + s]);
        }
        barrier();
    }
    float m = red[0];
    barrier();

    float local_sum = 0.0;
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        float e = exp(scores[srow + pos] - m);
        scores[srow + pos] = e;
        local_sum += e;
    }
    red[tid] = local_sum;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) {
            red[tid] += red[tid + s];
        }
        barrier();
    }
    float inv = 1.0 / red[0];
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        scores[srow + pos] = act(scores[srow + pos] * inv);
    }
    memoryBarrierBuffer();
    barrier();

    for (uint i = tid; i < hd; i += 64u) {
        float o = 0.0;
        for (uint pos = 0u; pos < n_pos; pos++) {
            o += scores[srow + pos] * kv_at(kv_base + pos * p.width + i, false);
        }
        y[p.out_off + (t * p.n_head + h) * hd + i] = o;
    }
}
