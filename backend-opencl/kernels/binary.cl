// x[i] = op(x[i], y[j]) with j = i, or i % period (a bias broadcast over rows).
// op 0: x + y (add, add_bias); op 1: silu(x) * y (swiglu), with SiLU as the reference's
// `ggml_math::silu`: x / (1 + ggml_expf(0 - x)), the division rounded as IEEE rounds it.
// One work-item per element.
__kernel void binary(__global float *x, __global const float *y, const uint n,
                     const uint x_off, const uint y_off, const uint period, const uint op) {
    uint i = get_global_id(0);
    if (i >= n) {
        return;
    }
    uint j = period == 0u ? i : i % period;
    float a = x[x_off + i];
    float b = y[y_off + j];
    if (op == 0u) {
        x[x_off + i] = a + b;
    } else {
        float den = 1.0f + ggml_expf(0.0f - a);
        x[x_off + i] = div_rn(a, den) * b;
    }
}
