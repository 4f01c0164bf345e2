//! DDIM: the noise schedule, the timestep grid, the sampling step with η, the inversion step in
//! three diffusers conventions, forward noising and the jump between levels (docs/method.md §1).
//!
//! Scalars (ᾱ and the step coefficients) are computed on the host; only the latents are tensors.

use burn::tensor::Tensor;

use crate::model::config::SchedulerConfig;

/// A number of inference steps the schedule cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{steps} inference steps is outside 1..={train} (the training timesteps)")]
pub struct StepCountError {
    /// Steps asked for.
    pub steps: usize,
    /// Training timesteps.
    pub train: usize,
}

/// A stochastic step (η > 0) was asked for without its noise ξ.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the DDIM step from t = {t} has eta = {eta} > 0 and needs its noise, but none was given")]
pub struct MissingNoise {
    /// The step's timestep.
    pub t: usize,
    /// The η asked for.
    pub eta: f64,
}

/// Which diffusers release's DDIM inversion to reproduce (docs/method.md §1.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InversionConvention {
    /// diffusers ≥ 0.22 (0.27.1, the COW README's recommendation): the UNet sees the target
    /// timestep τ_i, the latent moves from the level below it to ᾱ_{τ_i}. The default.
    #[default]
    Diffusers022Plus,
    /// diffusers 0.19–0.21: the same levels, but the UNet sees the source timestep
    /// (τ_i − r, so −99 on the first step).
    Diffusers019,
    /// diffusers ≤ 0.18 (0.17.1, pinned by COW's deleted requirements): the UNet sees τ_i and the
    /// latent moves from ᾱ_{τ_i} to ᾱ_{τ_i + r}, one grid step noisier than the sampler's label
    /// (and to ᾱ = 0 on the last step, as 0.17's `set_alpha_to_zero` default did).
    Diffusers017,
}

/// One inversion transition: what the UNet is evaluated at, and the two noise levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InversionStep {
    /// The timestep passed to the UNet (can be negative under the 0.19 convention).
    pub unet_timestep: i64,
    /// ᾱ of the level the latent is at.
    pub alpha_source: f32,
    /// ᾱ of the level the latent moves to.
    pub alpha_target: f32,
}

/// The DDIM scheduler for one schedule and one number of inference steps.
#[derive(Clone, Debug)]
pub struct Ddim {
    config: SchedulerConfig,
    alphas_cumprod: Vec<f32>,
    /// ᾱ after the last sampling step (and before the first inversion step): ᾱ_0 for SD,
    /// whose config has `set_alpha_to_one = false`.
    final_alpha_cumprod: f32,
    steps: usize,
    /// The grid τ, descending (the order the sampler visits it).
    timesteps: Vec<usize>,
}

impl Ddim {
    /// A scheduler with `steps` inference steps.
    pub fn new(config: &SchedulerConfig, steps: usize) -> Result<Self, StepCountError> {
        let train = config.num_train_timesteps;
        if steps == 0 || steps > train {
            return Err(StepCountError { steps, train });
        }
        let alphas_cumprod = alphas_cumprod(config);
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        Ok(Ddim {
            timesteps: timestep_grid(config, steps),
            config: config.clone(),
            alphas_cumprod,
            final_alpha_cumprod,
            steps,
        })
    }

    /// The inference timesteps, descending: {901, 801, …, 1} for SD-2.1 and 10 steps.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// Number of inference steps.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The distance r between grid points (`num_train_timesteps div steps`).
    pub fn stride(&self) -> usize {
        self.config.num_train_timesteps / self.steps
    }

    /// ᾱ_t for every training timestep t.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// ᾱ after the last sampling step.
    pub fn final_alpha_cumprod(&self) -> f32 {
        self.final_alpha_cumprod
    }

    /// ᾱ_t, with a timestep below 0 meaning the final level (as diffusers' `prev_timestep < 0`).
    pub fn alpha_at(&self, t: i64) -> f32 {
        if t < 0 {
            self.final_alpha_cumprod
        } else {
            self.alphas_cumprod[t as usize]
        }
    }

    /// ā(k), the noise level of state k (docs/method.md §1.2): ᾱ_0 for k = 0 (the clean side,
    /// `final_alpha_cumprod`), ᾱ_{τ_{k−1}} for k ≥ 1 with τ ascending.
    pub fn state_alpha(&self, k: usize) -> f32 {
        if k == 0 {
            self.final_alpha_cumprod
        } else {
            self.alphas_cumprod[self.timesteps[self.steps - k]]
        }
    }

    /// The predicted clean sample x̂₀ = (z − sqrt(1−a)·ε)/sqrt(a), clipped where the config
    /// says so (never for SD).
    fn predict_x0<const D: usize>(&self, sample: Tensor<D>, eps: Tensor<D>, a: f32) -> Tensor<D> {
        let a = a as f64;
        let x0 = (sample - eps.mul_scalar((1.0 - a).sqrt())).div_scalar(a.sqrt());
        if self.config.clip_sample {
            let r = self.config.clip_sample_range;
            x0.clamp(-r, r)
        } else {
            x0
        }
    }

