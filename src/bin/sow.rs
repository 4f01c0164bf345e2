//! `sow`: the native command-line tool. For now it holds the full-size checks and benchmarks of
//! the engine; batch generation comes with the method itself.
//!
//! ```text
//! sow check-limits [--batch 4] [--skip-unet] [--skip-vae]
//!                                                  full-size UNet + 512 px VAE decode on
//!                                                  Vulkan with WebGPU's default limits
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
    use sow_studio::model::budget;
    use sow_studio::model::config::{UNetConfig, VaeConfig};
    use sow_studio::model::unet::UNet;
    use sow_studio::model::vae::Vae;
    use sow_studio::weights::RandomWeights;

    pub const USAGE: &str = "usage:
  sow check-limits [--batch N] [--skip-unet] [--skip-vae]
      one full-size UNet evaluation at 64x64 (batch N, default 4) and one 512x512 VAE decode
      on Vulkan with WebGPU's default limits (128 MiB bindings, 256 MiB buffers)
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
        let device = device::vulkan(GpuLimits::WebGpuDefaults)?;
        if !args.iter().any(|a| a == "--skip-unet") {
            let unet = random_unet(&device)?;
            budget::reset();
            let seconds = unet_step(&unet, &device, batch)?;
            println!(
                "UNet 64x64 batch {batch}: passed in {seconds:.1} s; largest intermediate {:.1} MiB; peak RSS {:.0} MiB",
                budget::peak_bytes() as f64 / (1 << 20) as f64,
                peak_rss_mib()
            );
        }
        if args.iter().any(|a| a == "--skip-vae") {
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
