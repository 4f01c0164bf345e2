//! Quantized weights natively (docs/quantization.md): every quantized op against
//! dequantize-then-float at SD-2.1's shapes on the flex CPU backend and on wgpu (lavapipe's
//! Vulkan), the tiny golden UNet's and text encoder's error against f32 with a per-layer study,
//! and the full-size UNet's device size at 8 and 4 bits.
#![cfg(not(target_arch = "wasm32"))]

mod quant_ops;
mod suite;

use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use sow_studio::compare::relative_l2;
use sow_studio::device::{self, GpuLimits};
use sow_studio::model::clip::ClipTextEncoder;
use sow_studio::model::config::{TextEncoderConfig, UNetConfig, VaeConfig};
use sow_studio::model::unet::UNet;
use sow_studio::model::vae::Vae;
use sow_studio::weights::policy::{Bits, Storage, WeightKind};
use sow_studio::weights::quant::QuantizedMatrix;
use sow_studio::weights::{
    materialize, resident_bytes, safetensors::decode_f32, Component, DeviceWeight, MemorySource,
    Policy, Scheme, TensorLoader, WeightError, WeightSource,
};

use quant_ops::Sizes;

fn vulkan() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            device::vulkan(GpuLimits::Adapter)
                .unwrap_or_else(|e| panic!("{e}; install mesa-vulkan-drivers for lavapipe"))
        })
        .clone()
}

fn check_ops(device: Device, label: &str, sizes: Sizes) {
    for bits in [Bits::Eight, Bits::Four] {
        let started = Instant::now();
        let (worst, count) =
            pollster::block_on(quant_ops::check_all(&device, sizes, bits, |line| {
                println!("{label}: {line}")
            }))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        println!(
            "{label}: {count} {bits:?} quantized ops at {sizes:?} sizes equal dequantize-then-float, \
             worst {worst:.2e}, in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// CI's check on the CPU backend: every shape at small token counts (seconds).
#[test]
fn quantized_ops_equal_dequantize_then_float_on_flex() {
    check_ops(device::cpu(), "flex", Sizes::Small);
}

/// The same at the token counts of a real 64×64-latent evaluation (minutes on 2 cores).
#[test]
#[ignore = "about 4 minutes on 2 cores; run with --ignored"]
fn quantized_ops_equal_dequantize_then_float_on_flex_at_real_token_counts() {
    check_ops(device::cpu(), "flex", Sizes::Real);
}

#[test]
fn quantized_ops_equal_dequantize_then_float_on_vulkan() {
    check_ops(vulkan(), "vulkan", Sizes::Small);
}

/// The tiny golden UNet loaded with `policy`.
fn tiny_unet(device: &Device, policy: Policy) -> UNet {
    let config = UNetConfig::from_json("unet/config.json", suite::UNET_CONFIG).unwrap();
    let loader = TensorLoader::open("unet", MemorySource(suite::UNET_WEIGHTS), device)
        .unwrap()
        .with_policy(policy);
    UNet::load(&config, &mut { loader }).unwrap()
}

/// The UNet's outputs on every golden case.
fn unet_outputs(unet: &UNet, device: &Device) -> Vec<Vec<f32>> {
    let json: Value = serde_json::from_str(suite::UNET_GOLDEN_JSON).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let i = case["index"].as_u64().unwrap();
            let t = case["timestep"].as_f64().unwrap();
            let (shape, sample) = suite::golden(suite::UNET_GOLDEN, &format!("case{i}_sample"));
            let sample = Tensor::<4>::from_data(
                TensorData::new(sample, <[usize; 4]>::try_from(shape).unwrap()),
                device,
            );
            let (shape, ctx) = suite::golden(
                suite::UNET_GOLDEN,
                &format!("case{i}_encoder_hidden_states"),
            );
            let context = Tensor::<3>::from_data(
                TensorData::new(ctx, <[usize; 3]>::try_from(shape).unwrap()),
                device,
            );
            unet.forward(sample, t, context)
                .into_data()
                .try_into_vec::<f32>()
                .unwrap()
        })
        .collect()
}

/// The worst relative L2 error over the golden cases.
fn worst_error(actual: &[Vec<f32>], expected: &[Vec<f32>]) -> f64 {
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| relative_l2(a, e))
        .fold(0.0, f64::max)
}

