//! Choosing a device natively: the flex CPU backend, or wgpu on Vulkan with either the
//! adapter's own limits or WebGPU's default ones (to prove a run fits any browser).
//! In the browser the app initializes WebGPU itself (`Device::wgpu_options().init_async()`).

use burn::tensor::wgpu::{wgpu, WgpuBackend, WgpuSetup};
use burn::tensor::Device;

/// Which limits a native wgpu device is created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuLimits {
    /// Everything the adapter offers (what burn asks for, and what the app asks a browser for).
    Adapter,
    /// WebGPU's defaults: 128 MiB per storage binding, 256 MiB per buffer, 16 KiB of workgroup
    /// memory. A run that passes here fits every WebGPU implementation.
    WebGpuDefaults,
}

/// The flex CPU backend.
pub fn cpu() -> Device {
    Device::flex()
}

/// wgpu on Vulkan (a GPU, or Mesa's lavapipe on the CPU). Can be called once per process.
pub fn vulkan(limits: GpuLimits) -> Result<Device, String> {
    match limits {
        GpuLimits::Adapter => Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .init()
            .map_err(|e| format!("no Vulkan adapter: {e}")),
        GpuLimits::WebGpuDefaults => {
            let setup = pollster::block_on(vulkan_setup_with_default_limits())?;
            Device::wgpu_options()
                .setup(setup)
                .init()
                .map_err(|e| format!("cannot register the Vulkan device: {e}"))
        }
    }
}

async fn vulkan_setup_with_default_limits() -> Result<WgpuSetup, String> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(descriptor);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .map_err(|e| format!("no Vulkan adapter: {e}"))?;
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            required_features: adapter
                .features()
                .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
            required_limits: wgpu::Limits::default(),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("the Vulkan adapter refused a device: {e}"))?;
    Ok(WgpuSetup {
        instance,
        adapter,
        device,
        queue,
        backend: wgpu::Backend::Vulkan,
    })
}
