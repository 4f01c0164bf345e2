//! The page's burn device on WebGPU, and what happens when the GPU fails under it
//! (docs/app.md "When the GPU fails").
//!
//! burn registers one wgpu runtime per device selector and refuses to initialize the same
//! selector twice, so a page that asked burn for "the" WebGPU device could never get another
//! one. The page therefore acquires the adapter and device itself and registers them as an
//! existing setup: every registration is a new runtime, which is what lets the page start over
//! on a fresh device after the GPU was lost or ran out of memory, without a reload.
//!
//! A failing GPU reports itself asynchronously: through the device's `lost` promise, or as an
//! uncaptured error event (out of memory, validation). cubecl's handler for the latter panics,
//! which in wasm aborts the whole module; the page replaces it with one that records the
//! fault and tells the app ([`on_gpu_fault`]), so a run in flight stops at its next step and
//! the page says what to do.
//!
//! The app is single-threaded (wasm32 without threads), hence thread-locals; wgpu's callbacks
//! must be `Send`, so they carry only the device's generation number.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use burn::tensor::wgpu::wgpu;
use burn::tensor::Device;

use crate::gpu_setup::{acquire, GpuLimits};

/// How the GPU failed.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuFault {
    /// An allocation was refused.
    OutOfMemory,
    /// The device is gone (a driver reset, the GPU process restarted, a tab over its budget).
    Lost(String),
    /// Any other error the device reported (a validation or internal error).
    Error(String),
}

impl GpuFault {
    /// What the page says: what happened and how to go on without reloading it.
    pub fn advice(&self) -> String {
        const RELOAD: &str = "The model was unloaded: load it again on the Model page (nothing \
                              is downloaded again)";
        match self {
            GpuFault::OutOfMemory => format!(
                "The GPU ran out of memory. {RELOAD}, choosing 4-bit to need less memory; \
                 closing other tabs that use the GPU helps too."
            ),
            GpuFault::Lost(reason) => format!(
                "The GPU device was lost ({reason}). {RELOAD}; if it happens again, choose \
                 4-bit, which needs less memory."
            ),
            GpuFault::Error(description) => {
                format!("The GPU reported an error ({description}). {RELOAD}.")
            }
        }
    }

    fn from_error(error: wgpu::Error) -> Self {
        match error {
            wgpu::Error::OutOfMemory { .. } => GpuFault::OutOfMemory,
            other => GpuFault::Error(first_line(&other.to_string())),
        }
    }
}

/// A browser's device-lost message can run to several lines; the first says what happened.
fn first_line(text: &str) -> String {
    // Without its full stop: the page's sentence goes on around it.
    let line = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches('.');
    if line.is_empty() {
        "no reason given".into()
    } else {
        line.into()
    }
}

/// The device in use: burn's handle for tensors, wgpu's for destroying it.
struct PageDevice {
    device: Device,
    gpu: wgpu::Device,
}

thread_local! {
    static CURRENT: RefCell<Option<PageDevice>> = const { RefCell::new(None) };
    /// Counts devices made; a report from an older one is ignored.
    static GENERATION: Cell<u32> = const { Cell::new(0) };
    /// The first fault of the newest device, kept after it is retired so that the work that
    /// was using it can still ask; cleared when a new device is made.
    static FAULT: RefCell<Option<GpuFault>> = const { RefCell::new(None) };
    static ON_FAULT: RefCell<Option<Box<dyn Fn(GpuFault)>>> = const { RefCell::new(None) };
}

/// The WebGPU device, made on first use and again after [`retire_device`].
///
/// Callers must not overlap a first call with another (both would make a device): the pages
/// claim the GPU for one job at a time (`state::claim_gpu`), which serializes them.
pub async fn webgpu_device() -> Result<Device, String> {
    if let Some(device) = CURRENT.with(|c| c.borrow().as_ref().map(|d| d.device.clone())) {
        return Ok(device);
    }
    // The adapter's limits: what the engine budgets against (docs/app.md).
    let setup = acquire(wgpu::Backend::BrowserWebGpu, GpuLimits::Adapter).await?;
    let gpu = setup.device.clone();
    let device = Device::wgpu_options()
        .setup(setup)
        .init()
        .map_err(|e| format!("initializing WebGPU failed: {e}"))?;
    let generation = GENERATION.with(|g| {
        g.set(g.get() + 1);
        g.get()
    });
    FAULT.with(|f| *f.borrow_mut() = None);
    // After registration, which installed cubecl's handlers: the uncaptured-error handler is
    // one per device and is replaced; WebGPU keeps every device-lost callback (each is a
    // `then` on the `lost` promise), so cubecl's, which fails its reads from then on, stays.
    gpu.on_uncaptured_error(Arc::new(move |error| {
        record(generation, GpuFault::from_error(error))
    }));
    gpu.set_device_lost_callback(move |_, message| {
        record(generation, GpuFault::Lost(first_line(&message)))
    });
    CURRENT.with(|c| {
        *c.borrow_mut() = Some(PageDevice {
            device: device.clone(),
            gpu,
        })
    });
    Ok(device)
}

/// Keeps the first fault of the current device and tells the app.
fn record(generation: u32, fault: GpuFault) {
    if GENERATION.with(Cell::get) != generation {
        return;
    }
    web_sys::console::error_1(&format!("GPU fault: {fault:?}").into());
    let first = FAULT.with(|f| {
        let mut f = f.borrow_mut();
        let first = f.is_none();
        f.get_or_insert(fault.clone());
        first
    });
    if first {
        ON_FAULT.with(|handler| {
            if let Some(handler) = handler.borrow().as_ref() {
                handler(fault)
            }
        });
    }
}

/// The fault of the newest device, if it failed.
pub fn gpu_fault() -> Option<GpuFault> {
    FAULT.with(|f| f.borrow().clone())
}

/// Calls `handler` once per device that fails, at the first fault.
pub fn on_gpu_fault(handler: impl Fn(GpuFault) + 'static) {
    ON_FAULT.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Destroys the current device, which frees all its GPU memory at once (burn keeps freed
/// tensors' memory in pools), and lets the next [`webgpu_device`] make a new one. Tensors
/// still held on the old device fail their reads from then on.
pub fn retire_device() {
    let retired = CURRENT.with(|c| c.borrow_mut().take());
    // Its own "destroyed" report is not a new fault.
    GENERATION.with(|g| g.set(g.get() + 1));
    if let Some(retired) = retired {
        retired.gpu.destroy();
    }
}
