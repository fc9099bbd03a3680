// The reference backend's f32 math (core/src/backend/reference/ggml_math.rs, one lane of
// ggml's AVX-512 code), operation for operation: each fused multiply-add there is an
// `fma_rn` here (exact whether or not the driver fuses `fma`), each plain multiply or add a
// `precise` one, so results carry the reference's bits.

// j * 2^n for an integral n with |n| <= 192 and j in [0.5, 2), rounded once (gradual
// underflow where the device keeps subnormals; infinity on overflow).
float scalef(float j, float n) {
    int e = int(n);
    if (e >= -126 && e <= 127) {
        precise float r = j * uintBitsToFloat(uint(e + 127) << 23);
        return r;
    }
    if (e < -126) {
        // Exact in the normal range, then one rounding into the subnormals.
        precise float r = j * uintBitsToFloat(uint(e + 126 + 127) << 23);
        precise float s = r * uintBitsToFloat(1u << 23); // 2^-126
        return s;
    }
    precise float r = j * uintBitsToFloat(uint(127 + 127) << 23);
    precise float s = r * uintBitsToFloat(uint(e - 127 + 127) << 23);
    return s;
}

// ggml's vectorized exp (`ggml_v_expf`), as `ggml_math::expf`.
float ggml_expf(float x) {
    const float shift = uintBitsToFloat(0x4b400000u);
    precise float z = fma_rn(x, uintBitsToFloat(0x3fb8aa3bu), shift);
    precise float n = z - shift;
    precise float b0 = fma_rn(-n, uintBitsToFloat(0x3f317200u), x);
    precise float b = fma_rn(-n, uintBitsToFloat(0x35bfbe8eu), b0);
    precise float u = b * b;
    precise float p0 = fma_rn(uintBitsToFloat(0x3c072010u), b, uintBitsToFloat(0x3d2b9f17u));
    precise float p1 = fma_rn(uintBitsToFloat(0x3e2aaf33u), b, uintBitsToFloat(0x3efffedbu));
    precise float p2 = fma_rn(uintBitsToFloat(0x3f7ffff6u), b, 1.0);
    precise float j = fma_rn(fma_rn(p0, u, p1), u, p2);
    if (abs(n) > 192.0) {
        return n <= 0.0 ? 0.0 : uintBitsToFloat(0x7f800000u);
    }
    return scalef(j, n);
}

// A sum carried as an unevaluated pair hi + lo (about 48 significant bits): what the
// reference adds in f64, rounded to f32 only at the end. It equals the f64 sum's rounding
// unless that sum lies within 2^-48 of a midpoint between two f32 values.
void df_add(inout vec2 acc, float v) {
    precise float s = acc.x + v;
    precise float bb = s - acc.x;
    precise float err = (acc.x - (s - bb)) + (v - bb);
    precise float t = acc.y + err;
    precise float hi = s + t;
    precise float lo = t - (hi - s);
    acc = vec2(hi, lo);
}

float df_value(vec2 acc) {
    precise float v = acc.x + acc.y;
    return v;
}

// 1 / (hi + lo) rounded to f32, as the reference's `(1.0 / sum) as f32` with an f64 sum:
// the device's reciprocal refined by one Newton step on the pair.
float df_recip(vec2 acc) {
    precise float r = 1.0 / acc.x;
    precise float e = fma_rn(-r, acc.x, 1.0);
    precise float e2 = fma_rn(-r, acc.y, e);
    precise float out_r = fma_rn(r, e2, r);
    return out_r;
}
