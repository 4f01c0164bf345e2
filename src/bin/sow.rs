//! `sow`: the native command-line tool. For now it holds the full-size checks and benchmarks of
//! the engine; batch generation comes with the method itself.
//!
//! ```text
//! sow check-limits [--batch 4] [--scheme q8] [--skip-unet] [--skip-text] [--skip-vae]
//!                                                  full-size UNet, text encoder, 512 px VAE
//!                                                  encode and decode on Vulkan with WebGPU's
//!                                                  default limits
//! sow bench-unet [--device cpu|vulkan] [--batch 2] [--runs 3]
//!                                                  time one full-size UNet evaluation
//! ```
//! Weights are seeded random values in the real SD-2.1-base architecture.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-limits") => native::check_limits(&args[1..]),
        Some("bench-unet") => native::bench_unet(&args[1..]),
        _ => Err(native::USAGE.to_string()),
    };
    if let Err(message) = result {
        eprintln!("{message}");
        std::process::exit(2);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::time::Instant;

    use burn::tensor::{Device, Distribution, Tensor};
    use sow_studio::device::{self, GpuLimits};
    use sow_studio::model::config::UNetConfig;
    use sow_studio::model::limits;
    use sow_studio::model::unet::UNet;
    use sow_studio::weights::{RandomWeights, Scheme};

    pub const USAGE: &str = "usage:
  sow check-limits [--batch N] [--scheme f32|q8|q4] [--skip-unet] [--skip-text] [--skip-vae]
      one full-size UNet evaluation at 64x64 (batch N, default 4; weights q8 by default), the
      full text encoder on N prompts, one 512x512 VAE encode and one decode, on Vulkan with
      WebGPU's default limits (128 MiB bindings, 256 MiB buffers)
  sow bench-unet [--device cpu|vulkan] [--batch N] [--runs R]
      median time of R (default 3) full-size UNet evaluations at 64x64, batch N (default 2)";

    /// `--name value` from the arguments, parsed, or the default.
    fn option<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}")),
        }
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
        let sample =
            Tensor::<4>::random([batch, 4, 64, 64], Distribution::Normal(0.0, 1.0), device);
        let context =
            Tensor::<3>::random([batch, 77, 1024], Distribution::Normal(0.0, 1.0), device);
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

    pub fn check_limits(args: &[String]) -> Result<(), String> {
        let batch: usize = option(args, "--batch", 4)?;
        let scheme: Scheme = option(args, "--scheme", Scheme::Q8)?;
        let skip = |flag: &str| args.iter().any(|a| a == flag);
        let device = device::vulkan(GpuLimits::WebGpuDefaults)?;
        if !skip("--skip-unet") {
            println!("{}", limits::unet(&device, batch, scheme)?);
        }
        if !skip("--skip-text") {
            println!("{}", limits::text_encoder(&device, batch, Scheme::F32)?);
        }
        if !skip("--skip-vae") {
            println!("{}", limits::vae_encode(&device, 512)?);
            println!("{}", limits::vae_decode(&device)?);
        }
        Ok(())
    }

    pub fn bench_unet(args: &[String]) -> Result<(), String> {
        let batch: usize = option(args, "--batch", 2)?;
        let runs: usize = option(args, "--runs", 3)?;
        let device = match option(args, "--device", "cpu".to_string())?.as_str() {
            "cpu" => device::cpu(),
            "vulkan" => device::vulkan(GpuLimits::Adapter)?,
            other => return Err(format!("unknown device {other:?}\n{USAGE}")),
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
}
