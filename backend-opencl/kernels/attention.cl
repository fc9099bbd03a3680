// Causal grouped-query attention over a KV cache laid out [layer][pos][width], in the
// reference's arithmetic (core/src/backend/reference/attention.rs, which is llama.cpp's):
// query row t (position first + t), head h reads KV head h / group over positions
// 0..=first + t. Each score is a dot product summed in ggml's lane order (16 lanes for head
// dims that are multiples of 16, else 64 lanes and a tail added in f64), scaled; the softmax
// takes ggml's exp, sums each group of 16 positions by halving and adds the groups in f64;
// the output is the probability-weighted sum of values in the same lane order. With an f16
// cache (KV_F16) the query and the probabilities are rounded to f16 first. One work-group
// of 64 per (head, token); scores go to a scratch buffer, one `n_ctx`-long row per (token,
// head). The first position is read from a buffer, not passed, so one batch serves every
// step; a step that would pass the cache's end writes nothing.

#define MAX_HEAD_DIM 1024u

#if defined(KV_F16)
// f16 elements widened exactly (every f16 is an f32), so no cl_khr_fp16 is needed.
typedef half kv_elem;
float kv_at(__global const half *cache, uint e) {
    return vload_half(e, cache);
}
float act(float v) {
    return round_f16(v);
}
#elif defined(KV_F32)
typedef float kv_elem;
float kv_at(__global const float *cache, uint e) {
    return cache[e];
}
float act(float v) {
    return v;
}
#else
#error "no cache format defined"
#endif

// Lane sums of ggml's f16 dot kernels: tinyBLAS's 16 lanes (head dims that are multiples of
// 16) or ggml_vec_dot_f16's 64 (`ggml_math::DotOrder`).
float halving(float *lanes, uint width) {
    for (uint w = width / 2u; w > 0u; w /= 2u) {
        for (uint i = 0u; i < w; i++) {
            lanes[i] = lanes[i] + lanes[i + w];
        }
    }
    return lanes[0];
}

// The scaled score of the query `qs` against the key row at element `k`.
float score(__local const float *qs, __global const kv_elem *keys, uint k, uint hd,
            uint lanes_n, float scale) {
    float lanes[64];
    for (uint i = 0u; i < 64u; i++) {
        lanes[i] = 0.0f;
    }
    uint vectorized = hd / lanes_n * lanes_n;
    for (uint i = 0u; i < vectorized; i++) {
        uint l = i % lanes_n;
        lanes[l] = fma_rn(qs[i], kv_at(keys, k + i), lanes[l]);
    }
    float2 sum = (float2)(halving(lanes, lanes_n), 0.0f);
    for (uint i = vectorized; i < hd; i++) {
        sum = df_add(sum, qs[i] * kv_at(keys, k + i));
    }
    return df_value(sum) * scale;
}

__kernel void attention(__global const float *q, __global const kv_elem *keys,
                        __global const kv_elem *values, __global float *scores,
                        __global float *y, __global const uint *step, const uint n_head,
                        const uint group, const uint head_dim, const uint width,
                        const uint layer_off, const uint pos_off, const uint q_off,
                        const uint out_off, const uint scores_off, const uint n_ctx,
                        const float scale) {
    __local float qs[MAX_HEAD_DIM];
    __local float red[64];
    __local float inv_total;

    uint h = get_group_id(0);
    uint t = get_group_id(1);
    uint tid = get_local_id(0);
    uint hd = head_dim;
    uint first = step[pos_off];
    // All or nothing, as `kv_store` stores: the step's rows (one per work-group along the
    // second dimension) must all lie in the cache.
    if (first > n_ctx || get_num_groups(1) > n_ctx - first) {
        return;
    }
    uint n_pos = first + t + 1u;
    uint kv_base = layer_off + (h / group) * hd;
    uint srow = scores_off + (t * n_head + h) * n_ctx;
    uint lanes_n = hd % 16u == 0u ? 16u : 64u;

    for (uint i = tid; i < hd; i += 64u) {
        qs[i] = act(q[q_off + (t * n_head + h) * hd + i]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    float local_max = as_float(0xff800000u);
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        float s = score(qs, keys, kv_base + pos * width, hd, lanes_n, scale);
        scores[srow + pos] = s;
        local_max = fmax(local_max, s);
    }
    red[tid] = local_max;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) {
            red[tid] = fmax(red[tid], red[tid + s]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float m = red[0];

    for (uint pos = tid; pos < n_pos; pos += 64u) {
        scores[srow + pos] = ggml_expf(scores[srow + pos] - m);
    }
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);

    // Groups of 16 positions summed by halving, the groups added in order (f64 in the
    // reference): one work-item, as the order is sequential.
    if (tid == 0u) {
        float2 total = (float2)(0.0f, 0.0f);
        for (uint g = 0u; g < n_pos; g += 16u) {
            float lanes[16];
            for (uint l = 0u; l < 16u; l++) {
                lanes[l] = g + l < n_pos ? scores[srow + g + l] : 0.0f;
            }
            total = df_add(total, halving(lanes, 16u));
        }
        inv_total = df_recip(total);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float inv = inv_total;
    for (uint pos = tid; pos < n_pos; pos += 64u) {
        scores[srow + pos] = act(scores[srow + pos] * inv);
    }
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);

    // Values: lane `pos % lanes` of the padded positions; the padding's zero products leave
    // the lanes as they are.
    for (uint i = tid; i < hd; i += 64u) {
        float lanes[64];
        for (uint l = 0u; l < 64u; l++) {
            lanes[l] = 0.0f;
        }
        for (uint pos = 0u; pos < n_pos; pos++) {
            uint l = pos % lanes_n;
            lanes[l] = fma_rn(scores[srow + pos], kv_at(values, kv_base + pos * width + i),
                              lanes[l]);
        }
        y[out_off + (t * n_head + h) * hd + i] = halving(lanes, lanes_n);
    }
}
