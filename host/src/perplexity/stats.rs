//! The statistics of llama.cpp's `llama-perplexity`, formula for formula: the running mean of
//! the negative log-likelihood and of its square, and the uncertainties derived from them, so
//! Tern's numbers and llama.cpp's mean the same thing.

/// Sums of the negative log-likelihoods of scored tokens (natural log), from which perplexity
/// and its uncertainty follow.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NllStats {
    /// Sum of the nll of every scored token.
    pub sum: f64,
    /// Sum of their squares.
    pub sum2: f64,
    /// Tokens scored.
    pub count: usize,
}

impl NllStats {
    /// Adds one scored token's negative log-likelihood.
    pub fn push(&mut self, nll: f64) {
        self.sum += nll;
        self.sum2 += nll * nll;
        self.count += 1;
    }

    /// Adds the tokens another accumulator scored.
    pub fn merge(&mut self, other: &NllStats) {
        self.sum += other.sum;
        self.sum2 += other.sum2;
        self.count += other.count;
    }

    /// The mean nll: the log of the perplexity (NaN before any token).
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }

    /// Perplexity: e to the mean nll.
    pub fn ppl(&self) -> f64 {
        self.mean().exp()
    }

    /// llama.cpp's "+/-" of the final estimate: the standard error of the mean nll
    /// (`sqrt((mean(nll²) - mean(nll)²) / (count - 1))`) times the perplexity, the first-order
    /// error of `exp`. `None` where llama.cpp reports "unexpected negative standard
    /// deviation": a variance that is not positive, which includes fewer than two tokens.
    pub fn ppl_error(&self) -> Option<f64> {
        let n = self.count as f64;
        let mean = self.sum / n;
        let variance = self.sum2 / n - mean * mean;
        (variance > 0.0 && self.count > 1).then(|| (variance / (n - 1.0)).sqrt() * mean.exp())
    }
}

/// llama.cpp's `mean_and_uncertainty` of the KL-divergence statistics: the mean of `count`
/// values from their sum and sum of squares, and its standard error, reported as 0 for ten
/// values or fewer (too few to say).
pub fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let n = count as f64;
    let mean = sum / n;
    let variance = sum2 / n - mean * mean;
    let error = if variance > 0.0 && count > 10 {
        (variance / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, error)
}

/// llama.cpp's `covariance` of two means (of `count` paired values), 0 for fewer than ten.
pub fn covariance(sum_a: f64, sum_b: f64, sum_ab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1.0)
}

/// The `fraction` quantile of ascending `sorted` values, interpolated between neighbours as
/// llama.cpp's `percentile` does (NaN for no values).
pub fn percentile(sorted: &[f32], fraction: f32) -> f32 {
    let (Some(&lowest), Some(&highest)) = (sorted.first(), sorted.last()) else {
        return f32::NAN;
    };
    if fraction <= 0.0 {
        return lowest;
    }
    if fraction >= 1.0 {
        return highest;
    }
    let p = fraction * (sorted.len() - 1) as f32;
    let at = p as usize;
    let t = p - at as f32;
    (1.0 - t) * sorted[at] + t * sorted[(at + 1).min(sorted.len() - 1)]
}

/// The median of ascending `sorted` values, the mean of the middle two for an even count.
pub fn median(sorted: &[f32]) -> f32 {
    let n = sorted.len();
    match n {
        0 => f32::NAN,
        _ if n % 2 == 0 => 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]),
        _ => sorted[n / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: &[f64]) -> NllStats {
        let mut s = NllStats::default();
        values.iter().for_each(|&v| s.push(v));
        s
    }

    #[test]
    fn perplexity_is_e_to_the_mean_nll() {
        // A model that gives every token probability 1/10 has perplexity 10.
        let s = stats(&[10f64.ln(); 7]);
        assert!((s.ppl() - 10.0).abs() < 1e-12);
        let s = stats(&[1.0, 2.0, 3.0]);
        assert!((s.ppl() - 2f64.exp()).abs() < 1e-12);
    }

    #[test]
    fn the_error_is_the_standard_error_of_the_mean_times_ppl() {
        // nll 1, 2, 3: mean 2, population variance 2/3, standard error sqrt((2/3)/2).
        let s = stats(&[1.0, 2.0, 3.0]);
        let expected = (1.0f64 / 3.0).sqrt() * 2f64.exp();
        assert!((s.ppl_error().unwrap() - expected).abs() < 1e-12);
        // llama.cpp has no estimate for constant nll or a single token.
        assert_eq!(stats(&[0.5; 4]).ppl_error(), None);
        assert_eq!(stats(&[0.5]).ppl_error(), None);
        assert_eq!(NllStats::default().ppl_error(), None);
    }

    #[test]
    fn merging_equals_pushing_everything_into_one() {
        let (a, b) = (stats(&[0.25, 4.0]), stats(&[1.5, 2.5, 3.0]));
        let mut merged = a;
        merged.merge(&b);
        assert_eq!(merged, stats(&[0.25, 4.0, 1.5, 2.5, 3.0]));
    }

    #[test]
    fn uncertainty_needs_more_than_ten_values() {
        let values: Vec<f64> = (0..11).map(f64::from).collect();
        let sum: f64 = values.iter().sum();
        let sum2: f64 = values.iter().map(|v| v * v).sum();
        let (mean, error) = mean_and_uncertainty(sum, sum2, 11);
        assert_eq!(mean, 5.0);
        // Population variance of 0..=10 is 10; the standard error is sqrt(10 / 10).
        assert!((error - 1.0).abs() < 1e-12);
        assert_eq!(mean_and_uncertainty(sum, sum2, 10).1, 0.0);
        assert_eq!(mean_and_uncertainty(0.0, 0.0, 0), (0.0, 0.0));
    }

    #[test]
    fn covariance_of_a_series_with_itself_is_its_variance_of_the_mean() {
        let values: Vec<f64> = (0..11).map(f64::from).collect();
        let sum: f64 = values.iter().sum();
        let sum2: f64 = values.iter().map(|v| v * v).sum();
        let (_, error) = mean_and_uncertainty(sum, sum2, 11);
        assert!((covariance(sum, sum, sum2, 11) - error * error).abs() < 1e-12);
        assert_eq!(covariance(sum, sum, sum2, 9), 0.0);
    }

    #[test]
    fn percentiles_interpolate_like_llama_cpp() {
        let v = [0.0f32, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert!((percentile(&v, 0.9) - 3.6).abs() < 1e-6);
        assert_eq!(median(&v), 2.0);
        assert_eq!(median(&v[..4]), 1.5);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