/// Wraps a weight source, adding to every matrix Gaussian noise of a given RMS relative to the
/// matrix's own: the quantizer's error without its structure, to tell the quantizer's share
/// of the output error from the model's sensitivity.
struct NoisyWeights<S> {
    inner: S,
    relative_rms: f32,
    rng: sow_studio::rng::NoiseGenerator,
}

impl WeightSource for NoisyWeights<TensorLoader<MemorySource<'_>>> {
    fn device(&self) -> &Device {
        self.inner.device()
    }
    fn contains(&self, name: &str) -> bool {
        self.inner.contains(name)
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError> {
        let mut values = self.inner.values(name, shape)?;
        if matches!(
            WeightKind::of(name, shape),
            WeightKind::Linear | WeightKind::Conv
        ) {
            let rms = (values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32).sqrt();
            for v in &mut values {
                *v += self.relative_rms * rms * self.rng.normal();
            }
        }
        let data = TensorData::new(values, shape.to_vec());
        let device = self.inner.device().clone();
        materialize(name, data, self.inner.policy(), &device).map_err(|e| WeightError::Conversion {
            file: "unet".into(),
            name: name.into(),
            detail: e.to_string(),
        })
    }
    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        self.inner.finish(ignorable_suffixes)
    }
}

/// The tiny golden UNet at 8 and 4 bits against itself in f32, over every golden case.
///
/// The targets are 1 % (8-bit) and 5 % (4-bit); this random-weight model does not
/// reach them (measured: about 2.9 % and 45 %) because it amplifies any weight perturbation
/// about fivefold: Gaussian noise of the 8-bit quantizer's own RMS (0.57 % of each matrix)
/// moves its output as much as quantization does (printed below). The bounds asserted here
/// are regression bounds on the measured values, not the targets (docs/quantization.md §3).
#[test]
fn tiny_unet_error_against_f32_at_8_and_4_bits() {
    let device = device::cpu();
    let reference = unet_outputs(&tiny_unet(&device, Policy::f32()), &device);
    for (scheme, bound) in [(Scheme::Q8, 0.04), (Scheme::Q4, 0.6)] {
        let unet = tiny_unet(&device, Policy::new(Component::Unet, scheme));
        let resident = resident_bytes(&unet);
        let err = worst_error(&unet_outputs(&unet, &device), &reference);
        println!(
            "tiny UNet {scheme}: worst relative L2 error vs f32 {err:.3e} over the golden cases \
             ({} of {} parameters quantized)",
            resident.quantized_params,
            resident.params()
        );
        assert!(resident.quantized_params > 0, "nothing was quantized");
        assert!(err <= bound, "{scheme}: {err:.3e} > {bound}");
    }
    let config = UNetConfig::from_json("unet/config.json", suite::UNET_CONFIG).unwrap();
    let loader = TensorLoader::open("unet", MemorySource(suite::UNET_WEIGHTS), &device).unwrap();
    let mut noisy = NoisyWeights {
        inner: loader,
        relative_rms: 0.0057,
        rng: sow_studio::rng::NoiseGenerator::new(5),
    };
    let unet = UNet::load(&config, &mut noisy).unwrap();
    let err = worst_error(&unet_outputs(&unet, &device), &reference);
    println!(
        "tiny UNet with Gaussian noise of 0.57 % RMS on every matrix (f32): worst relative L2 \
         error vs f32 {err:.3e}"
    );
}

/// Every matrix of the tiny UNet file: (name, file shape, f32 values).
fn tiny_unet_matrices() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let bytes = suite::UNET_WEIGHTS;
    let header =
        sow_studio::weights::SafetensorsHeader::parse("unet", bytes, Some(bytes.len() as u64))
            .unwrap();
    header
        .tensors
        .iter()
        .filter(|(name, info)| {
            matches!(
                WeightKind::of(name, &info.shape),
                WeightKind::Linear | WeightKind::Conv
            )
        })
        .map(|(name, info)| {
            let data = &bytes[info.start as usize..info.end as usize];
            (
                name.clone(),
                info.shape.clone(),
                decode_f32(info.dtype, data).unwrap(),
            )
        })
        .collect()
}

