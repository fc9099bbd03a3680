//! Log-probabilities of one row of logits: the negative log-likelihood of the next token, as
//! llama.cpp's `log_softmax` computes it, and llama.cpp's 16-bit form of a whole row, which
//! KL-divergence base files store.

/// How far below the most likely token (in nats) the 16-bit form resolves log-probabilities;
/// anything less likely is stored as the floor. llama.cpp's bound.
const RANGE_NATS: f32 = 16.0;

/// The largest 16-bit code.
const CODE_MAX: f32 = 65535.0;

/// The negative log-likelihood of `target` under the softmax of `logits`: the largest logit
/// in f32, the exponentials in f32 summed in f64, the log in f64 (llama.cpp's `log_softmax`).
pub fn nll(logits: &[f32], target: usize) -> f64 {
    let max = max_logit(logits);
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    sum_exp.ln() - f64::from(logits[target] - max)
}

/// The index of the largest logit (the first of equals) and its value.
pub fn argmax(logits: &[f32]) -> (usize, f32) {
    let mut best = (0, logits[0]);
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > best.1 {
            best = (i, l);
        }
    }
    best
}

fn max_logit(logits: &[f32]) -> f32 {
    argmax(logits).1
}

/// What decodes a row's 16-bit codes into log-probabilities: `log p = scale * code +
/// min_log_prob`. Codes resolve the range from the largest logit down to 16 nats below it (or
/// the smallest logit, if nearer) in 65535 steps; code 0 also stands for everything below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowScale {
    /// Log-probability per code step.
    pub scale: f32,
    /// The log-probability of code 0.
    pub min_log_prob: f32,
}

impl RowScale {
    /// The log-probability `code` stands for.
    pub fn decode(self, code: u16) -> f32 {
        self.scale * f32::from(code) + self.min_log_prob
    }
}

/// A row's softmax, summarised as the 16-bit encoder and the KL divergence need it.
struct Softmax {
    max: f32,
    /// The floor of the encoded range: the smallest logit, or 16 nats below the largest.
    min: f32,
    /// The log of the softmax's denominator, after subtracting `max`, in f32 as llama.cpp has
    /// it here.
    log_sum_exp: f32,
}

impl Softmax {
    fn of(logits: &[f32]) -> Softmax {
        let max = max_logit(logits);
        let lowest = logits.iter().copied().fold(logits[0], f32::min);
        let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
        Softmax {
            max,
            min: lowest.max(max - RANGE_NATS),
            log_sum_exp: sum_exp.ln() as f32,
        }
    }

    fn scale(&self) -> RowScale {
        RowScale {
            scale: (self.max - self.min) / CODE_MAX,
            min_log_prob: self.min - self.max - self.log_sum_exp,
        }
    }
}

/// Encodes the log-probabilities of `logits` into `codes` (one per logit) as llama.cpp's
/// `log_softmax` does for its logits files, and returns how to decode them.
pub fn encode(logits: &[f32], codes: &mut [u16]) -> RowScale {
    encode_with(&Softmax::of(logits), logits, codes)
}

fn encode_with(softmax: &Softmax, logits: &[f32], codes: &mut [u16]) -> RowScale {
    let scale = softmax.scale();
    if scale.scale == 0.0 {
        codes.fill(0);
    } else {
        let inverse = 1.0 / scale.scale;
        for (code, &l) in codes.iter_mut().zip(logits) {
            *code = if l > softmax.min {
                nearest_int(inverse * (l - softmax.min)) as u16
            } else {
                0
            };
        }
    }
    scale
}

/// llama.cpp's `nearest_int`: round to nearest, ties to even, for |x| < 2^22, by adding
/// 1.5 * 2^23 so the integer lands in the mantissa's low bits.
fn nearest_int(x: f32) -> i32 {
    let bits = (x + 12_582_912.0).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// A row of a base run, as a base file holds it.
#[derive(Clone, Copy, Debug)]
pub struct BaseRow<'a> {
    /// The base's negative log-likelihood of the row's target token, exact.
    pub nll: f64,
    /// The base's most likely token, exact.
    pub top: u32,
    /// How `codes` decode.
    pub scale: RowScale,
    /// The base's log-probabilities, 16-bit encoded.
    pub codes: &'a [u16],
}

/// How one row of a run compares with the base's row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowDivergence {
    /// KL(base || run) of the row, in nats.
    pub kld: f64,
    /// Whether the run's most likely token is the base's.
    pub same_top: bool,
}

