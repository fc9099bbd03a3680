// Stores `n` consecutive f32 elements (whole rows of `width`) into one layer of a KV cache
// buffer, from the row of the step's first position on, as f32 (KV_F32) or as f16 bits
// rounded to nearest even (KV_F16, one 2-byte element each: OpenCL stores single ushorts, so
// no work-item touches another's element). The position is read from a buffer, not passed,
// so a batch serves every step; rows that would pass the layer's end are not written.
// One work-item per element.

#if defined(KV_F32)
typedef float kv_elem;
#define KV_FROM_F32(v) (v)
#elif defined(KV_F16)
typedef ushort kv_elem;
#define KV_FROM_F32(v) ((ushort)f32_to_f16_bits(v))
#else
#error "no cache format defined"
#endif

__kernel void kv_store(__global const float *src, __global kv_elem *cache,
                       __global const uint *step, const uint n, const uint src_off,
                       const uint layer_off, const uint width, const uint capacity,
                       const uint pos_off) {
    uint idx = get_global_id(0);
    uint first = step[pos_off];
    if (idx >= n || first > capacity / max(width, 1u) || first * width > capacity - n) {
        return;
    }
    uint dst = layer_off + first * width;
    cache[dst + idx] = KV_FROM_F32(src[src_off + idx]);
}
