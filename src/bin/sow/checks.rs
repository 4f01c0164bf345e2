//! The full-size checks and benchmarks of the engine, on the real SD-2.1-base architecture with
//! seeded random weights: `sow check-limits`, `sow bench-unet` and `sow bench-ops`.

use std::time::Instant;

use burn::module::Param;
use burn::tensor::module;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use sow_studio::device::{self, GpuLimits};
use sow_studio::diffusion::sow::dam::{Dam, DamCondition, DamOptions};
use sow_studio::imaging::{GridMask, PixelRect, SquareBox};
use sow_studio::model::attention::chunked_attention;
use sow_studio::model::budget;
use sow_studio::model::config::UNetConfig;
use sow_studio::model::hook::AttentionHook;
use sow_studio::model::layers::GroupNorm;
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
    /// Also time each evaluation with SOW's attention modulation (DAM, default options, one
    /// condition) and print the ratio; runs alternate so both see the same machine state.
    #[arg(long)]
    dam: bool,
}

/// `sow bench-ops`: times the UNet's kinds of work one at a time, at its largest level (64×64
/// latents, 320 channels, batch 2), to see which kernels a slow evaluation spends its time in.
#[derive(clap::Args, Debug)]
pub struct BenchOpsArgs {
    /// Where to run: the CPU backend or wgpu on Vulkan.
    #[arg(long, default_value = "vulkan", value_parser = ["cpu", "vulkan"])]
    device: String,
    /// Timed runs after one warm-up; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn open_device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(device::cpu()),
        "vulkan" => device::vulkan(GpuLimits::Adapter),
        other => Err(format!("unknown device {other:?}")),
    }
}

fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// The median seconds of `op` (after one warm-up), waiting for the device each time.
fn time_op<const D: usize>(
    device: &Device,
    runs: usize,
    op: impl Fn() -> Tensor<D>,
) -> Result<f64, String> {
    let sync = || device.sync().map_err(|e| format!("{e:?}"));
    drop(op());
    sync()?;
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        sync()?;
        let started = Instant::now();
        let out = op();
        sync()?;
        times.push(started.elapsed().as_secs_f64());
        drop(out);
    }
    Ok(median(times))
}

