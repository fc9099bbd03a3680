#version 450
#extension GL_GOOGLE_include_directive : require
// Causal grouped-query attention over a KV cache laid out [layer][pos][width], in the
// reference's arithmetic (core/src/backend/reference/attention.rs, which is llama.cpp's):
// query row t (position first + t), head h reads KV head h / group over positions
// 0..=first + t. Each score is a dot product summed in ggml's lane order (16 lanes for head
// dims that are multiples of 16, else 64 lanes and a tail added in f64), scaled; the softmax
// takes ggml's exp, sums each group of 16 positions by halving and adds the groups in f64;
// the output is the probability-weighted sum of values in the same lane order. With an f16
// cache (KV_F16) the query and the probabilities are rounded to f16 first. One workgroup per
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
#include "ggml_math.glsl"

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
shared float inv_total;

// Lane sums of ggml's f16 dot kernels: tinyBLAS's 16 lanes (head dims that are multiples of
// 16) or ggml_vec_dot_f16's 64 (`ggml_math::DotOrder`).
float halving(inout float lanes[64], uint width) {
    for (uint w = width / 2u; w > 0u; w /= 2u) {
        for (uint i = 0u; i < w; i++) {
            precise float s = lanes[i] + lanes[i + w];
            lanes[i] = s;
        }
    }
    return lanes[0];
}

// The scaled score of the query against the key row at element `k`.
float score(uint k, uint hd, uint lanes_n) {
    float lanes[64];
    for (uint i = 0u; i < 64u; i++) {
        lanes[i] = 0.0;
    }
    uint vectorized = hd / lanes_n * lanes_n;
    for (uint i = 0u; i < vectorized; i++) {
        uint l = i % lanes_n;
        precise float v = fma_rn(qs[i], kv_at(k + i, true), lanes[l]);
        lanes[l] = v;
    }
    vec2 sum = vec2(halving(lanes, lanes_n), 0.0);
    for (uint i = vectorized; i < hd; i++) {
        precise float prod = qs[i] * kv_at(k + i, true);
        df_add(sum, prod);
    }
    precise float s = df_value(sum) * p.scale;
    return s;
}

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
    uint lanes_n = hd % 16u == 0u ? 16u : 64u;

    for (uint i = tid; i < hd; i += 64u) {
        qs[i] = act(q[p.q_off + (t * p.n_head + h) * hd + i]);
    }
    barrier();

    float local_max = uintBitsToFloat(0xff800000u);
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        float s = score(kv_base + pos * p.width, hd, lanes_n);
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

    for (uint pos = tid; pos < n_pos; pos += 64u) {
        precise float x = scores[srow + pos] - m;
        scores[srow + pos] = ggml_expf(x);
    }
    memoryBarrierBuffer();
    barrier();

    // Groups of 16 positions summed by halving, the groups added in order (f64 in the
    // reference): one thread, as the order is sequential.
    if (tid == 0u) {
        vec2 total = vec2(0.0);
        for (uint g = 0u; g < n_pos; g += 16u) {
            float lanes[64];
            for (uint l = 0u; l < 16u; l++) {
                lanes[l] = g + l < n_pos ? scores[srow + g + l] : 0.0;
            }
            df_add(total, halving(lanes, 16u));
        }
        inv_total = df_recip(total);
    }
    barrier();
    float inv = inv_total;
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        precise float pr = scores[srow + pos] * inv;
        scores[srow + pos] = act(pr);
    }
    memoryBarrierBuffer();
    barrier();

    // Values: lane `pos % lanes` of the padded positions; the padding's zero products leave
    // the lanes as they are.
    for (uint i = tid; i < hd; i += 64u) {
        float lanes[64];
        for (uint l = 0u; l < 64u; l++) {
            lanes[l] = 0.0;
        }
        for (uint pos = 0u; pos < n_pos; pos++) {
            uint l = pos % lanes_n;
            precise float v = fma_rn(scores[srow + pos], kv_at(kv_base + pos * p.width + i, false), lanes[l]);
            lanes[l] = v;
        }
        y[p.out_off + (t * p.n_head + h) * hd + i] = halving(lanes, lanes_n);
    }
}
