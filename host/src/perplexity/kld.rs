//! The statistics of a KL-divergence run, as llama.cpp's `kl_divergence` keeps and reports
//! them: both runs' perplexities and their ratio, the mean KL divergence, the change of the
//! target token's probability (Δp), and how often the most likely token agrees.

use super::logprobs::RowDivergence;
use super::stats::{covariance, mean_and_uncertainty};

/// Running sums over the scored rows of a run compared with a base (llama.cpp's
/// `kl_divergence_result`). Each method returns a value and its uncertainty where llama.cpp
/// reports one.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KldStats {
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    max_p_diff: f64,
    n_same_top: usize,
    count: usize,
}

impl KldStats {
    /// Adds one row: the run's and the base's negative log-likelihood of the target, and
    /// how the row's distributions compare. Returns the row's Δp (the run's probability of
    /// the target minus the base's).
    pub fn push(&mut self, nll: f64, nll_base: f64, row: RowDivergence) -> f64 {
        self.sum_nll += nll;
        self.sum_nll2 += nll * nll;
        self.sum_nll_base += nll_base;
        self.sum_nll_base2 += nll_base * nll_base;
        self.sum_nll_nll_base += nll * nll_base;
        self.sum_kld += row.kld;
        self.sum_kld2 += row.kld * row.kld;
        let p_diff = (-nll).exp() - (-nll_base).exp();
        self.sum_p_diff += p_diff;
        let p_diff2 = p_diff * p_diff;
        self.sum_p_diff2 += p_diff2;
        self.sum_p_diff4 += p_diff2 * p_diff2;
        self.max_p_diff = self.max_p_diff.max(p_diff.abs());
        self.n_same_top += usize::from(row.same_top);
        self.count += 1;
        p_diff
    }

    /// Rows compared.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Rows whose most likely token is the base's.
    pub fn n_same_top(&self) -> usize {
        self.n_same_top
    }

    fn log_ppl(&self) -> (f64, f64) {
        mean_and_uncertainty(self.sum_nll, self.sum_nll2, self.count)
    }

    fn log_ppl_base(&self) -> (f64, f64) {
        mean_and_uncertainty(self.sum_nll_base, self.sum_nll_base2, self.count)
    }

    fn log_ppl_covariance(&self) -> f64 {
        covariance(
            self.sum_nll,
            self.sum_nll_base,
            self.sum_nll_nll_base,
            self.count,
        )
    }

    /// The run's perplexity, PPL(Q).
    pub fn ppl(&self) -> (f64, f64) {
        exp_with_error(self.log_ppl())
    }

    /// The base's perplexity, PPL(base).
    pub fn ppl_base(&self) -> (f64, f64) {
        exp_with_error(self.log_ppl_base())
    }

    /// Pearson correlation of the two runs' nll means: Cor(ln PPL(Q), ln PPL(base)).
    pub fn log_ppl_correlation(&self) -> f64 {
        self.log_ppl_covariance() / (self.log_ppl().1 * self.log_ppl_base().1)
    }

    /// ln(PPL(Q) / PPL(base)), its error from both errors and their covariance.
    pub fn log_ppl_ratio(&self) -> (f64, f64) {
        let (a, da) = self.log_ppl();
        let (b, db) = self.log_ppl_base();
        // Clamped at 0: for identical runs rounding can leave the difference a hair below.
        let unc = (da * da + db * db - 2.0 * self.log_ppl_covariance())
            .max(0.0)
            .sqrt();
        (a - b, unc)
    }

    /// PPL(Q) / PPL(base).
    pub fn ppl_ratio(&self) -> (f64, f64) {
        exp_with_error(self.log_ppl_ratio())
    }

    /// PPL(Q) - PPL(base).
    pub fn ppl_difference(&self) -> (f64, f64) {
        let (q, dq) = self.ppl();
        let (b, db) = self.ppl_base();
        let cov = q * b * self.log_ppl_covariance();
        (q - b, (dq * dq + db * db - 2.0 * cov).max(0.0).sqrt())
    }

