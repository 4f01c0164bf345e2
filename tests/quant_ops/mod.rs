//! Every quantized op the engine uses, checked against dequantize-then-float at every distinct
//! Linear and convolution shape of the full SD-2.1 UNet (tests/fixtures/goldens/
//! sd21_param_counts.json): the same quantized values, once uploaded quantized and run through
//! our layers (burn's quantized matmul; the convolution's on-device dequantization), once
//! dequantized on the host and run through the float op on the same device.
//!
//! Shared by the native backends (tests/quantization.rs) and WebGPU in Chromium
//! (tests/web_quant.rs); every check is async for the browser's readbacks.

#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::module::Param;
use burn::tensor::{module, Device, Tensor, TensorData};
use serde_json::Value;
use sow_studio::compare::relative_l2;
use sow_studio::model::layers::{Conv2d, Linear};
use sow_studio::rng::NoiseGenerator;
use sow_studio::weights::policy::{Bits, QuantFormat, Storage};
use sow_studio::weights::quant::QuantizedMatrix;
use sow_studio::weights::{Component, Policy, Scheme};

const COUNTS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/goldens/sd21_param_counts.json"
));

/// Quantized op against dequantize-then-float: the same values, so only summation order may
/// differ (none was seen: flex dequantizes first, the GPU kernels dequantize on load).
pub const TOLERANCE: f64 = 1e-5;

/// Token or pixel counts to run the shapes at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// What one image of a real 64×64-latent evaluation has at each layer: 4096/1024/256/64
    /// tokens, 77 context tokens, the latent side 64/32/16/8 (batch 2 for linear layers).
    Real,
    /// Unaligned small counts for slow backends: 77 rows (39 per batch entry) for every linear
    /// layer, 9×7 feature maps for convolutions.
    Small,
}

/// One linear shape: PyTorch's `[d_out, d_in]` and the rows it sees.
#[derive(Clone, Debug)]
pub struct LinearCase {
    /// A tensor of this shape, for the report.
    pub example: String,
    /// Output width.
    pub d_out: usize,
    /// Input width.
    pub d_in: usize,
    /// Batch entries.
    pub batch: usize,
    /// Rows per batch entry.
    pub rows: usize,
}

/// One convolution shape and the feature map it sees.
#[derive(Clone, Debug)]
pub struct ConvCase {
    /// A tensor of this shape, for the report.
    pub example: String,
    /// `[out, in, k, k]`.
    pub shape: [usize; 4],
    /// Stride (2 for the downsamplers).
    pub stride: usize,
    /// Feature map side (rows, columns).
    pub side: [usize; 2],
}

fn tensor_shapes() -> BTreeMap<String, Vec<usize>> {
    let counts: Value = serde_json::from_str(COUNTS).unwrap();
    counts["unet"]["tensor_shapes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, shape)| {
            let dims = shape.as_array().unwrap().iter();
            (
                name.clone(),
                dims.map(|d| d.as_u64().unwrap() as usize).collect(),
            )
        })
        .collect()
}

/// The resolution level (0 = 64×64 latents) a UNet tensor works at.
fn level(name: &str) -> usize {
    let index = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.split('.').next())
            .and_then(|i| i.parse::<usize>().ok())
    };
    if let Some(i) = index("down_blocks.") {
        // A downsampler reads its level's map.
        i
    } else if let Some(i) = index("up_blocks.") {
        3 - i
    } else if name.starts_with("mid_block") {
        3
    } else {
        0
    }
}

/// Every distinct linear shape of the full UNet, once, at the rows its first user sees.
pub fn linear_cases(sizes: Sizes) -> Vec<LinearCase> {
    let mut seen = BTreeMap::new();
    for (name, shape) in tensor_shapes() {
        if shape.len() != 2 || seen.contains_key(&(shape[0], shape[1])) {
            continue;
        }
        let (batch, rows) = match sizes {
            Sizes::Small => (2, 39),
            Sizes::Real if name.contains("time_emb") => (2, 1),
            Sizes::Real if name.contains("attn2.to_k") || name.contains("attn2.to_v") => (2, 77),
            Sizes::Real => (2, (64 >> level(&name)) * (64 >> level(&name))),
        };
        seen.insert(
            (shape[0], shape[1]),
            LinearCase {
                example: name,
                d_out: shape[0],
                d_in: shape[1],
                batch,
                rows,
            },
        );
    }
    seen.into_values().collect()
}

