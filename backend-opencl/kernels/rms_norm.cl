// out = w * (x / sqrt(mean(x^2) + eps)) for each `cols`-wide row; one work-group per row.
// The scale follows the reference (core/src/backend/reference/norm.rs, ggml's): squares in
// f32 summed in order in f64 (here a float pair), the mean rounded to f32, then an IEEE
// square root and division. With out == x it is the in-place head norm: each work-item
// writes only what it read.
__kernel void rms_norm(__global float *x, __global const float *w, __global float *y,
                       const uint rows, const uint cols, const uint x_off, const uint w_off,
                       const uint out_off, const float eps) {
    __local float row_scale;
    uint r = get_group_id(0);
    if (r >= rows) {
        return;
    }
    uint tid = get_local_id(0);
    uint base = r * cols;
    if (tid == 0u) {
        float2 ss = (float2)(0.0f, 0.0f);
        for (uint i = 0u; i < cols; i++) {
            float v = x[x_off + base + i];
            ss = df_add(ss, v * v);
        }
        // (hi + lo) / n to the nearest f32: the pair's quotient and one exact correction.
        float n = (float)cols;
        float q0 = div_rn(ss.x, n);
        float rem = fma_rn(-q0, n, ss.x) + ss.y;
        float mean = q0 + div_rn(rem, n);
        row_scale = div_rn(1.0f, sqrt_rn(mean + eps));
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    float scale = row_scale;
    for (uint i = tid; i < cols; i += 64u) {
        y[out_off + base + i] = w[w_off + i] * (scale * x[x_off + base + i]);
    }
}
