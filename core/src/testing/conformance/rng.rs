//! Random test data of the kinds that break kernels: blocks of zeros, huge and tiny values,
//! outliers, rows of very different scales.

use std::vec::Vec;

use crate::sample::Xoshiro256;

/// A seeded generator of test data (the same seed gives the same data on every ISA).
pub struct Rng(Xoshiro256);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(Xoshiro256::seed_from_u64(seed))
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        self.0.next_f64() as f32 * 2.0 - 1.0
    }

    /// `n` values of [`Rng::unit`].
    pub fn units(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }

    /// `n` activations in blocks of 32 of a random kind: ordinary, all zero, sparse,
    /// large (up to 1e5), tiny (down to 1e-30), or with one outlier.
    pub fn activations(&mut self, n: usize) -> Vec<f32> {
        let mut x = Vec::with_capacity(n);
        while x.len() < n {
            let kind = self.below(6);
            for i in 0..32.min(n - x.len()) {
                let v = self.unit();
                x.push(match kind {
                    0 => v,
                    1 => 0.0,
                    2 if self.below(4) == 0 => v * 3.0,
                    2 => 0.0,
                    3 => v * 1e5,
                    4 => v * 1e-30,
                    _ if i == 7 => v * 1e3,
                    _ => v,
                });
            }
        }
        x
    }

    /// `rows * cols` weights: rows of random scale (zero included), some with outliers.
    pub fn weights(&mut self, rows: usize, cols: usize) -> Vec<f32> {
        let mut w = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let scale = [1.0, 0.01, 30.0, 0.0][self.below(4) as usize];
            for _ in 0..cols {
                let outlier = if self.below(50) == 0 { 8.0 } else { 1.0 };
                w.push(self.unit() * scale * outlier);
            }
        }
        w
    }
}
