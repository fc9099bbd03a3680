// One strided region copy (core/src/region): step (i, j, k) of a size[0] x size[1] x
// size[2] box copies src[src_off + i*ss0 + j*ss1 + k*ss2] to dst[dst_off + i*ds0 + j*ds1 +
// k*ds2]. Elements are 32-bit words of any type; one work-item per step.
__kernel void raster(__global const uint *src, __global uint *dst, const uint src_off,
                     const uint dst_off, const uint n0, const uint n1, const uint n2,
                     const uint ss0, const uint ss1, const uint ss2, const uint ds0,
                     const uint ds1, const uint ds2) {
    uint idx = get_global_id(0);
    if (idx >= n0 * n1 * n2) {
        return;
    }
    uint k = idx % n2;
    uint j = (idx / n2) % n1;
    uint i = idx / (n2 * n1);
    dst[dst_off + i * ds0 + j * ds1 + k * ds2] = src[src_off + i * ss0 + j * ss1 + k * ss2];
}
