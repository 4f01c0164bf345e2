//! What the pages share: which page is shown, what the WebGPU probe found, the model, and the
//! GPU job in flight. Provided once as a Leptos context by [`super::shell::App`]; every field
//! is a signal, so the struct is `Copy`.

use leptos::prelude::*;

use super::gemini::GeminiConfig;
use super::model::ModelStatus;
use super::shell::Page;
use super::webgpu::{probe_webgpu, GpuProbe};

/// The app-wide state.
#[derive(Clone, Copy)]
pub struct AppState {
    /// The page on screen.
    pub page: RwSignal<Page>,
    /// WebGPU's availability and the adapter's limits.
    pub gpu: RwSignal<GpuProbe>,
    /// The model for runs.
    pub model: RwSignal<ModelStatus>,
    /// The GPU job in flight (a load, a run, a check), in words: one at a time, since they
    /// share the device and its memory.
    pub gpu_job: RwSignal<Option<&'static str>>,
    /// The Gemini planner's key and model (Settings).
    pub gemini: RwSignal<GeminiConfig>,
}

impl AppState {
    /// A fresh state showing `page`.
    pub fn new(page: Page) -> Self {
        AppState {
            page: RwSignal::new(page),
            gpu: RwSignal::new(GpuProbe::Checking),
            model: RwSignal::new(ModelStatus::Empty),
            gpu_job: RwSignal::new(None),
            gemini: RwSignal::new(GeminiConfig::at_start()),
        }
    }

    /// Probes WebGPU in the background; pages react when the answer comes.
    pub fn start_probe(self) {
        leptos::task::spawn_local(async move {
            self.gpu.set(probe_webgpu().await);
        });
    }
}

/// The app state from the context (every page lives below [`super::shell::App`]).
pub fn app_state() -> AppState {
    expect_context::<AppState>()
}

/// Claims the GPU for a job named `what`; None when another job holds it. The claim ends when
/// the returned guard is dropped.
pub fn claim_gpu(state: AppState, what: &'static str) -> Option<GpuClaim> {
    if state.gpu_job.get_untracked().is_some() {
        return None;
    }
    state.gpu_job.set(Some(what));
    Some(GpuClaim(state))
}

/// Holds the GPU for one job (see [`claim_gpu`]).
pub struct GpuClaim(AppState);

impl Drop for GpuClaim {
    fn drop(&mut self) {
        self.0.gpu_job.set(None);
    }
}
