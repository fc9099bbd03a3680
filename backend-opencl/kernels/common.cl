// Helpers every kernel program starts with. Contraction of a * b + c into an fma is off:
// the kernels spell every fused multiply-add they want, so results do not depend on what a
// compiler chooses.
#pragma OPENCL FP_CONTRACT OFF

// Bits of the f16 nearest to `f`, ties to even (as the `half` crate converts), in integer
// arithmetic, so the result does not depend on a driver's rounding mode.
uint f32_to_f16_bits(float f) {
    uint x = as_uint(f);
    uint s = (x >> 16) & 0x8000u;
    uint a = x & 0x7fffffffu;
    if (a >= 0x7f800000u) {
        return s | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u);
    }
    if (a >= 0x477ff000u) {
        return s | 0x7c00u;
    }
    if (a >= 0x38800000u) {
        uint r = a - 0x38000000u;
        uint h = r >> 13;
        uint rem = r & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
            h += 1u;
        }
        return s | h;
    }
    if (a < 0x33000000u) {
        return s;
    }
    uint e = a >> 23;
    uint m = (a & 0x7fffffu) | 0x800000u;
    uint shift = 126u - e;
    uint h = m >> shift;
    uint rem = m & ((1u << shift) - 1u);
    uint halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (h & 1u) == 1u)) {
        h += 1u;
    }
    return s | h;
}

// The f32 value of f16 bits `h` (low 16 bits), exactly.
float f16_bits_to_f32(uint h) {
    uint s = (h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint m = h & 0x3ffu;
    if (e == 0u) {
        // m * 2^-24, exact in f32.
        float v = (float)m * as_float(0x33800000u);
        return s != 0u ? -v : v;
    }
    if (e == 31u) {
        return as_float(s | 0x7f800000u | (m << 13));
    }
    return as_float(s | ((e + 112u) << 23) | (m << 13));
}

// `f` rounded to the nearest f16, as f32.
float round_f16(float f) {
    return f16_bits_to_f32(f32_to_f16_bits(f));
}

#if defined(SOFT_FMA)
// a * b + c rounded once, from exact parts, for devices whose `fma` is software that flushes
// subnormals (no CL_FP_FMA or no CL_FP_DENORM: rusticl on llvmpipe, through libclc): the
// product split as Dekker's two-product and the sum as Knuth's two-sum, in plain multiplies
// and adds, which keep subnormals. Correctly rounded except where the exact value lies within
// 2^-48 of a midpoint between two floats, and where the product's rounding error falls
// below the smallest subnormal with a nonzero addend.
float fma_rn(float a, float b, float c) {
    float p = a * b;
    if (!(fabs(p) < 1e37f) || !(fabs(c) < 1e37f)) {
        // Infinities, NaNs and values near overflow, where the splits would overflow.
        return p + c;
    }
    if (c == 0.0f) {
        // The rounded product, whose sign survives where its error term underflows; a
        // product that is exactly zero adds the signed zeros as IEEE adds them.
        return a == 0.0f || b == 0.0f ? p + c : p;
    }
    const float split = 4097.0f; // 2^12 + 1
    float ta = split * a;
    float ahi = ta - (ta - a);
    float alo = a - ahi;
    float tb = split * b;
    float bhi = tb - (tb - b);
    float blo = b - bhi;
    float e = ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo;
    float s = p + c;
    float bb = s - p;
    float t = (p - (s - bb)) + (c - bb);
    return s + (t + e);
}
#else
// a * b + c rounded once: OpenCL's full profile requires `fma` to be correctly rounded, and
// this device does it in hardware, subnormals kept (CL_FP_FMA and CL_FP_DENORM).
float fma_rn(float a, float b, float c) {
    return fma(a, b, c);
}
#endif

// a / b rounded to nearest: the device's quotient (OpenCL allows 2.5 ulp) corrected with
// exact residuals, as the reference divides in IEEE arithmetic.
float div_rn(float a, float b) {
    if (a == 0.0f || b == 0.0f || !(fabs(a) < 1e37f) || !(fabs(b) < 1e37f) || fabs(b) < 1e-37f) {
        // Zeros, infinities, NaNs, and divisors whose reciprocal is not normal.
        return a / b;
    }
    float y = 1.0f / b;
    float e = fma_rn(-b, y, 1.0f);
    float y1 = fma_rn(y, e, y);
    float q = a * y1;
    float r = fma_rn(-q, b, a);
    return fma_rn(r, y1, q);
}

// sqrt(x) rounded to nearest: the device's root (OpenCL allows 3 ulp) corrected by one
// Newton step on the exact residual.
float sqrt_rn(float x) {
    float y = sqrt(x);
    if (!(x > 1e-37f && x < 1e37f)) {
        return y; // zero, negative, tiny, huge, infinite or NaN
    }
    float r = fma_rn(-y, y, x);
    float h = div_rn(0.5f, y);
    return fma_rn(r, h, y);
}
