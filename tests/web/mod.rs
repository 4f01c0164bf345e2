//! What every browser test (wasm-bindgen-test) starts with: the page's one WebGPU device, and
//! the static constructors run once.

use std::cell::{Cell, RefCell};

use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::Device;

thread_local! {
    /// WebGPU can be initialized once per page; the tests share the device.
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
    static CONSTRUCTED: Cell<bool> = const { Cell::new(false) };
}

extern "C" {
    /// wasm-ld's synthesized function that runs the static constructors.
    fn __wasm_call_ctors();
}

/// Runs the static constructors (cubecl's kernel registry, via `inventory`) once. Because this
/// module refers to `__wasm_call_ctors`, wasm-ld no longer wraps every export of the test module
/// in a call to it, which re-ran all constructors on each call from JavaScript, every GPU
/// callback included (docs/app.md, "Budgets": the app's entry point does the same).
fn construct_once() {
    if !CONSTRUCTED.with(|c| c.replace(true)) {
        // SAFETY: called once per module instance, before any constructed static is read.
        unsafe { __wasm_call_ctors() };
    }
}

/// The browser's WebGPU device, shared by the tests of this module.
pub async fn webgpu() -> Device {
    construct_once();
    if let Some(device) = DEVICE.with(|d| d.borrow().clone()) {
        return device;
    }
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .unwrap_or_else(|e| {
            panic!("no WebGPU adapter: {e:?} (Chromium needs --enable-unsafe-webgpu)")
        });
    DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    device
}
