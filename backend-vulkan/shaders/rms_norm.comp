#version 450
#extension GL_GOOGLE_include_directive : require
// out = w * (x / sqrt(mean(x^2) + eps)) for each `cols`-wide row; one workgroup per row.
// With out == x it is the in-place head norm: each thread writes only what it read.

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

shared float partial[64];

void main() {
    uint r = group_index();
    if (r >= p.rows) {
        return;
    }
    uint tid = gl_LocalInvocationID.x;
    uint base = r * p.cols;
    float ss = 0.0;
    for (uint i = tid; i < p.cols; i += 64u) {
        float v = x[p.x_off + base + i];
        ss += v * v;
    }
    partial[tid] = ss;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        barrier();
    }
    float mean = partial[0] / float(p.cols);
    float scale = 1.0 / sqrt(mean + p.eps);
    for (uint i = tid; i < p.cols; i += 64u) {
        precise float v = w[p.w_off + i] * (scale * x[p.x_off + base + i]);
        y[p.out_off + base + i] = v;
    }
}
