//! `smmla` through inline assembly: its intrinsic (`vmmlaq_s32`) is not stable Rust yet.

use core::arch::aarch64::*;
use core::arch::asm;

/// `acc += w · aᵀ` for `w` and `a` 2x8 byte matrices (row `i` in bytes `8i..8i + 8`):
/// lanes `[w0·a0, w0·a1, w1·a0, w1·a1]`.
#[inline]
#[target_feature(enable = "neon,i8mm")]
pub(crate) fn smmla(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `smmla` reads and writes only these registers; the function's target features
    // (which its callers must have) include FEAT_I8MM.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
