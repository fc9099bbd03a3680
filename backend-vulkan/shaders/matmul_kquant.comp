#version 450
#extension GL_GOOGLE_include_directive : require
// out[t][r] = dot(row r of W, x[t]) for K-quant weights (Q4_K, Q5_K, Q6_K), in the
// reference's arithmetic (core/src/backend/reference/ggml_kquant.rs, which is llama.cpp's
// on x86): each 256-element super-block of x is quantized to Q8_K, the sub-blocks' products
// are summed exactly in integers with the weights' integer scales (s1) and minimums (s2),
// and only then do floats start, in ggml's two patterns: once per super-block for Q5_K and
// Q6_K (`v = s1 d - dmin s2`, `acc += v d_a`, both fused), once per pair of sub-blocks for
// Q4_K (`acc += s1 (d d_a)`, `acc_min += s2 (dmin d_a)`, the result `acc - acc_min`). One
// thread per (row, token) reads the unrounded activations and quantizes each super-block as
// it goes.

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Weights { uint wq[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) writeonly buffer Out { float y[]; };

layout(push_constant) uniform Params {
    uint rows;
    uint cols;
    uint w_off;   // bytes
    uint x_off;   // elements
    uint out_off; // elements
} p;

#include "common.glsl"

uint wbyte(uint at) {
    return (wq[at >> 2] >> ((at & 3u) * 8u)) & 0xffu;
}

float wf16(uint at) {
    return f16_bits_to_f32((wq[at >> 2] >> ((at & 2u) * 8u)) & 0xffffu);
}

// ggml's `nearest_int`: round half to even through the 1.5 * 2^23 shift.
int nearest_int(float v) {
    precise float s = v + 12582912.0;
    return int(floatBitsToUint(s) & 0x7fffffu) - 0x400000;
}

#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
#define SUB_LEN 32u
#define SUBS 8u
#define OFFSET 0
#if defined(FMT_Q5_K)
#define BLOCK_BYTES 176u
#define QS 48u
#else
#define BLOCK_BYTES 144u
#define QS 16u
#endif
// Six-bit scale and minimum of sub-block j (core/src/quant/kquant.rs, scale_min_k4).
ivec2 scale_min(uint block, uint j) {
    uint s = block + 4u;
    if (j < 4u) {
        return ivec2(int(wbyte(s + j) & 63u), int(wbyte(s + j + 4u) & 63u));
    }
    uint b = wbyte(s + j + 4u);
    return ivec2(int((b & 15u) | ((wbyte(s + j - 4u) >> 6) << 4)),
                 int((b >> 4) | ((wbyte(s + j) >> 6) << 4)));
}
// The unsigned code of weight i (4 bits, plus Q5_K's fifth).
int wcode(uint block, uint i) {
    uint c = i / 64u;
    uint hi = (i / 32u) & 1u;
    uint l = i & 31u;
    uint q = wbyte(block + QS + 32u * c + l);
    q = hi == 0u ? (q & 15u) : (q >> 4);
#if defined(FMT_Q5_K)
    q |= ((wbyte(block + 16u + l) >> (2u * c + hi)) & 1u) << 4;
#endif
    return int(q);
}
float block_d(uint block) {
    return wf16(block);
}
float block_dmin(uint block) {
    return wf16(block + 2u);
}
#elif defined(FMT_Q6_K)
#define BLOCK_BYTES 210u
#define SUB_LEN 16u
#define SUBS 16u
#define OFFSET 32
ivec2 scale_min(uint block, uint j) {
    return ivec2(int(wbyte(block + 192u + j) << 24) >> 24, 0);
}
// The unsigned 6-bit code of weight i (the offset of 32 is taken out in the sums).
int wcode(uint block, uint i) {
    uint n = i / 128u;
    uint k = (i / 32u) & 3u;
    uint l = i & 31u;
    uint ql = wbyte(block + 64u * n + l + ((k & 1u) * 32u));
    ql = k < 2u ? (ql & 15u) : (ql >> 4);
    uint qh = (wbyte(block + 128u + 32u * n + l) >> (2u * k)) & 3u;
    return int(ql | (qh << 4));
}
float block_d(uint block) {
    return wf16(block + 208u);
}
float block_dmin(uint block) {
    return 0.0;
}
#else
#error "no K-quant format defined"
#endif

#include "interleaved.glsl"

void main() {
    uint r = group_index() * 64u + gl_LocalInvocationID.x;
    if (r >= p.rows) {
        return;
    }
    uint t = gl_WorkGroupID.z;
    uint nb = p.cols / 256u;
    uint xrow = p.x_off + t * p.cols;
    precise float acc = 0.0;
    precise float acc_min = 0.0;
    for (uint b = 0u; b < nb; b++) {
        uint block = block_at(r, b, nb);
        uint xb = xrow + b * 256u;
        // Q8_K: the signed value of largest magnitude maps to -127.
        float amax = 0.0;
        float mx = 0.0;
        for (uint i = 0u; i < 256u; i++) {
            float v = x[xb + i];
            if (abs(v) > amax) {
                amax = abs(v);
                mx = v;
            }
        }
        if (amax == 0.0) {
            continue; // every code is zero: the sums add nothing
        }
        float iscale = div_rn(-127.0, mx);
        float d_a = div_rn(1.0, iscale);
        float d = block_d(block);
        float dmin = block_dmin(block);
#if defined(FMT_Q4_K)
        uint per_step = 2u;
#else
        uint per_step = SUBS;
#endif
        for (uint first = 0u; first < SUBS; first += per_step) {
            int s1 = 0;
            int s2 = 0;
            for (uint j = first; j < first + per_step; j++) {
                int raw = 0;
                int sum = 0;
                for (uint l = 0u; l < SUB_LEN; l++) {
                    uint i = j * SUB_LEN + l;
                    precise float scaled = iscale * x[xb + i];
                    int a = min(127, nearest_int(scaled));
                    raw += wcode(block, i) * a;
                    sum += a;
                }
                ivec2 sm = scale_min(block, j);
                s1 += sm.x * (raw - OFFSET * sum);
                s2 += sm.y * sum;
            }
#if defined(FMT_Q4_K)
            precise float dd = d * d_a;
            precise float dm = dmin * d_a;
            acc = fma_rn(float(s1), dd, acc);
            acc_min = fma_rn(float(s2), dm, acc_min);
#else
            precise float s1d = float(s1) * d;
            precise float v = fma_rn(-dmin, float(s2), s1d);
            acc = fma_rn(v, d_a, acc);
#endif
        }
    }
    precise float result = acc - acc_min;
    y[p.out_off + t * p.rows + r] = result;
}
