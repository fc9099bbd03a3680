// Weights in Layout::Planar (src/ops/planar.rs) and activations as Q8_0 codes (quant_act.cl),
// for the fast matmuls (gemv.cl, gemm.cl). Exactly one of FMT_Q4_0, FMT_Q4_1, FMT_Q8_0 is
// defined by the program's options.
//
// The weights are a structure of arrays: a plane of codes, then a plane of f16 scales (and
// Q4_1's minimums beside them). Rows go in tiles of 64 (the last possibly shorter) whose
// rows lie side by side: word j of block b of the tile's rows is one run of words, so work-
// items on neighbouring rows read neighbouring words (coalesced loads), as on Adreno's
// "noshuffle" layouts. A code word holds eight 4-bit codes (Q4_0, Q4_1: nibble i is element
// 8j + i) or four 8-bit codes (Q8_0: byte i is element 4j + i).
//
// Activation codes are 32-element blocks of eight words (byte i of word j: element 4j + i,
// a signed code of -127..127), with the block's f16 scale and Q8_1 sum as f32 words. The
// kernels stage the code words in local memory, once per work-group.
//
// A block's dot product of codes, Σ q_i k_i, is summed in integers, four 8-bit products at a
// time (`dot4`: one instruction where the device has an integer dot product), and is below
// 2^24 in magnitude (at most 32 * 128 * 127), so it is exact as an f32; a block then costs
// one rounding, (d_w d_x) S, the scales' product being exact (two f16s). See ops/planar.rs
// for the bound this gives against the reference. Every variant of `dot4` returns the same
// integer, so the variant a CPU implementation runs in CI computes a phone's bits.

#if defined(FMT_Q4_0) || defined(FMT_Q4_1)
#define WORDS 4u
typedef uint4 codes_t;
#elif defined(FMT_Q8_0)
#define WORDS 8u
typedef uint8 codes_t;
#else
#error "no planar weight format defined"
#endif

#if defined(FMT_Q4_1)
#define HAS_MIN
// Halves per (row, block) in the scale plane: the scale, then the minimum.
#define SCALES 2u
#else
#define SCALES 1u
#endif

// Rows per tile of the layout.
#define TILE 64u

// Where a row's tile starts and how many rows it has.
typedef struct {
    uint first;
    uint rows;
    uint lane;
} tile_t;

tile_t tile_of(uint rows, uint r) {
    tile_t t;
    t.first = r / TILE * TILE;
    t.rows = min(TILE, rows - t.first);
    t.lane = r - t.first;
    return t;
}

// Block `b`'s code words of the row at `t` (`nb` blocks per row).
codes_t load_codes(__global const uint *wq, tile_t t, uint nb, uint b) {
    uint at = t.first * nb * WORDS + b * WORDS * t.rows + t.lane;
    codes_t w;
    w.s0 = wq[at];
    w.s1 = wq[at + t.rows];
    w.s2 = wq[at + 2u * t.rows];
    w.s3 = wq[at + 3u * t.rows];
#if WORDS == 8u
    w.s4 = wq[at + 4u * t.rows];
    w.s5 = wq[at + 5u * t.rows];
    w.s6 = wq[at + 6u * t.rows];
    w.s7 = wq[at + 7u * t.rows];
#endif
    return w;
}

// Block `b`'s scale (.x) and minimum (.y, Q4_1 only) of the row at `t`; the scale plane
// starts at half `ws_off`.
float2 load_scales(__global const half *ws, uint ws_off, tile_t t, uint nb, uint b) {
    uint at = ws_off + (t.first * nb + b * t.rows + t.lane) * SCALES;
#if defined(HAS_MIN)
    return vload_half2(0, ws + at);
#else
    return (float2)(vload_half(0, ws + at), 0.0f);
#endif
}

// The four signed 8-bit values of `a`, byte 0 first.
int4 signed_bytes(uint a) {
    return (int4)((int)(a << 24), (int)(a << 16), (int)(a << 8), (int)a) >> 24;
}

// The dot product of two words of four signed 8-bit values.
#if defined(DOT4_KHR) && defined(__opencl_c_integer_dot_product_input_4x8bit)
int dot4(uint a, uint b) {
    return dot(as_char4(a), as_char4(b));
}
#elif defined(DOT4_ARM)
#pragma OPENCL EXTENSION cl_arm_integer_dot_product_int8 : enable
int dot4(uint a, uint b) {
    return arm_dot(as_char4(a), as_char4(b));
}
#else
int dot4(uint a, uint b) {
    int4 p = signed_bytes(a) * signed_bytes(b);
    return (p.x + p.y) + (p.z + p.w);
}
#endif

// Bytes 0..3 of `lo` and `hi` interleaved from byte `k` on: lo_k, hi_k, lo_k+1, hi_k+1.
uint interleave_bytes(uint lo, uint hi, uint k) {
    uint a = (lo >> (8u * k)) & 0xffu;
    uint b = (hi >> (8u * k)) & 0xffu;
    uint c = (lo >> (8u * k + 8u)) & 0xffu;
    uint d = (hi >> (8u * k + 8u)) & 0xffu;
    return a | (b << 8) | (c << 16) | (d << 24);
}

// A block's weight codes as eight words of four signed 8-bit values, in element order
// (Q4_0 centred on zero).
typedef uint8 wcodes_t;

#if WORDS == 4u
// Word `w`'s eight 4-bit codes (nibble i: element i) as two words of bytes.
uint2 nibble_bytes(uint w) {
    uint lo = w & 0x0f0f0f0fu;        // nibbles 0, 2, 4, 6
    uint hi = (w >> 4) & 0x0f0f0f0fu; // nibbles 1, 3, 5, 7
    uint2 b = (uint2)(interleave_bytes(lo, hi, 0u), interleave_bytes(lo, hi, 2u));
#if defined(FMT_Q4_0)
    // Each byte minus 8, without borrows between bytes: 128 + q - 8, then the top bit off.
    b = ((b | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
#endif
    return b;
}
#endif

wcodes_t unpack(codes_t w) {
#if WORDS == 4u
    uint2 a = nibble_bytes(w.s0);
    uint2 b = nibble_bytes(w.s1);
    uint2 c = nibble_bytes(w.s2);
    uint2 d = nibble_bytes(w.s3);
    return (wcodes_t)(a.x, a.y, b.x, b.y, c.x, c.y, d.x, d.y);
#else
    return w;
#endif
}

// Σ q_i k_i of one block against its activation code words (`a`, eight words in local
// memory), summed exactly in integers.
float block_dot(wcodes_t w, __local const uint *a) {
    int s = dot4(w.s0, a[0]) + dot4(w.s1, a[1]);
    s += dot4(w.s2, a[2]) + dot4(w.s3, a[3]);
    s += dot4(w.s4, a[4]) + dot4(w.s5, a[5]);
    s += dot4(w.s6, a[6]) + dot4(w.s7, a[7]);
    return (float)s;
}