/// KL(base || run) of one row: `sum p_base * (log p_base - log p_run)` over the tokens the
/// base gives more than e^-16, with `p_base` decoded from its 16-bit form (llama.cpp's
/// definition). The run's log-probabilities go through the same 16-bit encoding first (within
/// its range; exact below it), so that both sides carry the same rounding: a run compared
/// with its own base gives exactly 0, and rounding biases neither side. `codes` is scratch of
/// the row's width.
pub fn divergence(base: &BaseRow<'_>, logits: &[f32], codes: &mut [u16]) -> RowDivergence {
    let softmax = Softmax::of(logits);
    let scale = encode_with(&softmax, logits, codes);
    let mut kld = 0.0f64;
    for ((&base_code, &code), &l) in base.codes.iter().zip(codes.iter()).zip(logits) {
        let log_p_base = base.scale.decode(base_code);
        if log_p_base > -RANGE_NATS {
            let log_p = if l > softmax.min {
                scale.decode(code)
            } else {
                l - softmax.max - softmax.log_sum_exp
            };
            kld += f64::from(log_p_base.exp() * (log_p_base - log_p));
        }
    }
    RowDivergence {
        kld,
        same_top: argmax(logits).0 == base.top as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_softmax(logits: &[f32]) -> Vec<f64> {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
        logits.iter().map(|&l| l as f64 - max - sum.ln()).collect()
    }

    fn base<'a>(logits: &[f32], target: usize, codes: &'a mut Vec<u16>) -> BaseRow<'a> {
        codes.resize(logits.len(), 0);
        let scale = encode(logits, codes);
        BaseRow {
            nll: nll(logits, target),
            top: argmax(logits).0 as u32,
            scale,
            codes,
        }
    }

    #[test]
    fn nll_of_a_uniform_row_is_the_log_of_its_width() {
        let row = [0.75f32; 1000];
        assert!((nll(&row, 3) - 1000f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn nll_is_minus_the_log_softmax() {
        let row: Vec<f32> = (0..300)
            .map(|i| ((i * 37) % 101) as f32 * 0.13 - 4.0)
            .collect();
        let exact = log_softmax(&row);
        for t in [0, 17, 150, 299] {
            assert!((nll(&row, t) + exact[t]).abs() < 1e-5, "token {t}");
        }
    }

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        assert_eq!(nearest_int(0.4), 0);
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(65534.6), 65535);
        assert_eq!(nearest_int(-2.6), -3);
    }

    #[test]
    fn codes_decode_within_half_a_step_over_the_range() {
        let row: Vec<f32> = (0..500).map(|i| (i as f32 * 0.071).sin() * 12.0).collect();
        let mut codes = vec![0; row.len()];
        let scale = encode(&row, &mut codes);
        let exact = log_softmax(&row);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for (i, &l) in row.iter().enumerate() {
            if l > max - RANGE_NATS {
                let err = (scale.decode(codes[i]) as f64 - exact[i]).abs();
                assert!(err <= scale.scale as f64 * 0.5 + 1e-5, "entry {i}: {err}");
            }
        }
        // The most likely token has the largest code.
        assert_eq!(codes[argmax(&row).0], u16::MAX);
    }

    #[test]
    fn a_row_compared_with_itself_diverges_by_exactly_zero() {
        let row: Vec<f32> = (0..2000)
            .map(|i| ((i * 7919) % 2003) as f32 * 0.011)
            .collect();
        let mut codes = Vec::new();
        let b = base(&row, 5, &mut codes);
        let mut scratch = vec![0; row.len()];
        let d = divergence(&b, &row, &mut scratch);
        assert_eq!(d.kld, 0.0);
        assert!(d.same_top);
        // A flat row (scale 0) too.
        let flat = [2.0f32; 64];
        let mut codes = Vec::new();
        let b = base(&flat, 1, &mut codes);
        assert_eq!(divergence(&b, &flat, &mut scratch[..64]).kld, 0.0);
    }

    #[test]
    fn divergence_of_known_distributions() {
        // Base p = (0.7, 0.2, 0.1), run q = (0.2, 0.5, 0.3):
        // KL(p || q) = 0.7 ln(0.7/0.2) + 0.2 ln(0.2/0.5) + 0.1 ln(0.1/0.3).
        let p = [0.7f32, 0.2, 0.1];
        let q = [0.2f32, 0.5, 0.3];
        let logits = |d: &[f32]| d.iter().map(|x| x.ln() + 3.0).collect::<Vec<f32>>();
        let expected =
            0.7 * (0.7f64 / 0.2).ln() + 0.2 * (0.2f64 / 0.5).ln() + 0.1 * (1f64 / 3.0).ln();
        let mut codes = Vec::new();
        let b = base(&logits(&p), 0, &mut codes);
        let mut scratch = vec![0; 3];
        let d = divergence(&b, &logits(&q), &mut scratch);
        assert!((d.kld - expected).abs() < 1e-3, "{} vs {expected}", d.kld);
        assert!(!d.same_top);
        // Swapping the roles gives KL(q || p), which differs: the divergence is not symmetric.
        let mut codes = Vec::new();
        let b = base(&logits(&q), 0, &mut codes);
        let reverse = divergence(&b, &logits(&p), &mut scratch).kld;
        let expected_reverse =
            0.2 * (0.2f64 / 0.7).ln() + 0.5 * (0.5f64 / 0.2).ln() + 0.3 * (3f64).ln();
        assert!((reverse - expected_reverse).abs() < 1e-3);
    }

    #[test]
    fn a_shift_of_all_logits_changes_nothing() {
        let row: Vec<f32> = (0..100).map(|i| (i as f32 * 0.3).cos() * 5.0).collect();
        let shifted: Vec<f32> = row.iter().map(|l| l + 0.25).collect();
        let mut codes = Vec::new();
        let b = base(&row, 9, &mut codes);
        let mut scratch = vec![0; row.len()];
        let d = divergence(&b, &shifted, &mut scratch);
        assert!(d.kld.abs() < 1e-5, "{}", d.kld);
        assert!(d.same_top);
        assert!((nll(&shifted, 9) - b.nll).abs() < 1e-5);
    }
}
