//! Seeded random weights for the full-size architecture, where its real weights cannot be had:
//! parameter counts, naming and shape checks, memory-budget runs and benchmarks. Every name and
//! shape the builder asks for is recorded, so a test can compare them with diffusers' list.

use burn::tensor::{Device, Tensor, TensorData};

use super::{WeightError, WeightSource};
use crate::rng::NoiseGenerator;

/// Hands out N(0, σ²) tensors for whatever the model asks, with σ = 1/sqrt(fan_in) for weights
/// (so activations stay O(1) through deep stacks) and 1-centred values for norm scales.
pub struct RandomWeights {
    device: Device,
    rng: NoiseGenerator,
    /// Every (name, shape) handed out, in order.
    pub requested: Vec<(String, Vec<usize>)>,
}

impl RandomWeights {
    /// A source on `device` seeded with `seed`.
    pub fn new(device: &Device, seed: u64) -> Self {
        RandomWeights {
            device: device.clone(),
            rng: NoiseGenerator::new(seed),
            requested: Vec::new(),
        }
    }

    /// Seeded values for one request (recorded).
    fn values(&mut self, name: &str, shape: &[usize]) -> Vec<f32> {
        self.requested.push((name.to_string(), shape.to_vec()));
        let count: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let is_norm_scale = shape.len() == 1 && name.ends_with(".weight");
        let (centre, sigma) = match (shape.len(), is_norm_scale) {
            (1, true) => (1.0, 0.1),
            (1, false) => (0.0, 0.1),
            _ => (0.0, 1.0 / (fan_in as f32).sqrt()),
        };
        (0..count)
            .map(|_| centre + sigma * self.rng.normal())
            .collect()
    }

    /// Total number of values handed out.
    pub fn parameter_count(&self) -> usize {
        self.requested
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }
}

impl WeightSource for RandomWeights {
    fn device(&self) -> &Device {
        &self.device
    }

    fn contains(&self, _name: &str) -> bool {
        // Random weights take today's names, never an old release's aliases.
        false
    }

    fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Tensor<D>, WeightError> {
        let values = self.values(name, &shape);
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    fn finish(&mut self, _ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        Ok(())
    }
}