/// Every distinct convolution (shape, stride) of the full UNet, once, at the map its first
/// user sees.
pub fn conv_cases(sizes: Sizes) -> Vec<ConvCase> {
    let mut seen = BTreeMap::new();
    for (name, shape) in tensor_shapes() {
        if shape.len() != 4 {
            continue;
        }
        let stride = if name.contains("downsamplers") { 2 } else { 1 };
        let key = (shape.clone(), stride);
        if seen.contains_key(&key) {
            continue;
        }
        let side = match sizes {
            Sizes::Small => [9, 7],
            Sizes::Real => [64 >> level(&name); 2],
        };
        seen.insert(
            key,
            ConvCase {
                example: name,
                shape: [shape[0], shape[1], shape[2], shape[3]],
                stride,
                side,
            },
        );
    }
    seen.into_values().collect()
}

fn normals(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = NoiseGenerator::new(seed);
    (0..count).map(|_| rng.normal()).collect()
}

async fn read<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data_async()
        .await
        .expect("readback")
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// The format the engine's policy gives the tensor `name` of this file shape at `bits`, with
/// no layer kept in f32 for sensitivity; None where no block divides its rows (`conv_in`'s 36),
/// which the engine keeps in f32.
pub fn format_for(name: &str, file_shape: &[usize], bits: Bits) -> Option<QuantFormat> {
    let scheme = match bits {
        Bits::Eight => Scheme::Q8,
        Bits::Four => Scheme::Q4,
    };
    match Policy::new(Component::Unet, scheme)
        .without_exceptions()
        .storage(name, file_shape)
    {
        Storage::Quantized(format) => Some(format),
        Storage::F32 => None,
    }
}

/// A quantized matrix `[rows, cols]` of seeded normal values, as a device tensor, and its
/// host-dequantized f32 twin on the same device.
fn weights(
    shape: [usize; 2],
    format: QuantFormat,
    seed: u64,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let q = QuantizedMatrix::quantize(&normals(shape[0] * shape[1], seed), shape, format);
    let quantized = Tensor::from_data(q.to_tensor_data(), device);
    let float = Tensor::from_data(TensorData::new(q.dequantize(), shape), device);
    (quantized, float)
}

fn check(label: &str, actual: &[f32], expected: &[f32]) -> Result<f64, String> {
    let err = relative_l2(actual, expected);
    if err <= TOLERANCE {
        Ok(err)
    } else {
        Err(format!(
            "{label}: quantized op differs from dequantize-then-float by {err:.3e} (> {TOLERANCE:.0e})"
        ))
    }
}

/// Our `Linear` with a quantized weight (burn's quantized matmul on `[batch·rows, d_in]`)
/// against the same layer with the host-dequantized weight, input `[batch, rows, d_in]`.
pub async fn check_linear(
    device: &Device,
    case: &LinearCase,
    format: QuantFormat,
) -> Result<f64, String> {
    let (quantized, float) = weights([case.d_out, case.d_in], format, 11, device);
    let bias = Tensor::<1>::from_data(
        TensorData::new(normals(case.d_out, 12), [case.d_out]),
        device,
    );
    let layer = |weight: Tensor<2>| Linear {
        weight: Param::from_tensor(weight.transpose()),
        bias: Some(Param::from_tensor(bias.clone())),
    };
    let x = Tensor::<3>::from_data(
        TensorData::new(
            normals(case.batch * case.rows * case.d_in, 13),
            [case.batch, case.rows, case.d_in],
        ),
        device,
    );
    let actual = read(layer(quantized).forward(x.clone())).await;
    let expected = read(layer(float).forward(x)).await;
    check(
        &format!(
            "linear {:?} ({}) {format:?}",
            [case.d_out, case.d_in],
            case.example
        ),
        &actual,
        &expected,
    )
}