    /// The mean KL divergence per token, KL(base || run), in nats.
    pub fn kld(&self) -> (f64, f64) {
        mean_and_uncertainty(self.sum_kld, self.sum_kld2, self.count)
    }

    /// The mean Δp: how much more likely the run finds the target than the base does.
    pub fn p_diff(&self) -> (f64, f64) {
        mean_and_uncertainty(self.sum_p_diff, self.sum_p_diff2, self.count)
    }

    /// The largest |Δp| of a row.
    pub fn max_abs_p_diff(&self) -> f64 {
        self.max_p_diff
    }

    /// The root mean square of Δp.
    pub fn p_diff_rms(&self) -> (f64, f64) {
        let (mse, mse_unc) = mean_and_uncertainty(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.sqrt();
        // d sqrt(x) = dx / (2 sqrt(x)); nothing to propagate where every Δp is 0.
        let unc = if rms > 0.0 { 0.5 / rms * mse_unc } else { 0.0 };
        (rms, unc)
    }

    /// The fraction of rows whose most likely token is the base's ("Same top p"), and its
    /// binomial standard error.
    pub fn same_top(&self) -> (f64, f64) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        let p = self.n_same_top as f64 / self.count as f64;
        let unc = if self.count > 1 {
            (p * (1.0 - p) / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        (p, unc)
    }
}

/// e^x with the first-order error of e^x.
fn exp_with_error((x, dx): (f64, f64)) -> (f64, f64) {
    let e = x.exp();
    (e, e * dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kld: f64, same_top: bool) -> RowDivergence {
        RowDivergence { kld, same_top }
    }

    #[test]
    fn a_run_against_itself_has_no_divergence_and_the_same_perplexity() {
        let mut s = KldStats::default();
        for i in 0..50 {
            let nll = 0.5 + (i % 7) as f64 * 0.3;
            assert_eq!(s.push(nll, nll, row(0.0, true)), 0.0);
        }
        assert_eq!(s.kld(), (0.0, 0.0));
        assert_eq!(s.same_top(), (1.0, 0.0));
        assert_eq!(s.ppl(), s.ppl_base());
        assert_eq!(s.log_ppl_ratio().0, 0.0);
        assert!(s.log_ppl_ratio().1.abs() < 1e-6);
        assert!((s.log_ppl_correlation() - 1.0).abs() < 1e-9);
        assert_eq!(s.p_diff_rms(), (0.0, 0.0));
    }

    #[test]
    fn means_and_agreement_count_every_row() {
        let mut s = KldStats::default();
        // Four rows, KLD 0.1 0.2 0.3 0.4, three of four agree on the top token.
        for (i, kld) in [0.1, 0.2, 0.3, 0.4].into_iter().enumerate() {
            s.push(1.0, 2.0, row(kld, i != 2));
        }
        assert!((s.kld().0 - 0.25).abs() < 1e-12);
        // Ten rows or fewer: llama.cpp reports no uncertainty.
        assert_eq!(s.kld().1, 0.0);
        let (p, unc) = s.same_top();
        assert_eq!(p, 0.75);
        assert!((unc - (0.75f64 * 0.25 / 3.0).sqrt()).abs() < 1e-12);
        // The run finds the targets e^-1 likely, the base e^-2.
        let dp = (-1f64).exp() - (-2f64).exp();
        assert!((s.p_diff().0 - dp).abs() < 1e-12);
        assert!((s.p_diff_rms().0 - dp).abs() < 1e-12);
        assert!((s.max_abs_p_diff() - dp).abs() < 1e-12);
        assert!((s.ppl().0 - 1f64.exp()).abs() < 1e-12);
        assert!((s.ppl_base().0 - 2f64.exp()).abs() < 1e-12);
        assert!((s.log_ppl_ratio().0 + 1.0).abs() < 1e-12);
        assert!((s.ppl_ratio().0 - (-1f64).exp()).abs() < 1e-12);
        assert!((s.ppl_difference().0 - (1f64.exp() - 2f64.exp())).abs() < 1e-12);
    }
}