pub fn bench_ops(args: &BenchOpsArgs) -> Result<(), String> {
    let device = open_device(&args.device)?;
    let (batch, channels, side, heads) = (2, 320, 64, 5);
    let tokens = side * side;
    let report = |name: &str, seconds: f64, flops: f64| {
        println!(
            "{name}: {:.3} ms, {:.0} GFLOP/s",
            seconds * 1e3,
            flops / seconds / 1e9
        );
    };

    let x = normal([batch, channels, side, side], &device);
    let kernel = normal([channels, channels, 3, 3], &device);
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let conv = time_op(&device, args.runs, || {
        module::conv2d(x.clone(), kernel.clone(), None, options.clone())
    })?;
    let conv_flops = 2.0 * (batch * channels * channels * 9 * tokens) as f64;
    report("conv 3x3 320->320 on 2x64x64", conv, conv_flops);

    let rows = normal([batch * tokens, channels], &device);
    let weight = normal([channels, 4 * channels], &device);
    let linear = time_op(&device, args.runs, || rows.clone().matmul(weight.clone()))?;
    let linear_flops = 2.0 * (batch * tokens * channels * 4 * channels) as f64;
    report("matmul 8192x320 by 320x1280", linear, linear_flops);

    let width = channels / heads;
    let q = normal([batch, heads, tokens, width], &device);
    let k = normal([batch, heads, tokens, width], &device);
    let v = normal([batch, heads, tokens, width], &device);
    let scale = 1.0 / (width as f64).sqrt();
    let attention = time_op(&device, args.runs, || {
        chunked_attention(q.clone(), k.clone(), v.clone(), scale, 128 << 20)
    })?;
    let attention_flops = 4.0 * (batch * heads * tokens * tokens * width) as f64;
    report(
        "self-attention 4096 tokens, 5 heads of 64 (128 MiB chunks)",
        attention,
        attention_flops,
    );

    // The resnets' group norm (32 groups, ε = 1e-5), with unit scale and zero shift.
    let group_norm = GroupNorm {
        gamma: Param::from_tensor(Tensor::ones([channels], &device)),
        beta: Param::from_tensor(Tensor::zeros([channels], &device)),
        groups: 32,
        epsilon: 1e-5,
    };
    let norm = time_op(&device, args.runs, || group_norm.forward(x.clone()))?;
    let bytes = (batch * channels * tokens * 4) as f64;
    println!(
        "group norm over 2x320x64x64: {:.3} ms, {:.1} GB/s of the map read once",
        norm * 1e3,
        bytes / norm / 1e9
    );
    Ok(())
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

/// One UNet evaluation, with `hook` on its self-attention if given; returns seconds.
fn unet_step(
    unet: &UNet,
    device: &Device,
    batch: usize,
    hook: Option<&dyn AttentionHook>,
) -> Result<f64, String> {
    let sample = normal([batch, 4, 64, 64], device);
    let context = normal([batch, 77, 1024], device);
    device.sync().map_err(|e| format!("{e:?}"))?;
    let started = Instant::now();
    let out = unet.forward_hooked(sample, 501.0, context, hook);
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

/// DAM as a SOW run on a 512 px canvas would use it: one 256 px condition at (128, 64) kept
/// whole, its related region the canvas below it (a face and its body), cycle 1 of 5, the
/// prompt branch at batch entry 1 (COW's cycle layout).
fn bench_dam(device: &Device) -> Result<Dam, String> {
    let canvas = 512;
    let placement = SquareBox::new(128, 64, 256);
    let keep = GridMask::from_cells(32, 32, vec![true; 32 * 32]).expect("32x32 cells");
    let below = PixelRect {
        x: 64,
        y: 320,
        w: 384,
        h: 192,
    };
    let related = GridMask::from_rect(&below, canvas, canvas / 8);
    let condition = DamCondition::new(placement, &keep, &related, canvas);
    Dam::new(DamOptions::default(), vec![condition], 5, 1, device).map_err(|e| e.to_string())
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
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
    let (batch, runs) = (args.batch, args.runs.max(1));
    let device = open_device(&args.device)?;
    if args.dam && batch < 2 {
        return Err(
            "--dam needs --batch 2 or more: DAM reads the prompt branch, batch entry 1 \
                    (a SOW cycle's batch is 4)"
                .to_string(),
        );
    }
    let unet = random_unet(&device, args.scheme)?;
    let dam = args.dam.then(|| bench_dam(&device)).transpose()?;
    let dam_hook = dam.as_ref().map(|d| d as &dyn AttentionHook);
    let warmup = unet_step(&unet, &device, batch, None)?;
    eprintln!("warm-up run: {warmup:.2} s");
    // Already the figure that matters for memory (the pool only grows): worth having early
    // where one evaluation takes many minutes (lavapipe).
    print_memory_pool(&device);
    if dam_hook.is_some() {
        let warmup = unet_step(&unet, &device, batch, dam_hook)?;
        eprintln!("warm-up run with DAM: {warmup:.2} s");
    }
    let (mut plain, mut modulated) = (Vec::new(), Vec::new());
    let (mut largest_plain, mut largest_dam) = (0, 0);
    for _ in 0..runs {
        budget::reset();
        plain.push(unet_step(&unet, &device, batch, None)?);
        largest_plain = largest_plain.max(budget::peak_bytes());
        if dam_hook.is_some() {
            budget::reset();
            modulated.push(unet_step(&unet, &device, batch, dam_hook)?);
            largest_dam = largest_dam.max(budget::peak_bytes());
        }
    }
    let plain = median(plain);
    println!(
        "burn UNet step (SD-2.1 full size, {}, {}, 64x64, batch {batch}): median {plain:.3} s \
         over {runs} runs; largest intermediate {:.1} MiB",
        args.scheme,
        args.device,
        mib(largest_plain as u64)
    );
    if !modulated.is_empty() {
        let with_dam = median(modulated);
        println!(
            "burn UNet step with DAM: median {with_dam:.3} s over {runs} runs; largest \
             intermediate {:.1} MiB; DAM/plain time ratio {:.3}",
            mib(largest_dam as u64),
            with_dam / plain
        );
    }
    print_memory_pool(&device);
    Ok(())
}

/// burn's memory pool on the device: in use now, and reserved (an upper bound of the peak).
fn print_memory_pool(device: &Device) {
    if let Some(usage) = device.memory_pool_usage() {
        println!(
            "memory pool: {:.1} MiB in use, {:.1} MiB reserved",
            mib(usage.bytes_in_use),
            mib(usage.bytes_reserved)
        );
    }
}
