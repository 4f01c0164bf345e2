//! The one seeded generator every random draw of a run comes from (docs/method.md §2.10a, §6).
//!
//! Draws are made on the host and uploaded, so a seed gives the same numbers on every backend.
//! The generator is ChaCha8 (rand_chacha) seeded with `seed_from_u64`; normal samples come
//! from the Box–Muller transform on pairs of uniforms, both outputs of a pair used in order
//! (docs/method.md §6). The transform uses `libm`'s `log`, `sin` and `cos`, not the platform's:
//! those may differ in the last bit between targets (and between releases of a C library),
//! while libm is the same Rust code everywhere, so a seed means the same numbers on every
//! platform and every future build. `tests/fixtures/goldens/rng.json` pins the first draws of a
//! seed as bit patterns.

use burn::tensor::{Device, Tensor, TensorData};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A seeded source of standard-normal noise.
pub struct NoiseGenerator {
    rng: ChaCha8Rng,
    /// The second value of the last Box–Muller pair, not yet handed out.
    spare: Option<f32>,
}

impl NoiseGenerator {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Self {
        NoiseGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    /// A uniform sample in (0, 1]: 53 random bits, shifted away from 0 so the log is finite.
    fn uniform_open0(&mut self) -> f64 {
        let bits = self.rng.next_u64() >> 11;
        (bits as f64 + 1.0) * (1.0 / (1u64 << 53) as f64)
    }

    /// One standard-normal sample.
    pub fn normal(&mut self) -> f32 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        // Box–Muller: r = sqrt(-2 ln u1), θ = 2π u2; (r cos θ, r sin θ) are independent N(0,1).
        let r = libm::sqrt(-2.0 * libm::log(self.uniform_open0()));
        let theta = 2.0 * std::f64::consts::PI * self.uniform_open0();
        self.spare = Some((r * libm::sin(theta)) as f32);
        (r * libm::cos(theta)) as f32
    }

    /// `count` standard-normal samples, in order.
    pub fn normals(&mut self, count: usize) -> Vec<f32> {
        (0..count).map(|_| self.normal()).collect()
    }

    /// A standard-normal tensor of this shape on `device`, filled in row-major order.
    pub fn tensor<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let values = self.normals(shape.iter().product());
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_plausible_moments() {
        let a = NoiseGenerator::new(42).normals(20_000);
        let b = NoiseGenerator::new(42).normals(20_000);
        assert_eq!(a, b);
        let c = NoiseGenerator::new(43).normals(20_000);
        assert_ne!(a, c);
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64;
        // Standard errors are 0.007 for the mean and 0.01 for the variance at n = 20000.
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
