//! When two results of a kernel count as the same: within a tolerance scaled by the size of
//! the terms that were summed, so that summation order is forgiven and wrong elements are not.

/// Whether `got` is within `tol * scale[i]` of `want` at every `i`, where `scale[i]` is the
/// sum of the magnitudes of the terms behind `want[i]`. Positions whose reference is not
/// finite, or whose scale overflows, are skipped: there both sides are free to differ in how
/// they round to infinity. Returns the first position that differs.
pub fn first_difference(got: &[f32], want: &[f32], scale: &[f32], tol: f32) -> Option<usize> {
    assert_eq!(got.len(), want.len(), "result lengths differ");
    (0..want.len()).find(|&i| {
        let (g, w, s) = (got[i], want[i], scale[i]);
        if !w.is_finite() || !s.is_finite() || !(tol * s).is_finite() {
            return false;
        }
        // A NaN result differs from any finite reference.
        let within = (g - w).abs() <= tol * s + f32::MIN_POSITIVE;
        !within
    })
}
