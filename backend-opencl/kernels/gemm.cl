// y[t][r] = dot(row r of W, x[t]) for several tokens, W in Layout::Planar (planar.cl). A
// prefill step multiplies every weight by many tokens, so each weight block is read once per
// GEMM_TOKENS tokens: a work-group of 64 items takes one tile of the layout (one row each,
// coalesced loads) and a tile of GEMM_TOKENS tokens, whose activation codes are staged in
// local memory, GEMM_STAGE blocks at a time, and read there by every row. Each item
// unpacks a weight block once and sums it against every token of the tile, blocks in order.
//
// Range: [tiles * 64, ceil(tokens / GEMM_TOKENS), 1] in work-groups of 64.

#define STAGE_WORDS (GEMM_STAGE * GEMM_TOKENS * 8u)

// Arguments as gemv.cl's, with `tokens` rows of `x` and of `y`.
__kernel void gemm(__global const uint *wq, __global const half *ws, __global const uint *xq,
                   __global float *y, const uint rows, const uint cols, const uint tokens,
                   const uint ws_off, const uint code_off, const uint scale_off,
                   const uint sum_off, const uint out_off) {
    // Word j of block b0 + s of token t0 + k at [(s * GEMM_TOKENS + k) * 8 + j].
    __local uint act[STAGE_WORDS];
    __local float scales[GEMM_STAGE * GEMM_TOKENS];
#if defined(HAS_MIN)
    __local float sums[GEMM_STAGE * GEMM_TOKENS];
#endif
    uint lid = get_local_id(0);
    uint r = get_global_id(0);
    uint t0 = get_group_id(1) * GEMM_TOKENS;
    uint nb = cols / 32u;
    bool live = r < rows;
    tile_t t = tile_of(rows, min(r, rows - 1u));
    float acc[GEMM_TOKENS];
    for (uint k = 0u; k < GEMM_TOKENS; k++) {
        acc[k] = 0.0f;
    }
    for (uint b0 = 0u; b0 < nb; b0 += GEMM_STAGE) {
        // Zeros past the last block and the last token.
        for (uint i = lid; i < STAGE_WORDS; i += 64u) {
            uint b = b0 + i / (GEMM_TOKENS * 8u);
            uint tok = t0 + (i / 8u) % GEMM_TOKENS;
            bool in = b < nb && tok < tokens;
            act[i] = in ? xq[code_off + (tok * nb + b) * 8u + i % 8u] : 0u;
        }
        if (lid < GEMM_STAGE * GEMM_TOKENS) {
            uint b = b0 + lid / GEMM_TOKENS;
            uint tok = t0 + lid % GEMM_TOKENS;
            bool in = b < nb && tok < tokens;
            scales[lid] = in ? as_float(xq[scale_off + tok * nb + b]) : 0.0f;
#if defined(HAS_MIN)
            sums[lid] = in ? as_float(xq[sum_off + tok * nb + b]) : 0.0f;
#endif
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint s = 0u; s < GEMM_STAGE; s++) {
            uint b = b0 + s;
            if (live && b < nb) {
                wcodes_t w = unpack(load_codes(wq, t, nb, b));
                float2 dm = load_scales(ws, ws_off, t, nb, b);
                for (uint k = 0u; k < GEMM_TOKENS; k++) {
                    uint at = s * GEMM_TOKENS + k;
                    float v = (dm.x * scales[at]) * block_dot(w, act + at * 8u);
                    acc[k] = acc[k] + v;
#if defined(HAS_MIN)
                    float ms = dm.y * sums[at];
                    acc[k] = acc[k] + ms;
#endif
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (live) {
        for (uint k = 0u; k < GEMM_TOKENS; k++) {
            if (t0 + k < tokens) {
                y[out_off + (t0 + k) * rows + r] = acc[k];
            }
        }
    }
}