/// The per-layer study: for each quantizable tensor of the tiny UNet, the weight's own error
/// and the UNet output's error with that tensor alone quantized (docs/quantization.md §3).
/// Run with `--nocapture` to see the table.
#[test]
#[ignore = "about 10 minutes; run with --ignored --nocapture to print the table"]
fn per_layer_error_study_of_the_tiny_unet() {
    let device = device::cpu();
    let reference = unet_outputs(&tiny_unet(&device, Policy::f32()), &device);
    // One golden case is enough to rank layers; the whole-model test above uses them all.
    let reference = &reference[..1];
    for scheme in [Scheme::Q8, Scheme::Q4] {
        let policy = Policy::new(Component::Unet, scheme).without_exceptions();
        println!("\nper-layer study, {scheme} (weight error | UNet output error with this layer alone quantized)");
        let mut rows = Vec::new();
        for (name, shape, values) in tiny_unet_matrices() {
            let Storage::Quantized(format) = policy.storage(&name, &shape) else {
                println!("{name:70} {shape:?} stays f32 (no block divides its rows)");
                continue;
            };
            let stored = WeightKind::of(&name, &shape).stored_shape(&shape);
            let q = QuantizedMatrix::quantize(&values, [stored[0], stored[1]], format);
            let weight_err = relative_l2(&q.dequantize(), &values);
            let unet = tiny_unet(&device, policy.clone().only(&name));
            let out = unet_outputs(&unet, &device);
            let out_err = worst_error(&out[..1], reference);
            rows.push((name, shape, format.block, weight_err, out_err));
        }
        rows.sort_by(|a, b| b.4.total_cmp(&a.4));
        for (name, shape, block, weight_err, out_err) in &rows {
            println!("{name:70} {shape:?} block {block}: {weight_err:.2e} | {out_err:.2e}");
        }
        let mean = |f: fn(&(String, Vec<usize>, usize, f64, f64)) -> f64| {
            rows.iter().map(f).sum::<f64>() / rows.len() as f64
        };
        println!(
            "{scheme}: {} layers; weight error mean {:.2e}, max {:.2e}; output error mean {:.2e}, max {:.2e}",
            rows.len(),
            mean(|r| r.3),
            rows.iter().map(|r| r.3).fold(0.0, f64::max),
            mean(|r| r.4),
            rows.iter().map(|r| r.4).fold(0.0, f64::max),
        );
        assert!(!rows.is_empty());
    }
}

#[test]
fn tiny_text_encoder_stays_within_1_percent_at_8_bits() {
    let device = device::cpu();
    let config =
        TextEncoderConfig::from_json("text_encoder/config.json", suite::TEXT_ENCODER_CONFIG)
            .unwrap();
    let encode = |policy: Policy| {
        let mut loader = TensorLoader::open(
            "text_encoder",
            MemorySource(suite::TEXT_ENCODER_WEIGHTS),
            &device,
        )
        .unwrap()
        .with_policy(policy);
        let encoder = ClipTextEncoder::load(&config, &mut loader).unwrap();
        let rows = suite::text_encoder_golden_ids();
        let hidden = encoder.encode(&rows, &device).unwrap();
        (
            resident_bytes(&encoder),
            hidden.into_data().try_into_vec::<f32>().unwrap(),
        )
    };
    let (_, reference) = encode(Policy::f32());
    let (resident, quantized) = encode(Policy::new(Component::TextEncoder, Scheme::Q8));
    let err = relative_l2(&quantized, &reference);
    println!(
        "tiny text encoder q8: relative L2 error vs f32 {err:.3e} ({} of {} parameters quantized)",
        resident.quantized_params,
        resident.params()
    );
    assert!(resident.quantized_params > 0);
    assert!(err <= 0.01, "{err:.3e}");
}

