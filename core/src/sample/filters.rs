//! The stages of the sampler chain, each over a list of candidate ids.
//!
//! Candidates are token ids kept in caller-provided scratch; a stage shrinks the list to a
//! prefix and returns its new length. Nothing here allocates, and every comparison is a total
//! order (logit descending, then id ascending), so the kept set and the draw depend only on
//! the inputs, never on the sort algorithm or the platform.

use core::cmp::Ordering;

/// Makes NaN logits `-inf`: a NaN means the model has no opinion worth sampling.
pub(crate) fn sanitize(logits: &mut [f32]) {
    for l in logits.iter_mut().filter(|l| l.is_nan()) {
        *l = f32::NEG_INFINITY;
    }
}

/// llama.cpp's repetition penalty: every distinct id in `window` has its logit divided by
/// `penalty` when positive and multiplied otherwise, once however often it occurs.
///
/// Ids outside `logits` are ignored. `scratch` marks ids already seen when it covers the
/// vocabulary (linear time); otherwise the window is searched for earlier occurrences.
pub(crate) fn repeat_penalty(
    logits: &mut [f32],
    window: &[u32],
    penalty: f32,
    scratch: &mut [u32],
) {
    let apply = |l: &mut f32| {
        if *l <= 0.0 {
            *l *= penalty;
        } else {
            *l /= penalty;
        }
    };
    if scratch.len() >= logits.len() {
        for &id in window {
            if let Some(mark) = scratch.get_mut(id as usize) {
                *mark = 0;
            }
        }
        for &id in window {
            let (Some(mark), Some(l)) = (scratch.get_mut(id as usize), logits.get_mut(id as usize))
            else {
                continue;
            };
            if *mark == 0 {
                *mark = 1;
                apply(l);
            }
        }
    } else {
        for (j, &id) in window.iter().enumerate() {
            if let Some(l) = logits.get_mut(id as usize)
                && !window[..j].contains(&id)
            {
                apply(l);
            }
        }
    }
}

/// Writes the ids of all logits above `-inf` to the front of `cands`; returns how many and
/// the largest such logit (`-inf` when there is none).
///
/// `cands` must be at least as long as `logits`.
pub(crate) fn gather(logits: &[f32], cands: &mut [u32]) -> (usize, f32) {
    let mut count = 0;
    let mut max = f32::NEG_INFINITY;
    for (id, &l) in (0u32..).zip(logits) {
        if l > f32::NEG_INFINITY {
            // `count <= id < logits.len() <= cands.len()`.
            cands[count] = id;
            count += 1;
            max = max.max(l);
        }
    }
    (count, max)
}

/// The candidate order: higher logit first, lower id first among equals.
fn order(logits: &[f32]) -> impl Fn(&u32, &u32) -> Ordering + '_ {
    |&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    }
}

/// Moves the `k` best candidates of `cands` to its front, in order. Everything after them
/// ranks below them, which lets later calls extend a sorted prefix chunk by chunk.
fn sort_front(logits: &[f32], cands: &mut [u32], k: usize) {
    if k == 0 {
        return;
    }
    if k < cands.len() {
        cands.select_nth_unstable_by(k - 1, order(logits));
    }
    cands[..k].sort_unstable_by(order(logits));
}

/// Keeps the `k` most likely candidates (in no particular order); `0` = all.
pub(crate) fn top_k(logits: &[f32], cands: &mut [u32], k: usize) -> usize {
    if k == 0 || k >= cands.len() {
        return cands.len();
    }
    cands.select_nth_unstable_by(k - 1, order(logits));
    k
}

/// Keeps the smallest best-first prefix whose softmax mass reaches `p` (at least one).
///
/// Sorting is done in doubling chunks: a peaked distribution, the usual case, reaches `p`
/// within the first few dozen tokens, so the full vocabulary is rarely sorted.
pub(crate) fn top_p(logits: &[f32], cands: &mut [u32], max: f32, p: f32) -> usize {
    let len = cands.len();
    if p >= 1.0 || len <= 1 {
        return len;
    }
    let weight = |id: u32| f64::from(libm::expf(logits[id as usize] - max));
    let total: f64 = cands.iter().map(|&id| weight(id)).sum();
    let target = f64::from(p) * total;
    let mut cum = 0.0;
    let mut sorted = 0;
    let mut chunk = 64;
    while sorted < len {
        let end = len.min(sorted + chunk);
        sort_front(logits, &mut cands[sorted..], end - sorted);
        for (j, &id) in cands[sorted..end].iter().enumerate() {
            cum += weight(id);
            if cum >= target {
                return sorted + j + 1;
            }
        }
        sorted = end;
        chunk *= 2;
    }
    len
}

/// Keeps candidates whose probability is at least `min_p` times the largest, in order.
pub(crate) fn min_p(logits: &[f32], cands: &mut [u32], max: f32, min_p: f32) -> usize {
    if min_p <= 0.0 {
        return cands.len();
    }
    // p / p_max = exp(l - max), so the test needs no normalisation.
    let floor = libm::logf(min_p);
    let mut kept = 0;
    for j in 0..cands.len() {
        let id = cands[j];
        if logits[id as usize] - max >= floor {
            cands[kept] = id;
            kept += 1;
        }
    }
    kept
}

/// Draws one candidate from the softmax of `logits / temperature` using the uniform `u` in
/// `[0, 1)`. The candidates' logits are overwritten with their unnormalised weights.
///
/// `cands` must be non-empty and hold the candidate with logit `max`.
pub(crate) fn draw(logits: &mut [f32], cands: &[u32], max: f32, temperature: f32, u: f64) -> u32 {
    let mut total = 0.0f64;
    for &id in cands {
        let l = &mut logits[id as usize];
        *l = libm::expf((*l - max) / temperature);
        total += f64::from(*l);
    }
    let target = u * total;
    let mut cum = 0.0f64;
    let mut last = cands[0];
    for &id in cands {
        let w = f64::from(logits[id as usize]);
        if w > 0.0 {
            cum += w;
            last = id;
            if cum > target {
                return id;
            }
        }
    }
    // Only reachable when rounding leaves `cum` a hair below `target`.
    last
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn min_p_keeps_relative_mass_in_order() {
        // exp(-0.5) = 0.61 and exp(-1) = 0.37 of the top token's probability.
        let logits = [1.0f32, 2.0, 0.5, 1.9, 1.5];
        let mut cands = [4u32, 0, 1, 2, 3];
        let kept = min_p(&logits, &mut cands, 2.0, 0.5);
        assert_eq!(&cands[..kept], &[4, 1, 3]);
    }

    #[test]
    fn top_k_keeps_the_best_and_breaks_ties_by_id() {
        let logits = [1.0f32, 3.0, 3.0, 2.0, 3.0];
        let mut cands = [0u32, 1, 2, 3, 4];
        let kept = top_k(&logits, &mut cands, 2);
        let mut best = cands[..kept].to_vec();
        best.sort();
        assert_eq!(best, [1, 2]);
    }

    proptest! {
        #[test]
        fn chunked_top_p_matches_full_sort(
            logits in prop::collection::vec(-8.0f32..8.0, 1..600),
            p in 0.01f32..1.0,
        ) {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut cands: Vec<u32> = (0..logits.len() as u32).collect();
            let kept = top_p(&logits, &mut cands, max, p);
            let mut full: Vec<u32> = (0..logits.len() as u32).collect();
            full.sort_by(|&a, &b| {
                logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b))
            });
            prop_assert!(kept >= 1);
            prop_assert_eq!(&cands[..kept], &full[..kept]);
        }

    }
}
