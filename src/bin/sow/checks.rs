//! The full-size checks and benchmarks of the engine, on the real SD-2.1-base architecture with
//! seeded random weights: `sow check-limits` and `sow bench-unet`.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use sow_studio::device::{self, GpuLimits};
use sow_studio::model::budget;
use sow_studio::model::config::{UNetConfig, VaeConfig};
use sow_studio::model::unet::UNet;
use sow_studio::model::vae::Vae;
use sow_studio::weights::RandomWeights;

/// `sow check-limits`: proves that full-size evaluations fit WebGPU's default limits.
#[derive(clap::Args, Debug)]
pub struct CheckLimitsArgs {
    /// UNet batch size (4 is a SOW cycle's batch).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Skip the UNet evaluation.
    #[arg(long)]
    skip_unet: bool,
    /// Skip the 512 px VAE decode.
    #[arg(long)]
    skip_vae: bool,
}

/// `sow bench-unet`: times full-size UNet evaluations.
#[derive(clap::Args, Debug)]
pub struct BenchUnetArgs {
    /// Where to run: the CPU backend or wgpu on Vulkan.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "vulkan"])]
    device: String,
    /// Batch size.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Timed runs after one warm-up; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// Peak resident memory of this process (VmHWM), in MiB: on lavapipe and the CPU backend
/// the "GPU" memory is host memory, so this is the whole footprint.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn random_unet(device: &Device) -> Result<UNet, String> {
    let started = Instant::now();
    let unet = UNet::load(&UNetConfig::sd21(), &mut RandomWeights::new(device, 7))
        .map_err(|e| e.to_string())?;
    eprintln!(
        "built the full-size UNet (random weights) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(unet)
}

/// One UNet evaluation; returns seconds.
fn unet_step(unet: &UNet, device: &Device, batch: usize) -> Result<f64, String> {
    let sample = Tensor::<4>::random([batch, 4, 64, 64], Distribution::Normal(0.0, 1.0), device);
    let context = Tensor::<3>::random([batch, 77, 1024], Distribution::Normal(0.0, 1.0), device);
    device.sync().map_err(|e| format!("{e:?}"))?;
    let started = Instant::now();
    let out = unet.forward(sample, 501.0, context);
    let values = out
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if values.iter().any(|v| !v.is_finite()) {
        return Err("the UNet output has non-finite values".to_string());
    }
    Ok(seconds)
}

pub fn check_limits(args: &CheckLimitsArgs) -> Result<(), String> {
    let batch = args.batch;
    let device = device::vulkan(GpuLimits::WebGpuDefaults)?;
    if !args.skip_unet {
        let unet = random_unet(&device)?;
        budget::reset();
        let seconds = unet_step(&unet, &device, batch)?;
        println!(
            "UNet 64x64 batch {batch}: passed in {seconds:.1} s; largest intermediate {:.1} MiB; peak RSS {:.0} MiB",
            budget::peak_bytes() as f64 / (1 << 20) as f64,
            peak_rss_mib()
        );
    }
    if args.skip_vae {
        return Ok(());
    }
    let vae = Vae::load(&VaeConfig::sd21(), &mut RandomWeights::new(&device, 8))
        .map_err(|e| e.to_string())?;
    let latents = Tensor::<4>::random([1, 4, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    budget::reset();
    let started = Instant::now();
    let image = vae.decode(latents);
    let values = image
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    if values.len() != 3 * 512 * 512 || values.iter().any(|v| !v.is_finite()) {
        return Err("the VAE decode gave a wrong or non-finite image".to_string());
    }
    println!(
        "VAE decode 512x512: passed in {:.1} s; largest intermediate {:.1} MiB; peak RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        budget::peak_bytes() as f64 / (1 << 20) as f64,
        peak_rss_mib()
    );
    Ok(())
}

pub fn bench_unet(args: &BenchUnetArgs) -> Result<(), String> {
    let (batch, runs) = (args.batch, args.runs);
    let device = match args.device.as_str() {
        "cpu" => device::cpu(),
        "vulkan" => device::vulkan(GpuLimits::Adapter)?,
        other => return Err(format!("unknown device {other:?}")),
    };
    let unet = random_unet(&device)?;
    let warmup = unet_step(&unet, &device, batch)?;
    eprintln!("warm-up run: {warmup:.2} s");
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| unet_step(&unet, &device, batch))
        .collect::<Result<_, _>>()?;
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "burn UNet step (SD-2.1 full size, 64x64, batch {batch}): median {:.3} s over {} runs",
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
