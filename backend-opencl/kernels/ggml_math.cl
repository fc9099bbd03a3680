// The reference backend's f32 math (core/src/numerics/ggml_math.rs, one lane of ggml's
// AVX-512 code), operation for operation: each fused multiply-add there is an `fma_rn`
// here, each plain multiply or add a plain one (contraction is off), so results carry the
// reference's bits.

// j * 2^n for an integral n with |n| <= 192 and j in [0.5, 2), rounded once (gradual
// underflow where the device keeps subnormals; infinity on overflow).
float scalef(float j, float n) {
    int e = (int)n;
    if (e >= -126 && e <= 127) {
        return j * as_float((uint)(e + 127) << 23);
    }
    if (e < -126) {
        // Exact in the normal range, then one rounding into the subnormals.
        float r = j * as_float((uint)(e + 126 + 127) << 23);
        return r * as_float(1u << 23); // 2^-126
    }
    float r = j * as_float((uint)(127 + 127) << 23);
    return r * as_float((uint)(e - 127 + 127) << 23);
}

// ggml's vectorized exp (`ggml_v_expf`), as `ggml_math::expf`.
float ggml_expf(float x) {
    const float shift = as_float(0x4b400000u);
    float z = fma_rn(x, as_float(0x3fb8aa3bu), shift);
    float n = z - shift;
    float b0 = fma_rn(-n, as_float(0x3f317200u), x);
    float b = fma_rn(-n, as_float(0x35bfbe8eu), b0);
    float u = b * b;
    float p0 = fma_rn(as_float(0x3c072010u), b, as_float(0x3d2b9f17u));
    float p1 = fma_rn(as_float(0x3e2aaf33u), b, as_float(0x3efffedbu));
    float p2 = fma_rn(as_float(0x3f7ffff6u), b, 1.0f);
    float j = fma_rn(fma_rn(p0, u, p1), u, p2);
    if (fabs(n) > 192.0f) {
        return n <= 0.0f ? 0.0f : as_float(0x7f800000u);
    }
    return scalef(j, n);
}

// A sum carried as an unevaluated pair hi + lo (about 48 significant bits): what the
// reference adds in f64, rounded to f32 only at the end. It equals the f64 sum's rounding
// unless that sum lies within 2^-48 of a midpoint between two f32 values.
float2 df_add(float2 acc, float v) {
    float s = acc.x + v;
    float bb = s - acc.x;
    float err = (acc.x - (s - bb)) + (v - bb);
    float t = acc.y + err;
    float hi = s + t;
    float lo = t - (hi - s);
    return (float2)(hi, lo);
}

float df_value(float2 acc) {
    return acc.x + acc.y;
}

// 1 / (hi + lo) rounded to f32, as the reference's `(1.0 / sum) as f32` with an f64 sum:
// the device's reciprocal refined by one Newton step on the pair.
float df_recip(float2 acc) {
    float r = 1.0f / acc.x;
    float e = fma_rn(-r, acc.x, 1.0f);
    float e2 = fma_rn(-r, acc.y, e);
    return fma_rn(r, e2, r);
}
