//! The model the app runs: loaded on the Model page through the engine's streaming loader
//! (docs/weights.md), used by the Studio, the Toy lab and the Diagnostics check. The loaded
//! networks live in a thread-local (they hold device tensors, which are not `Send`; wasm32 has
//! one thread); the pages see a [`ModelStatus`] signal that describes them.

use std::cell::RefCell;
use std::rc::Rc;

use crate::pipeline::{
    load_models, LoadEvent, LoadOptions, LoadProgress, LoadReport, ModelSource, Models, SourceInfo,
};
use crate::weights::cache::Cache;
use crate::weights::{Component, ConversionPolicy, Scheme};

use leptos::prelude::{RwSignal, Set};

use super::device::{gpu_fault, on_gpu_fault, retire_device, webgpu_device};

thread_local! {
    static LOADED: RefCell<Option<Rc<Models>>> = const { RefCell::new(None) };
}

/// The loaded models, if any.
pub fn loaded_models() -> Option<Rc<Models>> {
    LOADED.with(|cell| cell.borrow().clone())
}

/// Replaces the loaded models (None unloads them; their GPU memory is freed once no run holds
/// them any more).
pub fn set_loaded_models(models: Option<Models>) {
    LOADED.with(|cell| *cell.borrow_mut() = models.map(Rc::new));
}

/// What the pages show about the model.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    /// Nothing loaded, nothing loading.
    Empty,
    /// A load in progress.
    Loading(LoadView),
    /// Loaded and ready for runs.
    Ready(ModelInfo),
    /// The last load failed; the message says why and what to do.
    Failed(String),
    /// The GPU failed under the model, which was unloaded; the message says what to do.
    GpuFailed(String),
}

impl ModelStatus {
    /// A short machine-readable state for `data-state` (and the CSS).
    pub fn state(&self) -> &'static str {
        match self {
            ModelStatus::Empty => "idle",
            ModelStatus::Loading(_) => "busy",
            ModelStatus::Ready(_) => "ready",
            ModelStatus::Failed(_) | ModelStatus::GpuFailed(_) => "error",
        }
    }

    /// Whether a model is ready for runs.
    pub fn is_ready(&self) -> bool {
        matches!(self, ModelStatus::Ready(_))
    }
}

/// A load in progress, as the Model page draws it: one row per component, in load order, and
/// the notices (a cache problem, a retry) that did not stop it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadView {
    /// The components started so far.
    pub components: Vec<LoadProgress>,
    /// Things worth knowing, in order.
    pub notices: Vec<String>,
}

impl LoadView {
    /// Takes in one event of the load.
    pub fn apply(&mut self, event: LoadEvent) {
        match event {
            LoadEvent::Progress(progress) => {
                match self
                    .components
                    .iter_mut()
                    .find(|c| c.component == progress.component)
                {
                    Some(row) => *row = progress,
                    None => self.components.push(progress),
                }
            }
            LoadEvent::Notice(notice) => self.notices.push(notice),
            LoadEvent::Finished(_) => {}
        }
    }
}

/// A loaded model, described.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Where it came from.
    pub source: SourceInfo,
    /// Whether it is SD-2.1-base's full architecture (else a smaller test model).
    pub full_size: bool,
    /// The load's totals: bytes transferred, from the cache, on the device.
    pub report: LoadReport,
    /// Notices the load gave.
    pub notices: Vec<String>,
}

impl ModelInfo {
    /// Bytes the networks take on the device.
    pub fn device_bytes(&self) -> u64 {
        self.report.device_bytes.values().sum()
    }
}

/// SD-2.1-base's UNet is 866 M parameters: anything over a gigabyte on the device is the full
/// architecture, and the fixture models are a few megabytes.
const FULL_SIZE_UNET_BYTES: u64 = 1_000_000_000;

/// Loads every component from `source` onto the page's WebGPU device, the UNet stored in
/// `scheme`, through the browser's cache for downloaded sources (docs/weights.md#cache),
/// telling `progress` as it goes.
pub async fn load(
    source: &ModelSource,
    scheme: Scheme,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<(Models, ModelInfo), String> {
    let device = webgpu_device().await?;
    let mut notices = Vec::new();
    let cache = if source.is_remote() {
        match Cache::in_browser().await {
            Ok((cache, note)) => {
                notices.extend(note);
                Some(cache)
            }
            Err(e) => {
                notices.push(format!("loading without the cache: {e}"));
                None
            }
        }
    } else {
        None
    };
    let options = LoadOptions {
        cache: cache.as_ref(),
        policy: ConversionPolicy::unet(scheme),
        ..LoadOptions::default()
    };
    for notice in &notices {
        progress(LoadEvent::Notice(notice.clone()));
    }
    let mut report = LoadReport::default();
    let models = load_models(source, &device, &options, &mut |event| {
        match &event {
            LoadEvent::Finished(totals) => report = totals.clone(),
            // Kept for the loaded model's panel: a retry, a cache problem, a pack's schemes.
            LoadEvent::Notice(notice) => notices.push(notice.clone()),
            LoadEvent::Progress(_) => {}
        }
        progress(event);
    })
    .await;
    // A load that ran out of GPU memory may still "finish" (the device reports it later).
    if let Some(fault) = gpu_fault() {
        return Err(fault.advice());
    }
    let models = models.map_err(|e| e.to_string())?;
    let full_size = report
        .device_bytes
        .get(&Component::Unet)
        .is_some_and(|&b| b > FULL_SIZE_UNET_BYTES);
    let info = ModelInfo {
        source: models.source.clone(),
        full_size,
        report,
        notices,
    };
    Ok((models, info))
}

/// When the GPU fails (out of memory, a lost device), unloads the model, destroys the device
/// to free its memory, and says what happened and what to do on every page; the next load
/// makes a new device (docs/app.md "When the GPU fails"). A run in flight sees the fault
/// through `device::gpu_fault` and stops at its next step.
pub fn unload_on_gpu_fault(model: RwSignal<ModelStatus>) {
    on_gpu_fault(move |fault| {
        set_loaded_models(None);
        retire_device();
        model.set(ModelStatus::GpuFailed(fault.advice()));
    });
}

/// What the browser's weights cache holds: (entry label, bytes, complete) per entry.
pub async fn cached_entries() -> Result<Vec<(String, u64, bool)>, String> {
    let (cache, _) = Cache::in_browser().await.map_err(|e| e.to_string())?;
    let entries = cache.list().await.map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let label = entry.key.map_or(entry.id, |key| key.source);
            (label, entry.bytes, entry.complete)
        })
        .collect())
}

/// Empties the browser's weights cache.
pub async fn clear_cache() -> Result<(), String> {
    let (cache, _) = Cache::in_browser().await.map_err(|e| e.to_string())?;
    cache.clear().await.map_err(|e| e.to_string())
}
