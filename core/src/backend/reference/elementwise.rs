//! Element-wise ops.

/// `gate` = silu(`gate`) * `up`, computed as run.c's SwiGLU.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let mut v = *g;
        v *= 1.0 / (1.0 + libm::expf(-v));
        *g = v * u;
    }
}

/// `x` += `y`.
pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
