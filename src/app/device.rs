//! The page's one burn device on WebGPU.
//!
//! burn registers a wgpu runtime per (device kind, graphics API) and refuses a second
//! initialization of the same one, so the device is made once per page and cached here. The app
//! is single-threaded (wasm32 without threads), hence a thread-local.

use std::cell::RefCell;

use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::Device;

thread_local! {
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
}

/// The WebGPU device, initialized on first use.
///
/// Callers must not overlap a first call with another (both would try to initialize): the
/// encoder panel's Run button is disabled while a run is in flight, which serializes them.
pub async fn webgpu_device() -> Result<Device, String> {
    if let Some(device) = DEVICE.with(|cell| cell.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options()
        .graphics_api(WgpuBackend::WebGpu)
        .init_async()
        .await
        .map_err(|e| format!("initializing WebGPU failed: {e}"))?;
    DEVICE.with(|cell| *cell.borrow_mut() = Some(device.clone()));
    Ok(device)
}
