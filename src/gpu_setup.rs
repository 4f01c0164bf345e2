//! Asking wgpu for an adapter and a device directly, to register them with burn as an
//! existing setup (`Device::wgpu_options().setup(..)`). burn's own initialization always asks
//! for the adapter's limits and makes one device per selector; a setup of our own gives a
//! native adapter WebGPU's default limits (to prove a run fits any browser), and gives the page
//! a new device after its device failed (`app::device`).

use burn::tensor::wgpu::{wgpu, WgpuSetup};

/// Which limits a wgpu device is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuLimits {
    /// Everything the adapter offers (what burn asks for, and what the app asks a browser for).
    Adapter,
    /// WebGPU's defaults: 128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup
    /// memory. A run that passes here fits every WebGPU implementation.
    WebGpuDefaults,
}

/// An adapter on `backend` and a device from it with the `limits` chosen and every feature
/// the adapter offers, as burn's own initialization asks for them.
pub async fn acquire(backend: wgpu::Backend, limits: GpuLimits) -> Result<WgpuSetup, String> {
    let name = match backend {
        wgpu::Backend::BrowserWebGpu => "WebGPU",
        wgpu::Backend::Vulkan => "Vulkan",
        other => other.to_str(),
    };
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: backend.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..wgpu::RequestAdapterOptions::default()
        })
        .await
        .map_err(|e| format!("no {name} adapter: {e}"))?;
    let required_limits = match limits {
        GpuLimits::Adapter => adapter.limits(),
        GpuLimits::WebGpuDefaults => wgpu::Limits::default(),
    };
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("sow-studio"),
            required_features: adapter
                .features()
                .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
            required_limits,
            memory_hints: wgpu::MemoryHints::MemoryUsage,
            ..wgpu::DeviceDescriptor::default()
        })
        .await
        .map_err(|e| format!("the {name} adapter gave no device: {e}"))?;
    Ok(WgpuSetup {
        instance,
        adapter,
        device,
        queue,
        backend,
    })
}