    /// σ of the step from timestep t to the level below it, for this η (docs/method.md §1.4):
    /// σ = η·sqrt((1−a')/(1−a)·(1 − a/a')).
    pub fn sigma(&self, t: usize, eta: f64) -> f64 {
        let (a, a_prev) = self.step_alphas(t);
        let (a, a_prev) = (a as f64, a_prev as f64);
        eta * ((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev)).sqrt()
    }

    /// (ᾱ_t, ᾱ_{t−r}) with the final level below 0.
    fn step_alphas(&self, t: usize) -> (f32, f32) {
        (
            self.alphas_cumprod[t],
            self.alpha_at(t as i64 - self.stride() as i64),
        )
    }

    /// One DDIM sampling step from timestep `t` to the grid point below it (docs/method.md §1.4):
    ///
    /// x̂₀ = (z − sqrt(1−a)·ε)/sqrt(a); z' = sqrt(a')·x̂₀ + sqrt(1 − a' − σ²)·ε + σ·ξ.
    ///
    /// `noise` is ξ: required when η > 0 (a step without it would silently be deterministic),
    /// ignored at η = 0, where diffusers draws none.
    pub fn step<const D: usize>(
        &self,
        eps: Tensor<D>,
        t: usize,
        sample: Tensor<D>,
        eta: f64,
        noise: Option<Tensor<D>>,
    ) -> Result<Tensor<D>, MissingNoise> {
        if eta > 0.0 && noise.is_none() {
            return Err(MissingNoise { t, eta });
        }
        let (a, a_prev) = self.step_alphas(t);
        let sigma = self.sigma(t, eta);
        let x0 = self.predict_x0(sample, eps.clone(), a);
        let a_prev = a_prev as f64;
        let direction = eps.mul_scalar((1.0 - a_prev - sigma * sigma).max(0.0).sqrt());
        let prev = x0.mul_scalar(a_prev.sqrt()) + direction;
        Ok(match noise {
            Some(xi) if eta > 0.0 => prev + xi.mul_scalar(sigma),
            _ => prev,
        })
    }

    /// The inversion transitions 0→1, 1→2, …, in order, for a convention (docs/method.md §1.5).
    pub fn inversion_steps(&self, convention: InversionConvention) -> Vec<InversionStep> {
        let r = self.stride() as i64;
        let train = self.config.num_train_timesteps as i64;
        let ascending = self.timesteps.iter().rev().map(|&t| t as i64);
        ascending
            .map(|tau| match convention {
                InversionConvention::Diffusers022Plus => InversionStep {
                    unet_timestep: tau,
                    alpha_source: self.alpha_at(tau - r),
                    alpha_target: self.alpha_at(tau),
                },
                InversionConvention::Diffusers019 => InversionStep {
                    unet_timestep: tau - r,
                    alpha_source: self.alpha_at(tau - r),
                    alpha_target: self.alpha_at(tau),
                },
                InversionConvention::Diffusers017 => InversionStep {
                    unet_timestep: tau,
                    alpha_source: self.alpha_at(tau),
                    // 0.17's inverse scheduler has `set_alpha_to_zero` (default true) instead of
                    // `set_alpha_to_one`, so past the last timestep the target level is ᾱ = 0:
                    // the last step returns the model output itself.
                    alpha_target: if tau + r < train {
                        self.alpha_at(tau + r)
                    } else {
                        0.0
                    },
                },
            })
            .collect()
    }

    /// One deterministic inversion step (the DDIM ODE run forwards in time):
    /// x̂₀ = (z − sqrt(1−a_s)·ε)/sqrt(a_s); z' = sqrt(a_t)·x̂₀ + sqrt(1−a_t)·ε.
    pub fn invert_step<const D: usize>(
        &self,
        eps: Tensor<D>,
        step: &InversionStep,
        sample: Tensor<D>,
    ) -> Tensor<D> {
        let x0 = self.predict_x0(sample, eps.clone(), step.alpha_source);
        let a_t = step.alpha_target as f64;
        x0.mul_scalar(a_t.sqrt()) + eps.mul_scalar((1.0 - a_t).sqrt())
    }

    /// Forward noising q(x_t | x_0): sqrt(ᾱ_t)·x₀ + sqrt(1−ᾱ_t)·ξ (docs/method.md §1.6).
    pub fn add_noise<const D: usize>(
        &self,
        x0: Tensor<D>,
        noise: Tensor<D>,
        t: usize,
    ) -> Tensor<D> {
        let a = self.alphas_cumprod[t] as f64;
        x0.mul_scalar(a.sqrt()) + noise.mul_scalar((1.0 - a).sqrt())
    }

    /// The jump from level s to a noisier level t in one draw (docs/method.md §1.6):
    /// x_t = sqrt(ᾱ_t/ᾱ_s)·x_s + sqrt(1 − ᾱ_t/ᾱ_s)·ξ.
    pub fn jump<const D: usize>(
        &self,
        sample: Tensor<D>,
        noise: Tensor<D>,
        s: usize,
        t: usize,
    ) -> Tensor<D> {
        let rho = self.alphas_cumprod[t] as f64 / self.alphas_cumprod[s] as f64;
        jump_by_ratio(sample, noise, rho)
    }
}

