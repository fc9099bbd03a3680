// Rotates the first 2*half dimensions of every head of every token row in place. The
// (cos, sin) of each (token, pair) come from a table the host computes with the reference's
// own angle function, since device sin/cos are only accurate to a few ulp.
// style 0: pairs (2i, 2i+1) (llama "normal"); style 1: pairs (i, i + half) ("neox").
// One work-item per (token, head, pair).
__kernel void rope(__global float *x, __global const float2 *cos_sin, const uint n_tokens,
                   const uint n_heads, const uint head_dim, const uint half_dim,
                   const uint style, const uint x_off, const uint table_off) {
    uint idx = get_global_id(0);
    uint per_token = n_heads * half_dim;
    if (idx >= n_tokens * per_token) {
        return;
    }
    uint t = idx / per_token;
    uint h = (idx % per_token) / half_dim;
    uint i = idx % half_dim;
    uint head = x_off + (t * n_heads + h) * head_dim;
    uint a = style == 0u ? head + 2u * i : head + i;
    uint b = style == 0u ? a + 1u : a + half_dim;
    float2 cs = cos_sin[table_off + t * half_dim + i];
    float v0 = x[a];
    float v1 = x[b];
    float r0 = fma_rn(v0, cs.x, -(v1 * cs.y));
    float r1 = fma_rn(v0, cs.y, v1 * cs.x);
    x[a] = r0;
    x[b] = r1;
}
