//! Full-size runs that prove the networks fit WebGPU's default limits (`sow check-limits`):
//! the real SD-2.1-base architecture with seeded random weights, on whatever device is given
//! (the CLI opens Vulkan with WebGPU's *default* limits, so any binding over 128 MiB fails).
//!
//! Each check reports its time, the largest intermediate buffer the networks recorded
//! ([`super::budget`]), the weights it keeps on the device (our byte count of the stored
//! tensors), burn's memory-pool statistics where the backend has them, and the process's peak
//! resident memory during the run (on lavapipe and the CPU backend the "GPU" is host memory,
//! so that peak is an honest upper bound of the device memory).

use std::fmt;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};

use super::budget;
use super::clip::ClipTextEncoder;
use super::config::{TextEncoderConfig, UNetConfig, VaeConfig};
use super::unet::UNet;
use super::vae::Vae;
use crate::weights::{resident_bytes, Component, Policy, RandomWeights, Resident, Scheme};

/// What one check measured.
#[derive(Clone, Debug)]
pub struct LimitReport {
    /// What ran.
    pub label: String,
    /// Seconds of the evaluation itself (loading excluded).
    pub seconds: f64,
    /// The largest intermediate buffer recorded, bytes.
    pub largest_intermediate: usize,
    /// What the weights keep on the device.
    pub weights: Resident,
    /// burn's pool statistics after the run: bytes in use (live tensors), and bytes reserved
    /// (pages the allocator holds, which it keeps after use: at least the run's peak of live
    /// buffers, as far as the pools are concerned). None where the backend has no pools.
    pub pool: Option<(u64, u64)>,
    /// The process's peak resident memory during the evaluation (weights included), bytes.
    pub peak_rss: Option<u64>,
}

impl fmt::Display for LimitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = |b: f64| b / (1 << 20) as f64;
        write!(
            f,
            "{}: passed in {:.1} s; largest intermediate {:.1} MiB; weights on the device \
             {:.3} GB ({:.3} GB quantized)",
            self.label,
            self.seconds,
            mib(self.largest_intermediate as f64),
            self.weights.bytes() as f64 / 1e9,
            self.weights.quantized_bytes as f64 / 1e9,
        )?;
        if let Some((in_use, reserved)) = self.pool {
            write!(
                f,
                "; burn's pools after the run: {:.3} GB in use, {:.3} GB reserved",
                in_use as f64 / 1e9,
                reserved as f64 / 1e9
            )?;
        }
        if let Some(peak) = self.peak_rss {
            write!(f, "; peak RSS during the run {:.3} GB", peak as f64 / 1e9)?;
        }
        Ok(())
    }
}

/// The process's peak resident memory since the last [`reset_peak_rss`], bytes (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Restarts the peak-RSS count from the current resident size (Linux: `clear_refs` 5), so
/// that a run's peak excludes what loading needed. Does nothing where that is unavailable.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn pool(device: &Device) -> Option<(u64, u64)> {
    device
        .memory_pool_usage()
        .map(|u| (u.bytes_in_use, u.bytes_reserved))
}

/// Times `run` (which reads its result back) and collects the report.
fn measure(
    device: &Device,
    label: String,
    weights: Resident,
    run: impl FnOnce() -> Result<(), String>,
) -> Result<LimitReport, String> {
    device.sync().map_err(|e| format!("{e:?}"))?;
    budget::reset();
    reset_peak_rss();
    let started = Instant::now();
    run()?;
    Ok(LimitReport {
        label,
        seconds: started.elapsed().as_secs_f64(),
        largest_intermediate: budget::peak_bytes(),
        weights,
        pool: pool(device),
        peak_rss: peak_rss(),
    })
}

fn finite(label: &str, values: Vec<f32>, expected_len: usize) -> Result<(), String> {
    if values.len() != expected_len {
        return Err(format!(
            "{label}: {} values, expected {expected_len}",
            values.len()
        ));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("{label}: non-finite values"));
    }
    Ok(())
}

fn read<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// One full-size UNet evaluation at 64×64 latents, `batch` images, weights as `scheme` says.
pub fn unet(device: &Device, batch: usize, scheme: Scheme) -> Result<LimitReport, String> {
    let policy = Policy::new(Component::Unet, scheme);
    let mut source = RandomWeights::new(device, 7).with_policy(policy);
    let unet = UNet::load(&UNetConfig::sd21(), &mut source).map_err(|e| e.to_string())?;
    let weights = resident_bytes(&unet);
    let sample = Tensor::<4>::random([batch, 4, 64, 64], Distribution::Normal(0.0, 1.0), device);
    let context = Tensor::<3>::random([batch, 77, 1024], Distribution::Normal(0.0, 1.0), device);
    let label = format!("UNet ({scheme}) 64x64 batch {batch}");
    measure(device, label.clone(), weights, || {
        let out = unet.forward(sample, 501.0, context);
        finite(&label, read(out)?, batch * 4 * 64 * 64)
    })
}

/// The full text encoder (23 layers, its 193 MiB token table in row blocks) on `batch`
/// prompts of 77 tokens, weights as `scheme` says.
pub fn text_encoder(device: &Device, batch: usize, scheme: Scheme) -> Result<LimitReport, String> {
    let config = TextEncoderConfig::sd21();
    let policy = Policy::new(Component::TextEncoder, scheme);
    let mut source = RandomWeights::new(device, 9).with_policy(policy);
    let encoder = ClipTextEncoder::load(&config, &mut source).map_err(|e| e.to_string())?;
    let weights = resident_bytes(&encoder);
    // Token ids spread over the whole vocabulary, so every row block is read.
    let rows: Vec<Vec<u32>> = (0..batch)
        .map(|b| {
            (0..77)
                .map(|i| ((i * 641 + b * 97) % config.vocab_size) as u32)
                .collect()
        })
        .collect();
    let label = format!("text encoder ({scheme}) batch {batch}");
    measure(device, label.clone(), weights, || {
        let hidden = encoder.encode(&rows, device).map_err(|e| e.to_string())?;
        finite(&label, read(hidden)?, batch * 77 * config.hidden_size)
    })
}

/// One VAE encode of a `side`×`side` image (512 for SD-2.1).
pub fn vae_encode(device: &Device, side: usize) -> Result<LimitReport, String> {
    let vae = Vae::load(&VaeConfig::sd21(), &mut RandomWeights::new(device, 8))
        .map_err(|e| e.to_string())?;
    let weights = resident_bytes(&vae);
    let image = Tensor::<4>::random([1, 3, side, side], Distribution::Uniform(-1.0, 1.0), device);
    let label = format!("VAE encode {side}x{side}");
    measure(device, label.clone(), weights, || {
        let posterior = vae.encode(image);
        let latent = (side / 8) * (side / 8) * 4;
        finite(&label, read(posterior.mean)?, latent)?;
        finite(&label, read(posterior.logvar)?, latent)
    })
}

/// One VAE decode of 64×64 latents (a 512×512 image).
pub fn vae_decode(device: &Device) -> Result<LimitReport, String> {
    let vae = Vae::load(&VaeConfig::sd21(), &mut RandomWeights::new(device, 8))
        .map_err(|e| e.to_string())?;
    let weights = resident_bytes(&vae);
    let latents = Tensor::<4>::random([1, 4, 64, 64], Distribution::Normal(0.0, 1.0), device);
    let label = "VAE decode 512x512".to_string();
    measure(device, label.clone(), weights, || {
        finite(&label, read(vae.decode(latents))?, 3 * 512 * 512)
    })
}
