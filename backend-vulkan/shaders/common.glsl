// Helpers shared by every kernel: exact f16 <-> f32 conversions done with integer
// arithmetic, so results do not depend on how a driver rounds packHalf2x16, and the
// 2D grid index that lets a dispatch exceed 65535 workgroups in x.

// Bits of the f16 nearest to `f`, ties to even (as the `half` crate converts).
uint f32_to_f16_bits(float f) {
    uint x = floatBitsToUint(f);
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
        float v = float(m) * uintBitsToFloat(0x33800000u);
        return s != 0u ? -v : v;
    }
    if (e == 31u) {
        return uintBitsToFloat(s | 0x7f800000u | (m << 13));
    }
    return uintBitsToFloat(s | ((e + 112u) << 23) | (m << 13));
}

// `f` rounded to the nearest f16, as f32.
float round_f16(float f) {
    return f16_bits_to_f32(f32_to_f16_bits(f));
}

// Index of this workgroup in a grid laid out x-major over (x, y).
uint group_index() {
    return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
}

// a * b + c rounded once, from exact parts: the product split as Dekker's two-product and the
// sum as Knuth's two-sum, so the result does not depend on whether the driver fuses `fma`
// (Mesa's lavapipe does not). Correctly rounded except where the exact value lies within
// 2^-48 of a midpoint between two floats, and for operands near overflow or underflow.
float fma_rn(float a, float b, float c) {
    precise float p = a * b;
    if (!(abs(p) < 1e37) || !(abs(c) < 1e37)) {
        // Infinities, NaNs and values near overflow, where the splits would overflow.
        precise float r = p + c;
        return r;
    }
    const float split = 4097.0; // 2^12 + 1
    precise float ta = split * a;
    precise float ahi = ta - (ta - a);
    precise float alo = a - ahi;
    precise float tb = split * b;
    precise float bhi = tb - (tb - b);
    precise float blo = b - bhi;
    precise float e = ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo;
    precise float s = p + c;
    precise float bb = s - p;
    precise float t = (p - (s - bb)) + (c - bb);
    precise float r = s + (t + e);
    return r;
}

// a / b rounded to nearest: the device's quotient corrected with exact residuals (the
// reference divides in IEEE arithmetic; a GPU's `/` may be 2.5 ulp off).
float div_rn(float a, float b) {
    if (a == 0.0 || b == 0.0 || !(abs(a) < 1e37) || !(abs(b) < 1e37) || abs(b) < 1e-37) {
        // Zeros, infinities, NaNs, and divisors whose reciprocal is not normal.
        precise float plain = a / b;
        return plain;
    }
    precise float y = 1.0 / b;
    precise float e = fma_rn(-b, y, 1.0);
    precise float y1 = fma_rn(y, e, y);
    precise float q = a * y1;
    precise float r = fma_rn(-q, b, a);
    precise float q1 = fma_rn(r, y1, q);
    return q1;
}

// sqrt(x) rounded to nearest: the device's root corrected by one Newton step on the exact
// residual.
float sqrt_rn(float x) {
    precise float y = sqrt(x);
    if (!(x > 1e-37 && x < 1e37)) {
        return y; // zero, negative, tiny, huge, infinite or NaN
    }
    precise float r = fma_rn(-y, y, x);
    precise float h = div_rn(0.5, y);
    precise float y1 = fma_rn(r, h, y);
    return y1;
}
