//! The full-size checks and benchmarks of the engine, on the real SD-2.1-base architecture with
//! seeded random weights: `sow check-limits` and `sow bench-unet`.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use sow_studio::device::{self, GpuLimits};
use sow_studio::model::config::UNetConfig;
use sow_studio::model::limits;
use sow_studio::model::unet::UNet;
use sow_studio::weights::{Component, Policy, RandomWeights, Scheme};

/// `sow check-limits`: proves that full-size evaluations fit WebGPU's default limits.
#[derive(clap::Args, Debug)]
pub struct CheckLimitsArgs {
    /// UNet batch size, and the number of prompts for the text encoder (4 is a SOW cycle's
    /// batch).
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// How the UNet's weights are kept on the device: f32, q8 (8-bit blocks) or q4.
    #[arg(long, default_value = "q8")]
    scheme: Scheme,
    /// How the text encoder's weights are kept on the device: f32 or q8.
    #[arg(long, default_value = "f32")]
    text_scheme: Scheme,
    /// Skip the UNet evaluation.
    #[arg(long)]
    skip_unet: bool,
    /// Skip the full text encoder.
    #[arg(long)]
    skip_text: bool,
    /// Skip the 512 px VAE encode and decode.
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
    /// How the UNet's weights are kept on the device: f32, q8 (8-bit blocks) or q4.
    #[arg(long, default_value = "f32")]
    scheme: Scheme,
}

fn random_unet(device: &Device, scheme: Scheme) -> Result<UNet, String> {
    let started = Instant::now();
    let mut weights =
        RandomWeights::new(device, 7).with_policy(Policy::new(Component::Unet, scheme));
    let unet = UNet::load(&UNetConfig::sd21(), &mut weights).map_err(|e| e.to_string())?;
    eprintln!(
        "built the full-size UNet (random weights, {scheme}) in {:.1} s",
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

/// Runs each check in turn (the library's `model::limits`), printing its report.
pub fn check_limits(args: &CheckLimitsArgs) -> Result<(), String> {
    let batch = args.batch;
    let device = device::vulkan(GpuLimits::WebGpuDefaults)?;
    if !args.skip_unet {
        println!("{}", limits::unet(&device, batch, args.scheme)?);
    }
    if !args.skip_text {
        println!(
            "{}",
            limits::text_encoder(&device, batch, args.text_scheme)?
        );
    }
    if !args.skip_vae {
        println!("{}", limits::vae_encode(&device, 512)?);
        println!("{}", limits::vae_decode(&device)?);
    }
    Ok(())
}

pub fn bench_unet(args: &BenchUnetArgs) -> Result<(), String> {
    let (batch, runs) = (args.batch, args.runs);
    let device = match args.device.as_str() {
        "cpu" => device::cpu(),
        "vulkan" => device::vulkan(GpuLimits::Adapter)?,
        other => return Err(format!("unknown device {other:?}")),
    };
    let unet = random_unet(&device, args.scheme)?;
    let warmup = unet_step(&unet, &device, batch)?;
    eprintln!("warm-up run: {warmup:.2} s");
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| unet_step(&unet, &device, batch))
        .collect::<Result<_, _>>()?;
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "burn UNet step (SD-2.1 full size, {}, 64x64, batch {batch}): median {:.3} s over {} runs",
        args.scheme,
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
