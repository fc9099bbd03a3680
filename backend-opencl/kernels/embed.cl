// out[t] = row tokens[t] of the table, decoded to f32; a token past the last row gives
// zeros. One work-item per output element.

// `n_tokens` ids from element `tok_off` of `tokens`; rows into `y` from element `out_off`.
__kernel void embed(__global const uchar *wq, __global const uint *tokens, __global float *y,
                    const uint rows, const uint cols, const uint n_tokens, const uint tok_off,
                    const uint out_off) {
    uint idx = get_global_id(0);
    if (idx >= n_tokens * cols) {
        return;
    }
    uint t = idx / cols;
    uint j = idx % cols;
    uint token = tokens[tok_off + t];
    float v = 0.0f;
    if (token < rows) {
        uint nb = cols / BLOCK_LEN;
        uint block = (token * nb + j / BLOCK_LEN) * BLOCK_BYTES;
        v = dequant_one(wq, block, j % BLOCK_LEN);
    }
    y[out_off + idx] = v;
}
