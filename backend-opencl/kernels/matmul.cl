// out[t][r] = dot(row r of W, x[t]) with f32 accumulation. `x` is already rounded to the
// activation format of W's type (round_act.cl), as the reference rounds it. One work-item
// per (row, token) sums the products left to right, unfused, in the reference's own order,
// so a row's result carries the reference's bits (core/src/backend/reference/matmul.rs): on
// random-weight models a last-bit difference here can cross a rounding step of the next
// quantized activation and grow into percent-level drift.
//
// Range: [row groups * 64, 1, tokens] in work-groups of 64, one row per work-item.

// Where block `b` of weight row `r` lies in Layout::Interleaved (src/ops/linear.rs): rows
// in groups of 64, the last possibly shorter, block b of a group's rows side by side, so
// the 64 work-items of a work-group, one row each, read neighbouring blocks.
uint block_at(uint rows, uint r, uint b, uint nb) {
    uint g = r / 64u;
    uint group_rows = min(64u, rows - g * 64u);
    return ((g * 64u) * nb + b * group_rows + (r % 64u)) * BLOCK_BYTES;
}

// `v` with a zero's sign bit cleared. The reference's sums start at +0 and add in round to
// nearest, where x + y is -0 only when both are -0, so its zero sums are +0. Some compilers
// drop the sign rule of a zero addend (rusticl on Mesa 22.3 folds `0.0f + x` into x), which
// turns a sum of -0 products into -0. Cleared on the bits, in integer arithmetic, which no
// float optimization rewrites.
float zero_as_plus_zero(float v) {
    uint b = as_uint(v);
    return as_float(b == 0x80000000u ? 0u : b);
}

#if defined(HAS_MIN)
// Q4_1 and Q5_1 pair with Q8_1 activations (the reference's dot_row_with_minimum): per
// block Σ (d q_i) x_i over the rounded activations, plus m * s, with s the activations'
// block sum as Q8_1 stores it (in f16 where finite), computed from the unrounded
// activations `x0` at element `xb`.
float q8_1_sum(__global const float *x0, uint xb) {
    float amax = 0.0f;
    for (uint i = 0u; i < 32u; i++) {
        amax = fmax(amax, fabs(x0[xb + i]));
    }
    float d = div_rn(amax, 127.0f);
    float id = amax != 0.0f ? div_rn(127.0f, amax) : 0.0f;
    float sum = 0.0f;
    for (uint i = 0u; i < 32u; i++) {
        sum = sum + rint(x0[xb + i] * id);
    }
    float s = d * sum;
    float r = round_f16(s);
    return isinf(r) ? s : r;
}
#endif

// Offsets are in elements of `x`, `y` and `x0`; the weights start at byte 0 of `wq`.
__kernel void matmul(__global const uchar *wq, __global const float *x, __global float *y,
                     const uint rows, const uint cols, const uint x_off, const uint out_off
#if defined(HAS_MIN)
                     , __global const float *x0, const uint x0_off
#endif
) {
    uint r = get_global_id(0);
    if (r >= rows) {
        return;
    }
    uint t = get_global_id(2);
    uint nb = cols / BLOCK_LEN;
    uint xrow = x_off + t * cols;
    float acc = 0.0f;
    for (uint b = 0u; b < nb; b++) {
        uint block = block_at(rows, r, b, nb);
        uint xb = xrow + b * BLOCK_LEN;
        for (uint i = 0u; i < BLOCK_LEN; i++) {
            float product = dequant_one(wq, block, i) * x[xb + i];
            acc = acc + product;
        }
#if defined(HAS_MIN)
        float ms = block_min(wq, block) * q8_1_sum(x0, x0_off + t * cols + b * 32u);
        acc = acc + ms;
#endif
    }
    y[out_off + t * rows + r] = zero_as_plus_zero(acc);
}
