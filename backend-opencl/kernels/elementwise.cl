// Element-wise ops over f32 rows, exact in any order: each work-item owns one element.

// x[i] += y[i] for i < n.
__kernel void add(__global float *x, __global const float *y, const uint n) {
    const uint i = get_global_id(0);
    if (i < n) {
        x[i] += y[i];
    }
}
