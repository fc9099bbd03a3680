// Where block `b` of weight row `r` lies in the matmul layout (Layout::Interleaved in
// src/ops/linear.rs): rows in groups of 64, the last possibly shorter, block b of a group's
// rows side by side, so the 64 threads of a workgroup, one row each, read neighbouring
// blocks. Needs `p.rows`, `p.w_off` (bytes) and BLOCK_BYTES.
uint block_at(uint r, uint b, uint nb) {
    uint g = r / 64u;
    uint group_rows = min(64u, p.rows - g * 64u);
    return p.w_off + ((g * 64u) * nb + b * group_rows + (r % 64u)) * BLOCK_BYTES;
}