#[test]
fn tiny_vae_error_against_f32_at_8_bits() {
    let device = device::cpu();
    let config = VaeConfig::from_json("vae/config.json", suite::VAE_CONFIG).unwrap();
    let run = |policy: Policy| {
        let mut loader = TensorLoader::open("vae", MemorySource(suite::VAE_WEIGHTS), &device)
            .unwrap()
            .with_policy(policy);
        let vae = Vae::load(&config, &mut loader).unwrap();
        let input = |name: &str| {
            let (shape, values) = suite::golden(suite::VAE_GOLDEN, name);
            let shape: [usize; 4] = shape.try_into().unwrap();
            Tensor::<4>::from_data(TensorData::new(values, shape), &device)
        };
        let decoded = vae.decode(input("decode_in0"));
        let mean = vae.encode(input("image0")).mean;
        (
            resident_bytes(&vae),
            decoded.into_data().try_into_vec::<f32>().unwrap(),
            mean.into_data().try_into_vec::<f32>().unwrap(),
        )
    };
    let (_, decoded, mean) = run(Policy::f32());
    let (resident, decoded_q8, mean_q8) = run(Policy::new(Component::Vae, Scheme::Q8));
    let (decode_err, encode_err) = (
        relative_l2(&decoded_q8, &decoded),
        relative_l2(&mean_q8, &mean),
    );
    println!(
        "tiny VAE q8: relative L2 error vs f32: decode {decode_err:.3e}, encode (posterior mean) \
         {encode_err:.3e} ({} of {} parameters quantized)",
        resident.quantized_params,
        resident.params()
    );
    assert!(resident.quantized_params > 0);
    // The random tiny networks amplify weight error about fourfold (the UNet's 0.57 % RMS
    // quantizer error becomes 3.1 % under plain noise of that size, docs/quantization.md §3);
    // 2.2 % here. A broken quantizer gives tens of percent.
    assert!(
        decode_err <= 0.03 && encode_err <= 0.03,
        "{decode_err:e} {encode_err:e}"
    );
}

/// Hands out a cheap deterministic pattern for whatever the model asks, through
/// [`materialize`] with a policy: the full-size architecture's storage without the cost of
/// drawing 866 M normal values (what a tensor keeps on the device depends on its shape, dtype
/// and policy, not its values).
struct PatternWeights {
    device: Device,
    policy: Policy,
}

impl WeightSource for PatternWeights {
    fn device(&self) -> &Device {
        &self.device
    }
    fn contains(&self, _name: &str) -> bool {
        false
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError> {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|i| (i % 251) as f32 / 125.0 - 1.0).collect();
        let data = TensorData::new(values, shape.to_vec());
        materialize(name, data, &self.policy, &self.device).map_err(|e| WeightError::Conversion {
            file: "pattern".into(),
            name: name.into(),
            detail: e.to_string(),
        })
    }
    fn finish(&mut self, _ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        Ok(())
    }
}

/// The full-size UNet (the real SD-2.1 shapes) at 8 and 4 bits: the bytes its parameters
/// keep on the device, counted from the stored tensors' shapes and dtypes, against the
/// targets (GB = 1e9 bytes).
#[test]
fn full_size_unet_fits_0_95_gb_at_8_bits_and_0_55_gb_at_4_bits() {
    let device = device::cpu();
    for (scheme, target) in [(Scheme::Q8, 0.95e9), (Scheme::Q4, 0.55e9)] {
        let started = Instant::now();
        let mut source = PatternWeights {
            device: device.clone(),
            policy: Policy::new(Component::Unet, scheme),
        };
        let unet = UNet::load(&UNetConfig::sd21(), &mut source).unwrap();
        let r = resident_bytes(&unet);
        println!(
            "full-size UNet {scheme}: {:.3} GB on the device ({} quantized parameters in {:.3} GB, \
             {} f32 parameters in {:.3} GB; built in {:.0} s)",
            r.bytes() as f64 / 1e9,
            r.quantized_params,
            r.quantized_bytes as f64 / 1e9,
            r.float_params,
            r.float_bytes as f64 / 1e9,
            started.elapsed().as_secs_f64()
        );
        assert_eq!(r.params(), 865_910_724);
        assert!(
            (r.bytes() as f64) <= target,
            "{scheme}: {} bytes",
            r.bytes()
        );
    }
}
