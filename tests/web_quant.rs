//! Every quantized op the engine uses, on WebGPU inside a real headless Chromium
//! (wasm-bindgen-test; SwiftShader here, which has no shader-f16: scales are f32): the same
//! checks as natively (tests/quant_ops/), at every distinct Linear and convolution shape of the
//! full SD-2.1 UNet, with small unaligned token counts (77 rows, 9×7 maps) because SwiftShader
//! runs on the CPU.
#![cfg(target_arch = "wasm32")]

mod quant_ops;
mod web;

use quant_ops::Sizes;
use sow_studio::weights::policy::{Bits, QuantFormat};
use wasm_bindgen_test::*;
use web::webgpu;

wasm_bindgen_test_configure!(run_in_browser);

/// Every linear or every convolution shape (`which`), at `bits`.
async fn check(which: &str, bits: Bits) {
    let device = webgpu().await;
    let mut worst = 0.0f64;
    let mut count = 0;
    if which == "linear" {
        for case in quant_ops::linear_cases(Sizes::Small) {
            let Some(format) = quant_ops::format_for(&case.example, &[case.d_out, case.d_in], bits)
            else {
                continue;
            };
            let err = quant_ops::check_linear(&device, &case, format)
                .await
                .unwrap_or_else(|e| panic!("webgpu: {e}"));
            worst = worst.max(err);
            count += 1;
        }
        let format = QuantFormat { bits, block: 64 };
        let err = quant_ops::check_burn_batched_linear(&device, [2, 77, 1024, 320], format)
            .await
            .unwrap_or_else(|e| panic!("webgpu: {e}"));
        worst = worst.max(err);
    } else {
        for case in quant_ops::conv_cases(Sizes::Small) {
            let Some(format) = quant_ops::format_for(&case.example, &case.shape, bits) else {
                continue;
            };
            let err = quant_ops::check_conv(&device, &case, format)
                .await
                .unwrap_or_else(|e| panic!("webgpu: {e}"));
            worst = worst.max(err);
            count += 1;
        }
    }
    console_log!(
        "webgpu: {count} {which} shapes, {bits:?}, equal dequantize-then-float (worst {worst:.2e})"
    );
}

#[wasm_bindgen_test]
async fn quantized_linear_8_bit_equals_dequantize_then_float() {
    check("linear", Bits::Eight).await;
}

#[wasm_bindgen_test]
async fn quantized_linear_4_bit_equals_dequantize_then_float() {
    check("linear", Bits::Four).await;
}

#[wasm_bindgen_test]
async fn quantized_conv_8_bit_equals_dequantize_then_float() {
    check("conv", Bits::Eight).await;
}

#[wasm_bindgen_test]
async fn quantized_conv_4_bit_equals_dequantize_then_float() {
    check("conv", Bits::Four).await;
}
