// Block decoding of GGUF weight formats, read from bytes at byte offsets (blocks are not
// word aligned). Exactly one of FMT_F32, FMT_F16, FMT_Q4_0, FMT_Q4_1, FMT_Q5_1, FMT_Q8_0,
// FMT_Q4_K, FMT_Q6_K is defined by the program's options. Each format defines BLOCK_LEN,
// BLOCK_BYTES and `float dequant_one(wq, block, i)`, weight `i` of the block at byte
// `block`, computed as core/src/quant/<format>.rs decodes it.

uint wbyte(__global const uchar *wq, uint at) {
    return wq[at];
}

// The f16 at an even byte offset, exactly (vload_half needs no extension).
float wf16(__global const uchar *wq, uint at) {
    return vload_half(0, (__global const half *)(wq + at));
}

int wi8(__global const uchar *wq, uint at) {
    return (int)(char)wq[at];
}

#if defined(FMT_F32)
#define BLOCK_LEN 1u
#define BLOCK_BYTES 4u
float dequant_one(__global const uchar *wq, uint block, uint i) {
    return *(__global const float *)(wq + block);
}

#elif defined(FMT_F16)
#define BLOCK_LEN 1u
#define BLOCK_BYTES 2u
float dequant_one(__global const uchar *wq, uint block, uint i) {
    return wf16(wq, block);
}

#elif defined(FMT_Q4_0)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 18u
float dequant_one(__global const uchar *wq, uint block, uint i) {
    float d = wf16(wq, block);
    uint q = wbyte(wq, block + 2u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    return (float)((int)q - 8) * d;
}

#elif defined(FMT_Q4_1)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 20u
#define HAS_MIN
// d * q without the block's minimum, which the matmul adds per block (see block_min).
float dequant_one(__global const uchar *wq, uint block, uint i) {
    uint q = wbyte(wq, block + 4u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    return (float)q * wf16(wq, block);
}
float block_min(__global const uchar *wq, uint block) {
    return wf16(wq, block + 2u);
}

#elif defined(FMT_Q5_1)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 24u
#define HAS_MIN
float dequant_one(__global const uchar *wq, uint block, uint i) {
    uint q = wbyte(wq, block + 8u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    uint qh = wbyte(wq, block + 4u + i / 8u);
    q |= ((qh >> (i & 7u)) & 1u) << 4;
    return (float)q * wf16(wq, block);
}
float block_min(__global const uchar *wq, uint block) {
    return wf16(wq, block + 2u);
}

#elif defined(FMT_Q8_0)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 34u
float dequant_one(__global const uchar *wq, uint block, uint i) {
    return (float)wi8(wq, block + 2u + i) * wf16(wq, block);
}

#elif defined(FMT_Q4_K)
#define BLOCK_LEN 256u
#define BLOCK_BYTES 144u
// Six-bit scale and minimum of sub-block j (core/src/quant/kquant.rs, scale_min_k4).
uint2 scale_min(__global const uchar *wq, uint block, uint j) {
    uint s = block + 4u;
    if (j < 4u) {
        return (uint2)(wbyte(wq, s + j) & 63u, wbyte(wq, s + j + 4u) & 63u);
    }
    uint b = wbyte(wq, s + j + 4u);
    return (uint2)((b & 15u) | ((wbyte(wq, s + j - 4u) >> 6) << 4),
                   (b >> 4) | ((wbyte(wq, s + j) >> 6) << 4));
}
float dequant_one(__global const uchar *wq, uint block, uint i) {
    uint c = i / 64u;
    uint hi = (i / 32u) & 1u;
    uint2 sm = scale_min(wq, block, 2u * c + hi);
    float d = wf16(wq, block) * (float)sm.x;
    float m = wf16(wq, block + 2u) * (float)sm.y;
    uint q = wbyte(wq, block + 16u + 32u * c + (i & 31u));
    q = hi == 0u ? (q & 15u) : (q >> 4);
    return d * (float)q - m;
}

#elif defined(FMT_Q6_K)
#define BLOCK_LEN 256u
#define BLOCK_BYTES 210u
float dequant_one(__global const uchar *wq, uint block, uint i) {
    uint n = i / 128u;
    uint k = (i / 32u) & 3u;
    uint l = i & 31u;
    uint ql = wbyte(wq, block + 64u * n + l + ((k & 1u) * 32u));
    ql = k < 2u ? (ql & 15u) : (ql >> 4);
    uint qh = (wbyte(wq, block + 128u + 32u * n + l) >> (2u * k)) & 3u;
    int q = (int)(ql | (qh << 4)) - 32;
    float sc = (float)wi8(wq, block + 192u + 8u * n + l / 16u + 2u * k);
    return wf16(wq, block + 208u) * sc * (float)q;
}

#else
#error "no weight format defined"
#endif
