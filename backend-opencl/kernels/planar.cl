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
// kernels stage them in local memory as floats, converted once per work-group.
//
// A block's dot product of codes, Σ q_i k_i, is an integer below 2^24 in magnitude (at most
// 32 * 128 * 127), so it is exact in f32 in any order; a block then costs one rounding,
// (d_w d_x) S, the scales' product being exact (two f16s). See ops/planar.rs for the bound
// this gives against the reference.

#if defined(FMT_Q4_0) || defined(FMT_Q4_1)
#define WORDS 4u
typedef uint4 codes_t;
// The code of a zero weight: Q4_0 centres its codes on 8, Q4_1 adds a minimum instead.
#if defined(FMT_Q4_0)
#define ZERO_POINT 8.0f
#else
#define ZERO_POINT 0.0f
#endif
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

// The four signed 8-bit codes of `a`, byte 0 first.
float4 signed_bytes(uint a) {
    int4 v = (int4)((int)(a << 24), (int)(a << 16), (int)(a << 8), (int)a);
    return convert_float4(v >> 24);
}

// The four 4-bit codes of `w`'s low 16 bits, nibble 0 first.
float4 nibbles(uint w) {
    return convert_float4((uint4)(w, w >> 4, w >> 8, w >> 12) & 15u);
}

// A block's weight codes as floats, in element order (Q4_0 centred on zero).
typedef struct {
    float4 v[8];
} wcodes_t;

wcodes_t unpack(codes_t w) {
    wcodes_t c;
#if WORDS == 4u
    c.v[0] = nibbles(w.s0) - ZERO_POINT;
    c.v[1] = nibbles(w.s0 >> 16) - ZERO_POINT;
    c.v[2] = nibbles(w.s1) - ZERO_POINT;
    c.v[3] = nibbles(w.s1 >> 16) - ZERO_POINT;
    c.v[4] = nibbles(w.s2) - ZERO_POINT;
    c.v[5] = nibbles(w.s2 >> 16) - ZERO_POINT;
    c.v[6] = nibbles(w.s3) - ZERO_POINT;
    c.v[7] = nibbles(w.s3 >> 16) - ZERO_POINT;
#else
    c.v[0] = signed_bytes(w.s0);
    c.v[1] = signed_bytes(w.s1);
    c.v[2] = signed_bytes(w.s2);
    c.v[3] = signed_bytes(w.s3);
    c.v[4] = signed_bytes(w.s4);
    c.v[5] = signed_bytes(w.s5);
    c.v[6] = signed_bytes(w.s6);
    c.v[7] = signed_bytes(w.s7);
#endif
    return c;
}

// Σ q_i k_i of one block against its activation codes as floats (`a`, eight float4s in
// local memory): exact (see above), so the order of the sum is free.
float block_dot(wcodes_t w, __local const float4 *a) {
    float4 s = w.v[0] * a[0];
    s += w.v[1] * a[1];
    s += w.v[2] * a[2];
    s += w.v[3] * a[3];
    s += w.v[4] * a[4];
    s += w.v[5] * a[5];
    s += w.v[6] * a[6];
    s += w.v[7] * a[7];
    return (s.x + s.y) + (s.z + s.w);
}
