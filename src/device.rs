//! Choosing a device natively: the flex CPU backend, or wgpu on Vulkan with either the
//! adapter's own limits or WebGPU's default ones (to prove a run fits any browser).
//! In the browser the app makes its WebGPU device itself (`app::device`).

use burn::tensor::wgpu::{wgpu, WgpuBackend};
use burn::tensor::Device;

use crate::gpu_setup;
pub use crate::gpu_setup::GpuLimits;

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
            let setup = pollster::block_on(gpu_setup::acquire(
                wgpu::Backend::Vulkan,
                GpuLimits::WebGpuDefaults,
            ))?;
            Device::wgpu_options()
                .setup(setup)
                .init()
                .map_err(|e| format!("cannot register the Vulkan device: {e}"))
        }
    }
}

/// Which device a command runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A GPU through wgpu when there is one, else the CPU backend.
    Auto,
    /// The flex CPU backend.
    Cpu,
    /// wgpu on Vulkan (a GPU, or lavapipe on the CPU).
    Vulkan,
    /// wgpu on the platform's native API (Vulkan, Metal or DX12).
    Gpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "vulkan" => Ok(DeviceChoice::Vulkan),
            "gpu" => Ok(DeviceChoice::Gpu),
            other => Err(format!(
                "unknown device {other:?}: use auto, cpu, gpu or vulkan"
            )),
        }
    }
}

/// Opens the chosen device and says in words what it is. `Auto` takes a real GPU (any wgpu
/// adapter that is not a CPU implementation such as lavapipe or llvmpipe) and otherwise the CPU
/// backend, which is faster than a software Vulkan.
pub fn open(choice: DeviceChoice) -> Result<(Device, String), String> {
    match choice {
        DeviceChoice::Cpu => Ok((cpu(), "CPU (burn's flex backend)".to_string())),
        DeviceChoice::Vulkan => {
            let name = adapter_name(wgpu::Backends::VULKAN).unwrap_or_default();
            Ok((vulkan(GpuLimits::Adapter)?, format!("Vulkan: {name}")))
        }
        DeviceChoice::Gpu => {
            let name = adapter_name(wgpu::Backends::PRIMARY).unwrap_or_default();
            let device = Device::wgpu_options()
                .init()
                .map_err(|e| format!("no GPU adapter: {e}"))?;
            Ok((device, format!("GPU: {name}")))
        }
        DeviceChoice::Auto => match gpu_adapter() {
            Some(name) => {
                let device = Device::wgpu_options()
                    .init()
                    .map_err(|e| format!("the GPU {name} could not be opened: {e}"))?;
                Ok((device, format!("GPU: {name}")))
            }
            None => Ok((
                cpu(),
                "CPU (burn's flex backend; no GPU adapter found)".to_string(),
            )),
        },
    }
}

/// The name of the first hardware (non-CPU) adapter, if any.
fn gpu_adapter() -> Option<String> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(descriptor);
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .ok()?;
    let info = adapter.get_info();
    (info.device_type != wgpu::DeviceType::Cpu)
        .then_some(format!("{} ({:?})", info.name, info.backend))
}

fn adapter_name(backends: wgpu::Backends) -> Option<String> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = backends;
    let instance = wgpu::Instance::new(descriptor);
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .ok()?;
    Some(adapter.get_info().name)
}
