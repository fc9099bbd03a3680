// Block decoding of GGUF weight formats, read from a uint[] buffer named `wq` at byte
// offsets (blocks are not word aligned). Exactly one of FMT_F32, FMT_F16, FMT_Q4_0,
// FMT_Q4_1, FMT_Q5_1, FMT_Q8_0, FMT_Q4_K, FMT_Q6_K is defined by the build script. Each format defines
// BLOCK_LEN, BLOCK_BYTES and `float dequant_one(uint block, uint i)`, weight `i` of the
// block at byte `block`, computed as core/src/quant/<format>.rs decodes it.

uint wbyte(uint at) {
    return (wq[at >> 2] >> ((at & 3u) * 8u)) & 0xffu;
}

// A little-endian u16 at an even byte offset.
uint wu16(uint at) {
    return (wq[at >> 2] >> ((at & 2u) * 8u)) & 0xffffu;
}

float wf16(uint at) {
    return f16_bits_to_f32(wu16(at));
}

int wi8(uint at) {
    return int(wbyte(at) << 24) >> 24;
}

#if defined(FMT_F32)
#define BLOCK_LEN 1u
#define BLOCK_BYTES 4u
float dequant_one(uint block, uint i) {
    return uintBitsToFloat(wq[block >> 2]);
}

#elif defined(FMT_F16)
#define BLOCK_LEN 1u
#define BLOCK_BYTES 2u
float dequant_one(uint block, uint i) {
    return wf16(block);
}

#elif defined(FMT_Q4_0)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 18u
float dequant_one(uint block, uint i) {
    float d = wf16(block);
    uint q = wbyte(block + 2u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    return float(int(q) - 8) * d;
}

#elif defined(FMT_Q4_1)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 20u
#define HAS_MIN
// d * q without the block's minimum, which the matmul adds per block (see block_min).
float dequant_one(uint block, uint i) {
    uint q = wbyte(block + 4u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    return float(q) * wf16(block);
}
float block_min(uint block) {
    return wf16(block + 2u);
}

#elif defined(FMT_Q5_1)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 24u
#define HAS_MIN
float dequant_one(uint block, uint i) {
    uint q = wbyte(block + 8u + (i & 15u));
    q = i < 16u ? (q & 15u) : (q >> 4);
    uint qh = wbyte(block + 4u + i / 8u);
    q |= ((qh >> (i & 7u)) & 1u) << 4;
    return float(q) * wf16(block);
}
float block_min(uint block) {
    return wf16(block + 2u);
}

#elif defined(FMT_Q8_0)
#define BLOCK_LEN 32u
#define BLOCK_BYTES 34u
float dequant_one(uint block, uint i) {
    return float(wi8(block + 2u + i)) * wf16(block);
}

#elif defined(FMT_Q4_K)
#define BLOCK_LEN 256u
#define BLOCK_BYTES 144u
// Six-bit scale and minimum of sub-block j (core/src/quant/kquant.rs, scale_min_k4).
uvec2 scale_min(uint block, uint j) {
    uint s = block + 4u;
    if (j < 4u) {
        return uvec2(wbyte(s + j) & 63u, wbyte(s + j + 4u) & 63u);
    }
    uint b = wbyte(s + j + 4u);
    return uvec2((b & 15u) | ((wbyte(s + j - 4u) >> 6) << 4), (b >> 4) | ((wbyte(s + j) >> 6) << 4));
}
float dequant_one(uint block, uint i) {
    uint c = i / 64u;
    uint hi = (i / 32u) & 1u;
    uvec2 sm = scale_min(block, 2u * c + hi);
    precise float d = wf16(block) * float(sm.x);
    precise float m = wf16(block + 2u) * float(sm.y);
    uint q = wbyte(block + 16u + 32u * c + (i & 31u));
    q = hi == 0u ? (q & 15u) : (q >> 4);
    precise float v = d * float(q) - m;
    return v;
}

#elif defined(FMT_Q6_K)
#define BLOCK_LEN 256u
#define BLOCK_BYTES 210u
float dequant_one(uint block, uint i) {
    uint n = i / 128u;
    uint k = (i / 32u) & 3u;
    uint l = i & 31u;
    uint ql = wbyte(block + 64u * n + l + ((k & 1u) * 32u));
    ql = k < 2u ? (ql & 15u) : (ql >> 4);
    uint qh = (wbyte(block + 128u + 32u * n + l) >> (2u * k)) & 3u;
    int q = int(ql | (qh << 4)) - 32;
    float sc = float(wi8(block + 192u + 8u * n + l / 16u + 2u * k));
    precise float v = wf16(block + 208u) * sc * float(q);
    return v;
}

#else
#error "no weight format defined"
#endif
