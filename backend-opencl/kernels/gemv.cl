// y[r] = dot(row r of W, x) for one token, W in Layout::Planar (planar.cl). A decode step's
// matmuls have a single token, so the work lies along the rows and their blocks only: a
// work-group of 64 items takes GEMV_ROWS neighbouring rows (coalesced weight loads) and
// 64 / GEMV_ROWS slices of each row's blocks (slice s takes blocks s, s + SLICES, ...); each
// item sums its blocks in order, then the slices of a row are added in a tree through local
// memory. The activation codes are staged in local memory, SLICES * GEMV_STAGE blocks at a
// time, so each is read from global memory once per work-group rather than once per row.
//
// Range: [ceil(rows / GEMV_ROWS) * 64, 1, 1] in work-groups of 64.

#define SLICES (64u / GEMV_ROWS)
#define CHUNK (SLICES * GEMV_STAGE)

// `xq` holds the activation codes from word `code_off`, their scales from `scale_off` and
// Q8_1 sums from `sum_off`; the weights' scale plane starts at half `ws_off` of `ws`, which
// is the buffer `wq` is.
__kernel void gemv(__global const uint *wq, __global const half *ws, __global const uint *xq,
                   __global float *y, const uint rows, const uint cols, const uint ws_off,
                   const uint code_off, const uint scale_off, const uint sum_off,
                   const uint out_off) {
    __local uint act[CHUNK * 8u];
    __local float scales[CHUNK];
#if defined(HAS_MIN)
    __local float sums[CHUNK];
#endif
    __local float part[64];
    uint lid = get_local_id(0);
    uint lane = lid % GEMV_ROWS;
    uint slice = lid / GEMV_ROWS;
    uint r = get_group_id(0) * GEMV_ROWS + lane;
    uint nb = cols / 32u;
    bool live = r < rows;
    tile_t t = tile_of(rows, min(r, rows - 1u));
    float acc = 0.0f;
    for (uint b0 = 0u; b0 < nb; b0 += CHUNK) {
        for (uint i = lid; i < CHUNK * 8u; i += 64u) {
            uint b = b0 + i / 8u;
            act[i] = b < nb ? xq[code_off + b * 8u + i % 8u] : 0u;
        }
        if (lid < CHUNK) {
            uint b = min(b0 + lid, nb - 1u);
            scales[lid] = as_float(xq[scale_off + b]);
#if defined(HAS_MIN)
            sums[lid] = as_float(xq[sum_off + b]);
#endif
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint k = 0u; k < GEMV_STAGE; k++) {
            uint c = k * SLICES + slice;
            uint b = b0 + c;
            if (live && b < nb) {
                wcodes_t w = unpack(load_codes(wq, t, nb, b));
                float2 dm = load_scales(ws, ws_off, t, nb, b);
                float v = (dm.x * scales[c]) * block_dot(w, act + c * 8u);
                acc = acc + v;
#if defined(HAS_MIN)
                float ms = dm.y * sums[c];
                acc = acc + ms;
#endif
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = SLICES / 2u; s > 0u; s >>= 1) {
        if (slice < s) {
            part[lid] = part[lid] + part[lid + s * GEMV_ROWS];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (slice == 0u && live) {
        y[out_off + r] = part[lid];
    }
}
