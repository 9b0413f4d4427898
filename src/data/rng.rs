//! A small deterministic random number generator (SplitMix64): the same seed gives the same
//! stream on every platform and release, which synthetic datasets, samplers and augmentations
//! rely on for reproducible runs. Not for cryptography.

/// SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one item of a larger job, independent of the order items are made in:
    /// seeded from `seed` and the item's `keys`.
    pub fn derive(seed: u64, keys: &[u64]) -> Self {
        let mut rng = Self::new(seed);
        for &k in keys {
            rng.state ^= k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rng.next_u64();
        }
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [0, n) (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        // Multiply-shift: unbiased enough for n far below 2^64.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(1e-7);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }

    /// Uniform in (0, 1), 53 bits.
    fn open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal sample in double precision (Box–Muller).
    fn normal_f64(&mut self) -> f64 {
        let (u1, u2) = (self.open_unit(), self.open_unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A Gamma(`shape`, 1) sample (Marsaglia and Tsang's method; `shape` > 0).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            // Gamma(a) = Gamma(a + 1) · U^(1/a).
            return self.gamma(shape + 1.0) * self.open_unit().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal_f64();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open_unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A Beta(`a`, `b`) sample (`a`, `b` > 0), as the ratio of two Gamma samples.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beta(a, b) samples against the distribution's own moments (mean a/(a+b), variance
    /// ab/((a+b)²(a+b+1))) and, for Beta(1, 1), the uniform CDF (Kolmogorov–Smirnov).
    #[test]
    fn beta_samples_follow_the_distribution() {
        let n = 40_000;
        for (a, b) in [(0.2, 0.2), (0.4, 0.4), (1.0, 1.0), (2.0, 5.0), (8.0, 8.0)] {
            let mut r = Rng::new(11);
            let x: Vec<f64> = (0..n).map(|_| r.beta(a, b)).collect();
            assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
            let mean = x.iter().sum::<f64>() / n as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let want_mean = a / (a + b);
            let want_var = a * b / ((a + b).powi(2) * (a + b + 1.0));
            // Four standard errors of the mean; the variance within 5 %.
            assert!(
                (mean - want_mean).abs() < 4.0 * (want_var / n as f64).sqrt(),
                "Beta({a}, {b}) mean {mean} vs {want_mean}"
            );
            assert!(
                (var / want_var - 1.0).abs() < 0.05,
                "Beta({a}, {b}) variance {var} vs {want_var}"
            );
        }
        let mut r = Rng::new(3);
        let mut x: Vec<f64> = (0..n).map(|_| r.beta(1.0, 1.0)).collect();
        x.sort_by(f64::total_cmp);
        let ks = x
            .iter()
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64 / n as f64 - v).abs())
            .fold(0.0, f64::max);
        // The 1 % critical value of the one-sample KS statistic.
        assert!(ks < 1.63 / (n as f64).sqrt(), "KS {ks}");
    }

    #[test]
    fn streams_are_reproducible_and_uniform() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert!(a.iter().all(|&x| x == r.next_u64()));
        let mut r = Rng::new(1);
        let n = 100_000;
        let mean = (0..n).map(|_| r.unit() as f64).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[r.below(7)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        let normal: Vec<f32> = (0..n).map(|_| r.normal()).collect();
        let var = normal.iter().map(|x| (x * x) as f64).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.03, "{var}");
        assert_ne!(
            Rng::derive(3, &[1, 2]).next_u64(),
            Rng::derive(3, &[2, 1]).next_u64()
        );
    }
}
