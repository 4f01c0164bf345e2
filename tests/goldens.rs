//! The golden suite natively, on two backends: the flex CPU backend and wgpu on Vulkan (Mesa's
//! lavapipe in CI, a real GPU where there is one). The browser runs the same suite on WebGPU
//! (tests/web_goldens.rs).
#![cfg(not(target_arch = "wasm32"))]

mod suite;

use std::sync::OnceLock;

use burn::tensor::Device;
use sow_studio::device::{self, GpuLimits};

fn flex() -> Device {
    device::cpu()
}

/// wgpu can be initialized once per process; every test shares that device.
fn vulkan() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            device::vulkan(GpuLimits::Adapter)
                .unwrap_or_else(|e| panic!("{e}; install mesa-vulkan-drivers for lavapipe"))
        })
        .clone()
}

macro_rules! backend_suite {
    ($backend:ident, $device:expr, $tolerance:expr, $cow_cases:expr, $toy_variants:expr) => {
        mod $backend {
            use super::*;

            #[test]
            fn text_encoder_matches_transformers() {
                let err = pollster::block_on(suite::check_text_encoder(&$device, $tolerance))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: text encoder relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }

            #[test]
            fn unet_matches_diffusers() {
                let err = pollster::block_on(suite::check_unet(&$device, $tolerance))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: UNet worst relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }

            #[test]
            fn vae_matches_diffusers() {
                let err = pollster::block_on(suite::check_vae(&$device, $tolerance))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: VAE worst relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }

            #[test]
            fn cow_run_matches_the_reference() {
                let err = pollster::block_on(suite::check_cow(&$device, $tolerance, $cow_cases))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: COW run worst relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }

            #[test]
            fn toy_experiment_matches_the_reference() {
                let err = pollster::block_on(suite::check_toy(&$device, $tolerance, $toy_variants))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: toy experiment worst relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }

            #[test]
            fn ddim_matches_diffusers() {
                let err = pollster::block_on(suite::check_scheduler(&$device, $tolerance))
                    .unwrap_or_else(|e| panic!("{e}"));
                println!(
                    "{}: scheduler worst relative L2 error {err:.3e}",
                    stringify!($backend)
                );
            }
        }
    };
}

backend_suite!(flex_cpu, flex(), suite::CPU, suite::COW_ALL, suite::TOY_ALL);
backend_suite!(
    wgpu_vulkan,
    vulkan(),
    suite::GPU,
    suite::COW_GPU,
    suite::TOY_GPU
);

#[test]
fn sow_without_modulation_equals_cow_and_with_it_differs() {
    let change = pollster::block_on(suite::check_sow(&flex())).unwrap_or_else(|e| panic!("{e}"));
    println!("sow: the modulation moved the final latent by {change:.3e} (relative)");
}

#[test]
fn noise_generator_matches_the_reference_bits() {
    let count = suite::check_rng().unwrap_or_else(|e| panic!("{e}"));
    println!("rng: {count} normals equal to the reference, bit for bit");
}

#[test]
fn tokenizer_matches_open_clip() {
    let cases = suite::check_tokenizer().unwrap_or_else(|e| panic!("{e}"));
    println!("tokenizer: {cases} golden cases equal");
}
