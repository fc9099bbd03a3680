// out[t][r] = dot(row r of W, x[t]) for K-quant weights (Q4_K, Q5_K, Q6_K), in the
// reference's arithmetic (core/src/numerics/ggml_kquant.rs, which is llama.cpp's on x86):
// each 256-element super-block of x is quantized to Q8_K, the sub-blocks' products are
// summed exactly in integers with the weights' integer scales (s1) and minimums (s2), and
// only then do floats start, in ggml's two patterns: once per super-block for Q5_K and Q6_K
// (`v = s1 d - dmin s2`, `acc += v d_a`, both fused), once per pair of sub-blocks for Q4_K
// (`acc += s1 (d d_a)`, `acc_min += s2 (dmin d_a)`, the result `acc - acc_min`). One
// work-item per (row, token) reads the unrounded activations and quantizes each super-block
// as it goes.
//
// Range: [row groups * 64, 1, tokens] in work-groups of 64, one row per work-item.

uint wbyte(__global const uchar *wq, uint at) {
    return wq[at];
}

// The little-endian f16 at byte `at`, exactly.
float wf16(__global const uchar *wq, uint at) {
    return f16_bits_to_f32(wbyte(wq, at) | (wbyte(wq, at + 1u) << 8));
}

// ggml's `nearest_int`: round half to even through the 1.5 * 2^23 shift.
int nearest_int(float v) {
    float s = v + 12582912.0f;
    return (int)(as_uint(s) & 0x7fffffu) - 0x400000;
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
int2 scale_min(__global const uchar *wq, uint block, uint j) {
    uint s = block + 4u;
    if (j < 4u) {
        return (int2)((int)(wbyte(wq, s + j) & 63u), (int)(wbyte(wq, s + j + 4u) & 63u));
    }
    uint b = wbyte(wq, s + j + 4u);
    return (int2)((int)((b & 15u) | ((wbyte(wq, s + j - 4u) >> 6) << 4)),
                  (int)((b >> 4) | ((wbyte(wq, s + j) >> 6) << 4)));
}
// The unsigned code of weight i (4 bits, plus Q5_K's fifth).
int wcode(__global const uchar *wq, uint block, uint i) {
    uint c = i / 64u;
    uint hi = (i / 32u) & 1u;
    uint l = i & 31u;
    uint q = wbyte(wq, block + QS + 32u * c + l);
    q = hi == 0u ? (q & 15u) : (q >> 4);
#if defined(FMT_Q5_K)
    q |= ((wbyte(wq, block + 16u + l) >> (2u * c + hi)) & 1u) << 4;
#endif
    return (int)q;
}
float block_d(__global const uchar *wq, uint block) {
    return wf16(wq, block);
}
float block_dmin(__global const uchar *wq, uint block) {
    return wf16(wq, block + 2u);
}
#elif defined(FMT_Q6_K)
#define BLOCK_BYTES 210u
#define SUB_LEN 16u
#define SUBS 16u
#define OFFSET 32
int2 scale_min(__global const uchar *wq, uint block, uint j) {
    return (int2)((int)(char)wbyte(wq, block + 192u + j), 0);
}
// The unsigned 6-bit code of weight i (the offset of 32 is taken out in the sums).
int wcode(__global const uchar *wq, uint block, uint i) {
    uint n = i / 128u;
    uint k = (i / 32u) & 3u;
    uint l = i & 31u;
    uint ql = wbyte(wq, block + 64u * n + l + ((k & 1u) * 32u));
    ql = k < 2u ? (ql & 15u) : (ql >> 4);
    uint qh = (wbyte(wq, block + 128u + 32u * n + l) >> (2u * k)) & 3u;
    return (int)(ql | (qh << 4));
}
float block_d(__global const uchar *wq, uint block) {
    return wf16(wq, block + 208u);
}
float block_dmin(__global const uchar *wq, uint block) {
    return 0.0f;
}
#else
#error "no K-quant format defined"
#endif

#if defined(FMT_Q4_K)
#define PER_STEP 2u
#else
#define PER_STEP SUBS
#endif

// Where block `b` of weight row `r` lies in Layout::Interleaved (src/ops/linear.rs): rows
// in groups of 64, the last possibly shorter, block b of a group's rows side by side, so
// the 64 work-items of a work-group, one row each, read neighbouring blocks.
uint block_at(uint rows, uint r, uint b, uint nb) {
    uint g = r / 64u;
    uint group_rows = min(64u, rows - g * 64u);
    return ((g * 64u) * nb + b * group_rows + (r % 64u)) * BLOCK_BYTES;
}

// `v` with a zero's sign bit cleared. The reference's sums start at +0 and add in round to
// nearest, where fma(a, b, c) is -0 only when a b and c are both -0, so its zero sums are +0
// (short of an exact sum below the subnormals, from subnormal activations). Some compilers
// drop the sign rule of a zero addend: rusticl on Mesa 22.3 returns a b for fma(a, b, ±0),
// so a zero row (a -0 product) comes back as -0. Cleared on the bits, in integer
// arithmetic, which no float optimization rewrites.
float zero_as_plus_zero(float v) {
    uint b = as_uint(v);
    return as_float(b == 0x80000000u ? 0u : b);
}

// Offsets are in elements of `x` and `y`; the weights start at byte 0 of `wq`.
__kernel void matmul_kquant(__global const uchar *wq, __global const float *x,
                            __global float *y, const uint rows, const uint cols,
                            const uint x_off, const uint out_off) {
    uint r = get_global_id(0);
    if (r >= rows) {
        return;
    }
    uint t = get_global_id(2);
    uint nb = cols / 256u;
    uint xrow = x_off + t * cols;
    float acc = 0.0f;
    float acc_min = 0.0f;
    for (uint b = 0u; b < nb; b++) {
        uint block = block_at(rows, r, b, nb);
        uint xb = xrow + b * 256u;
        // Q8_K: the signed value of largest magnitude maps to -127.
        float amax = 0.0f;
        float mx = 0.0f;
        for (uint i = 0u; i < 256u; i++) {
            float v = x[xb + i];
            if (fabs(v) > amax) {
                amax = fabs(v);
                mx = v;
            }
        }
        if (amax == 0.0f) {
            continue; // every code is zero: the sums add nothing
        }
        float iscale = div_rn(-127.0f, mx);
        float d_a = div_rn(1.0f, iscale);
        float d = block_d(wq, block);
        float dmin = block_dmin(wq, block);
        for (uint first = 0u; first < SUBS; first += PER_STEP) {
            int s1 = 0;
            int s2 = 0;
            for (uint j = first; j < first + PER_STEP; j++) {
                int raw = 0;
                int sum = 0;
                for (uint l = 0u; l < SUB_LEN; l++) {
                    uint i = j * SUB_LEN + l;
                    int a = min(127, nearest_int(iscale * x[xb + i]));
                    raw += wcode(wq, block, i) * a;
                    sum += a;
                }
                int2 sm = scale_min(wq, block, j);
                s1 += sm.x * (raw - OFFSET * sum);
                s2 += sm.y * sum;
            }
#if defined(FMT_Q4_K)
            acc = fma_rn((float)s1, d * d_a, acc);
            acc_min = fma_rn((float)s2, dmin * d_a, acc_min);
#else
            float v = fma_rn(-dmin, (float)s2, (float)s1 * d);
            acc = fma_rn(v, d_a, acc);
#endif
        }
    }
    y[out_off + t * rows + r] = zero_as_plus_zero(acc - acc_min);
}
