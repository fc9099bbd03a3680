//! A small portable random generator: xoshiro256** seeded through splitmix64.
//!
//! Both are the reference algorithms of Blackman and Vigna (<https://prng.di.unimi.it/>).
//! They use only integer arithmetic, so one seed gives the same stream on every platform,
//! which is what makes sampled text reproducible.

/// xoshiro256**: 256 bits of state, period 2^256 - 1, fast and statistically strong enough
/// for drawing tokens (not for cryptography).
#[derive(Clone, Debug)]
pub struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    /// Expands `seed` into a full state with splitmix64, as the authors recommend.
    ///
    /// splitmix64 is a bijection of its counter, so at most one of the four words can be
    /// zero and the forbidden all-zero state never occurs.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut counter = seed;
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut counter);
        }
        Self { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform number in `[0, 1)` with 53 random bits (every value exactly representable).
    pub fn next_f64(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_u64() >> 11) as f64 * SCALE
    }
}

/// One step of splitmix64; advances `counter` and returns a well-mixed word.
fn splitmix64(counter: &mut u64) -> u64 {
    *counter = counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *counter;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference() {
        // First outputs of the reference splitmix64.c for seed 0.
        let mut counter = 0;
        assert_eq!(splitmix64(&mut counter), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut counter), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn xoshiro256_matches_reference() {
        // Reference xoshiro256starstar.c with state {1, 2, 3, 4}.
        let mut rng = Xoshiro256 { s: [1, 2, 3, 4] };
        let got = [
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
            rng.next_u64(),
        ];
        assert_eq!(got, [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]);
    }

    #[test]
    fn f64_is_in_unit_interval() {
        let mut rng = Xoshiro256::seed_from_u64(7);
        for _ in 0..10_000 {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
