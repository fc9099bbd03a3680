//! `sdot` through inline assembly: its intrinsic (`vdotq_s32`) is not stable Rust yet.

use core::arch::aarch64::*;
use core::arch::asm;

/// `acc[l] += Σ_e w[4l + e] * a[4 LANE + e]`: every lane of `w` against the four bytes of
/// lane `LANE` of `a` (the by-element form, so one activation register serves four groups).
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) fn sdot_lane<const LANE: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` reads and writes only these registers; the function's target features
    // (which its callers must have) include FEAT_DotProd.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `acc[l] += Σ_e w[4l + e] * a[4l + e]`: lane by lane.
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(crate) fn sdot(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` reads and writes only these registers; the function's target features
    // (which its callers must have) include FEAT_DotProd.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.16b",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}