/// x ← sqrt(ρ)·x + sqrt(1−ρ)·ξ for a level ratio ρ = ᾱ_t/ᾱ_s ≤ 1.
pub fn jump_by_ratio<const D: usize>(sample: Tensor<D>, noise: Tensor<D>, rho: f64) -> Tensor<D> {
    sample.mul_scalar(rho.sqrt()) + noise.mul_scalar((1.0 - rho).max(0.0).sqrt())
}

/// ᾱ_t = Π_{i≤t}(1 − β_i) as diffusers computes it (docs/method.md §1.1), to the bit:
/// β comes from `torch.linspace(sqrt(β_start), sqrt(β_end), T, dtype=float32) ** 2` for
/// "scaled_linear" (or the plain f32 linspace), α = 1 − β in f32, and `torch.cumprod` on the CPU
/// accumulates the running product in f64, rounding each output to f32.
fn alphas_cumprod(config: &SchedulerConfig) -> Vec<f32> {
    let n = config.num_train_timesteps;
    let (start, end) = (config.beta_start, config.beta_end);
    let betas: Vec<f32> = if config.beta_schedule == "scaled_linear" {
        linspace_f32(start.sqrt() as f32, end.sqrt() as f32, n)
            .into_iter()
            .map(|root| root * root)
            .collect()
    } else {
        linspace_f32(start as f32, end as f32, n)
    };
    let mut product = 1.0f64;
    betas
        .into_iter()
        .map(|beta| {
            product *= (1.0 - beta) as f64;
            product as f32
        })
        .collect()
}

/// `torch.linspace` in f32: step = (end − start)/(n − 1); the first half counts up from `start`,
/// the second half down from `end` (so both ends are exact), each value one fused multiply-add
/// (PyTorch's vectorized kernel rounds once; `libm::fmaf` does the same on every target).
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let halfway = n / 2;
    (0..n)
        .map(|i| {
            if i < halfway {
                libm::fmaf(step, i as f32, start)
            } else {
                libm::fmaf(-step, (n - 1 - i) as f32, end)
            }
        })
        .collect()
}

/// The descending timestep grid for `steps` steps, by the config's spacing (diffusers'
/// `DDIMScheduler.set_timesteps`). "leading" with offset 1 gives τ_j = r·j + 1 (§1.2).
fn timestep_grid(config: &SchedulerConfig, steps: usize) -> Vec<usize> {
    let train = config.num_train_timesteps;
    let mut grid: Vec<usize> = match config.timestep_spacing.as_str() {
        "linspace" => (0..steps)
            .map(|j| {
                let x = if steps > 1 {
                    j as f64 * (train - 1) as f64 / (steps - 1) as f64
                } else {
                    0.0
                };
                round_half_even(x) as usize
            })
            .collect(),
        "trailing" => {
            let ratio = train as f64 / steps as f64;
            (0..steps)
                .map(|j| round_half_even(train as f64 - j as f64 * ratio) as usize - 1)
                .rev()
                .collect()
        }
        _ => {
            let ratio = train / steps;
            (0..steps)
                .map(|j| (j * ratio + config.steps_offset).min(train - 1))
                .collect()
        }
    };
    grid.reverse();
    grid
}

/// numpy's `round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd21_grid_and_levels_match_the_spec_table() {
        let ddim = Ddim::new(&SchedulerConfig::sd21(), 10).unwrap();
        assert_eq!(
            ddim.timesteps(),
            &[901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
        );
        // docs/method.md §1.1's reference values.
        for (t, expected) in [(0, 0.999150), (501, 0.274999), (999, 0.004660)] {
            let got = ddim.alphas_cumprod()[t];
            assert!(
                (got - expected).abs() < 2e-6,
                "ᾱ_{t} = {got}, spec {expected}"
            );
        }
        assert_eq!(ddim.state_alpha(0), ddim.alphas_cumprod()[0]);
        assert_eq!(ddim.state_alpha(7), ddim.alphas_cumprod()[601]);
        // σ at η = 1 for 601 → 501 (docs/method.md §1.4 gives 0.6012).
        assert!((ddim.sigma(601, 1.0) - 0.6012).abs() < 1e-4);
    }

    #[test]
    fn a_stochastic_step_without_noise_is_an_error() {
        use burn::tensor::{Device, Tensor};
        let ddim = Ddim::new(&SchedulerConfig::sd21(), 10).unwrap();
        let device = Device::flex();
        let z = Tensor::<1>::ones([4], &device);
        let err = ddim.step(z.clone(), 501, z.clone(), 0.5, None).unwrap_err();
        assert_eq!(err, MissingNoise { t: 501, eta: 0.5 });
        assert!(ddim.step(z.clone(), 501, z, 0.0, None).is_ok());
    }

    #[test]
    fn zero_steps_is_an_error() {
        assert!(Ddim::new(&SchedulerConfig::sd21(), 0).is_err());
        assert!(Ddim::new(&SchedulerConfig::sd21(), 1001).is_err());
    }
}
