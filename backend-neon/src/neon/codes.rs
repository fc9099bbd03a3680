//! The code vectors of the portable panel layout (`tern_core::cpu` panels): group `g` of a
//! sub-block, four columns of the eight rows, as two registers of signed bytes (rows 0-3,
//! rows 4-7), ready for a signed byte product against four activation codes.

use core::arch::aarch64::*;

use tern_core::cpu::formats::Format;

/// Whether the kernels take `F`'s codes centered: 8-bit codes (0..=255) do not fit a
/// signed byte, so they are multiplied as `q - 128` (one `eor` with 0x80), which folds in
/// the zero point.
pub(crate) const fn centered<F: Format>() -> bool {
    F::BITS == 8
}

/// Group `g` (columns `4g..4g + 4`) of the sub-block at `w`: byte `4r + e` of register
/// `h` is row `4h + r`, column `4g + e`. 4-bit codes come out of their nibble, 8-bit codes
/// centered (`q - 128`, see [`centered`]).
///
/// # Safety
/// `w` points to a whole sub-block of format `F`; `g < F::GROUPS`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn group<F: Format>(w: *const u8, g: usize) -> [int8x16_t; 2] {
    // SAFETY: vector `g` (or, for 4-bit codes, `g % VECTORS`) lies within the sub-block's
    // `CODE_BYTES`.
    let (lo, hi) = unsafe {
        let v = if F::BITS == 4 { g % F::VECTORS } else { g };
        (vld1q_u8(w.add(32 * v)), vld1q_u8(w.add(32 * v + 16)))
    };
    let (lo, hi) = if F::BITS == 4 {
        if g < F::VECTORS {
            let mask = vdupq_n_u8(0x0f);
            (vandq_u8(lo, mask), vandq_u8(hi, mask))
        } else {
            (vshrq_n_u8::<4>(lo), vshrq_n_u8::<4>(hi))
        }
    } else if centered::<F>() {
        let flip = vdupq_n_u8(0x80);
        (veorq_u8(lo, flip), veorq_u8(hi, flip))
    } else {
        (lo, hi)
    };
    [vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)]
}

/// The four activation codes at `p` in every 32-bit lane.
///
/// # Safety
/// `p` points to four readable bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) unsafe fn broadcast4(p: *const u8) -> int8x16_t {
    // SAFETY: the caller passes four readable bytes; `read_unaligned` needs no alignment.
    let word = unsafe { p.cast::<i32>().read_unaligned() };
    vreinterpretq_s8_s32(vdupq_n_s32(word))
}
