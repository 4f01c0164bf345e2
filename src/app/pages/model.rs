//! The Model page: where the weights come from, the license, loading them onto the GPU with
//! progress, and what is loaded. Nothing is fetched until the user presses Load.

use leptos::prelude::*;

use crate::app::device::webgpu_device;
use crate::app::model::{
    load_from_url, set_loaded_models, FileProgress, LoadProgress, ModelInfo, ModelStatus,
};
use crate::app::state::{app_state, claim_gpu};
use crate::app::webgpu::GpuNotice;
use crate::app::{now_ms, yield_to_browser};

/// The license of SD-2.1's weights, named and linked before anything is downloaded.
const LICENSE_NAME: &str = "CreativeML Open RAIL++-M";
const LICENSE_URL: &str =
    "https://huggingface.co/stabilityai/stable-diffusion-2-1-base/blob/main/LICENSE-MODEL";

/// The Model page.
#[component]
pub fn ModelPage() -> impl IntoView {
    let state = app_state();
    let source = RwSignal::new(String::new());
    let status = state.model;
    let loading = move || matches!(status.get(), ModelStatus::Loading(_));
    let gpu_busy = move || state.gpu_job.get().is_some();

    let load = move || {
        let base = source.get_untracked().trim().to_string();
        if base.is_empty() {
            status.set(ModelStatus::Failed(
                "Enter the URL of a model folder in the diffusers layout first.".into(),
            ));
            return;
        }
        let Some(claim) = claim_gpu(state, "loading the model") else {
            return;
        };
        // Drop the old model first: its GPU memory is needed for the new one.
        set_loaded_models(None);
        status.set(ModelStatus::Loading(LoadProgress::default()));
        leptos::task::spawn_local(async move {
            let _claim = claim;
            yield_to_browser().await;
            let start = now_ms();
            let result = async {
                let device = webgpu_device()
                    .await
                    .map_err(crate::app::model::ModelLoadError::Device)?;
                load_from_url(&base, &device, &mut |p| {
                    status.set(ModelStatus::Loading(p));
                })
                .await
            }
            .await;
            match result {
                Ok((models, full_size)) => {
                    let info = ModelInfo {
                        source: models.source.clone(),
                        full_size,
                        seconds: (now_ms() - start) / 1000.0,
                    };
                    set_loaded_models(Some(models));
                    status.set(ModelStatus::Ready(info));
                }
                Err(e) => {
                    leptos::logging::error!("loading the model: {e}");
                    status.set(ModelStatus::Failed(e.to_string()));
                }
            }
        });
    };

    let unload = move || {
        set_loaded_models(None);
        status.set(ModelStatus::Empty);
    };

    view! {
        <h1 class="page-title">"Model"</h1>
        <p class="lede">
            "Stable Diffusion 2.1-base in the diffusers folder layout, loaded from a URL onto \
             your GPU. Nothing is downloaded until you press Load."
        </p>
        <GpuNotice/>
        <div class="panels">
            <section class="panel" aria-labelledby="source-title">
                <h2 id="source-title">"Source"</h2>
                <form
                    class="stack"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        load();
                    }
                >
                    <div class="field">
                        <label for="model-url">"Model URL"</label>
                        <input
                            id="model-url"
                            type="url"
                            placeholder="https://…/stable-diffusion-2-1-base/"
                            autocomplete="off"
                            spellcheck="false"
                            aria-describedby="model-url-hint"
                            prop:value=move || source.get()
                            on:input=move |ev| source.set(event_target_value(&ev))
                        />
                        <p class="hint" id="model-url-hint">
                            "The folder that holds model_index.json, unet/, vae/, text_encoder/ \
                             and tokenizer/, on a server that lets this page read it (CORS)."
                        </p>
                    </div>
                    <p class="license">
                        "The weights of Stable Diffusion 2.1 are licensed under the "
                        <a href=LICENSE_URL target="_blank" rel="noopener noreferrer">
                            {LICENSE_NAME}
                        </a>
                        " license, which restricts how they and the images they make may be \
                         used. Loading them means you accept it."
                    </p>
                    <div class="row">
                        <button
                            type="submit"
                            class="primary"
                            disabled=move || loading() || gpu_busy()
                        >
                            "Load"
                        </button>
                        <Show when=move || status.with(ModelStatus::is_ready)>
                            <button
                                type="button"
                                disabled=gpu_busy
                                on:click=move |_| unload()
                            >
                                "Unload"
                            </button>
                        </Show>
                    </div>
                </form>
            </section>
            <section class="panel" aria-labelledby="loaded-title">
                <h2 id="loaded-title">"Loaded model"</h2>
                <p
                    id="model-status"
                    class="status"
                    data-state=move || status.with(ModelStatus::state)
                    role="status"
                >
                    {move || match status.get() {
                        ModelStatus::Empty => "No model loaded.".to_string(),
                        ModelStatus::Loading(_) => "Loading…".to_string(),
                        ModelStatus::Ready(info) => format!("Ready: {}", info.source.label),
                        ModelStatus::Failed(message) => format!("Loading failed: {message}"),
                    }}
                </p>
                {move || match status.get() {
                    ModelStatus::Loading(progress) => view! { <LoadList progress/> }.into_any(),
                    ModelStatus::Ready(info) => view! { <ModelFacts info/> }.into_any(),
                    _ => ().into_any(),
                }}
            </section>
        </div>
    }
}

/// The files of a load in progress.
#[component]
fn LoadList(progress: LoadProgress) -> impl IntoView {
    let rows = progress
        .files
        .into_iter()
        .map(|FileProgress { path, bytes, done }| {
            let size = bytes.map(format_bytes).unwrap_or_default();
            let state = if done { "done" } else { "building…" };
            view! { <li><code>{path}</code>" "<span class="hint">{size}" · "{state}</span></li> }
        })
        .collect_view();
    view! { <ul class="file-list" aria-label="Files loaded">{rows}</ul> }
}

/// What is loaded.
#[component]
fn ModelFacts(info: ModelInfo) -> impl IntoView {
    let kind = if info.full_size {
        "Stable Diffusion 2.1 (full size)"
    } else {
        "a small test model (same layout, random weights): images will be noise"
    };
    view! {
        <dl class="facts" id="model-facts">
            <dt>"Source"</dt>
            <dd>{info.source.label.clone()}</dd>
            <dt>"Architecture"</dt>
            <dd>{kind}</dd>
            <dt>"Load time"</dt>
            <dd>{format!("{:.1} s", info.seconds)}</dd>
        </dl>
    }
}

/// Bytes in B, kB, MB or GB (powers of 1000, as download sizes are given).
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}
