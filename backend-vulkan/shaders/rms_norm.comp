#version 450
#extension GL_GOOGLE_include_directive : require
// out = w * (x / sqrt(mean(x^2) + eps)) for each `cols`-wide row; one workgroup per row.
// The scale follows the reference (core/src/backend/reference/norm.rs, ggml's): squares in
// f32 summed in order in f64 (here a float pair), the mean rounded to f32, then an IEEE
// square root and division. With out == x it is the in-place head norm: each thread writes
// only what it read.

layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) buffer Out { float y[]; };

layout(push_constant) uniform Params {
    uint rows;
    uint cols;
    uint x_off;
    uint w_off;
    uint out_off;
    float eps;
} p;

#include "common.glsl"
#include "ggml_math.glsl"

shared float row_scale;

void main() {
    uint r = group_index();
    if (r >= p.rows) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint base = r * p.cols;
    if (tid == 0u) {
        vec2 ss = vec2(0.0);
        for (uint i = 0u; i < p.cols; i++) {
            float v = x[p.x_off + base + i];
            precise float sq = v * v;
            df_add(ss, sq);
        }
        // (hi + lo) / n to the nearest f32: the pair's quotient and one exact correction.
        float n = float(p.cols);
        precise float q0 = div_rn(ss.x, n);
        precise float rem = fma_rn(-q0, n, ss.x) + ss.y;
        precise float mean = q0 + div_rn(rem, n);
        precise float m = mean + p.eps;
        row_scale = div_rn(1.0, sqrt_rn(m));
    }
    barrier();
    float scale = row_scale;
    for (uint i = tid; i < p.cols; i += 64u) {
        precise float v = w[p.w_off + i] * (scale * x[p.x_off + base + i]);
        y[p.out_off + base + i] = v;
    }
}