/// burn's own batched path, which our `Linear` avoids by folding rows: `module::linear` with
/// a 3-D input and a quantized weight, against the same with the dequantized weight.
pub async fn check_burn_batched_linear(
    device: &Device,
    [batch, rows, d_in, d_out]: [usize; 4],
    format: QuantFormat,
) -> Result<f64, String> {
    let (quantized, float) = weights([d_out, d_in], format, 21, device);
    let x = Tensor::<3>::from_data(
        TensorData::new(normals(batch * rows * d_in, 22), [batch, rows, d_in]),
        device,
    );
    let actual = read(module::linear(x.clone(), quantized.transpose(), None)).await;
    let expected = read(module::linear(x, float.transpose(), None)).await;
    check(
        &format!(
            "burn batched linear {:?} {format:?}",
            [batch, rows, d_in, d_out]
        ),
        &actual,
        &expected,
    )
}

/// Our `Conv2d` with a quantized `[out, in·k·k]` weight (dequantized on the device before the
/// convolution) against the same layer with the host-dequantized weight.
pub async fn check_conv(
    device: &Device,
    case: &ConvCase,
    format: QuantFormat,
) -> Result<f64, String> {
    let [c_out, c_in, k, _] = case.shape;
    let (quantized, float) = weights([c_out, c_in * k * k], format, 31, device);
    let bias = Tensor::<1>::from_data(TensorData::new(normals(c_out, 32), [c_out]), device);
    let layer = |weight: Tensor<2>| Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias.clone())),
        kernel: k,
        stride: case.stride,
        pad_begin: k / 2,
        pad_end: k / 2,
    };
    let [h, w] = case.side;
    let x = Tensor::<4>::from_data(
        TensorData::new(normals(c_in * h * w, 33), [1, c_in, h, w]),
        device,
    );
    let actual = read(layer(quantized).forward(x.clone())).await;
    let expected = read(layer(float).forward(x)).await;
    check(
        &format!(
            "conv {:?} stride {} ({}) {format:?}",
            case.shape, case.stride, case.example
        ),
        &actual,
        &expected,
    )
}

/// Every linear and convolution case at `sizes` that the policy quantizes, at `bits`; returns
/// the worst error and how many checks ran. `log` gets one line per check.
pub async fn check_all(
    device: &Device,
    sizes: Sizes,
    bits: Bits,
    mut log: impl FnMut(String),
) -> Result<(f64, usize), String> {
    let mut worst = 0.0f64;
    let mut count = 0;
    for case in linear_cases(sizes) {
        let Some(format) = format_for(&case.example, &[case.d_out, case.d_in], bits) else {
            log(format!("linear [{}, {}] stays f32", case.d_out, case.d_in));
            continue;
        };
        let err = check_linear(device, &case, format).await?;
        log(format!(
            "linear [{:5}, {:5}] on [{} x {:4}] rows, {bits:?} block {}: {err:.2e}",
            case.d_out, case.d_in, case.batch, case.rows, format.block
        ));
        worst = worst.max(err);
        count += 1;
    }
    for case in conv_cases(sizes) {
        let Some(format) = format_for(&case.example, &case.shape, bits) else {
            log(format!("conv {:?} stays f32", case.shape));
            continue;
        };
        let err = check_conv(device, &case, format).await?;
        log(format!(
            "conv {:?} stride {} on {:?}, {bits:?} block {}: {err:.2e}",
            case.shape, case.stride, case.side, format.block
        ));
        worst = worst.max(err);
        count += 1;
    }
    let format = QuantFormat { bits, block: 64 };
    let err = check_burn_batched_linear(device, [2, 77, 1024, 320], format).await?;
    log(format!(
        "burn's own batched linear [2, 77, 1024] -> 320, {bits:?}: {err:.2e}"
    ));
    Ok((worst.max(err), count + 1))
}
