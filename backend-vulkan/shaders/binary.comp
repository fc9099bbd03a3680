#version 450
#extension GL_GOOGLE_include_directive : require
// x[i] = op(x[i], y[j]) with j = i, or i % period (a bias broadcast over rows).
// op 0: x + y (add, add_bias); op 1: silu(x) * y (swiglu), with SiLU as the reference's
// `ggml_math::silu`: x / (1 + ggml_expf(0 - x)), the division rounded as IEEE rounds it.

layout(local_size_x = 64) in;

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };

layout(push_constant) uniform Params {
    uint n;
    uint x_off;
    uint y_off;
    uint period; // 0: no broadcast
    uint op;
} p;

#include "common.glsl"
#include "ggml_math.glsl"

void main() {
    uint i = group_index() * 64u + gl_LocalInvocationID.x;
    if (i >= p.n) {
        return;
    }
    uint j = p.period == 0u ? i : i % p.period;
    float a = x[p.x_off + i];
    float b = y[p.y_off + j];
    if (p.op == 0u) {
        x[p.x_off + i] = a + b;
    } else {
        precise float neg = 0.0 - a;
        precise float den = 1.0 + ggml_expf(neg);
        precise float g = div_rn(a, den) * b;
        x[p.x_off + i] = g;
    }
}
