#version 450
#extension GL_GOOGLE_include_directive : require
// One strided region copy (core/src/region): step (i, j, k) of a size[0] x size[1] x
// size[2] box copies src[src_off + i*ss0 + j*ss1 + k*ss2] to dst[dst_off + i*ds0 + j*ds1 +
// k*ds2]. Elements are 32-bit words of any type; one thread per step.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Src { uint src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform Params {
    uint src_off;
    uint dst_off;
    uint n0;
    uint n1;
    uint n2;
    uint ss0;
    uint ss1;
    uint ss2;
    uint ds0;
    uint ds1;
    uint ds2;
} p;

#include "common.glsl"

void main() {
    uint idx = group_index() * 64u + gl_LocalInvocationID.x;
    if (idx >= p.n0 * p.n1 * p.n2) {
        return;
    }
    uint k = idx % p.n2;
    uint j = (idx / p.n2) % p.n1;
    uint i = idx / (p.n2 * p.n1);
    dst[p.dst_off + i * p.ds0 + j * p.ds1 + k * p.ds2] =
        src[p.src_off + i * p.ss0 + j * p.ss1 + k * p.ss2];
}
