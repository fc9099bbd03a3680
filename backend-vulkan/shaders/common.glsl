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
