//! The Model page: where the weights come from (the default mirror, another URL, or files on
//! this computer), the license, loading them onto the GPU with per-component progress, what is
//! loaded, and what the browser's cache holds. Nothing is fetched until the user presses Load.

use leptos::prelude::*;

use crate::app::files::input_of;
use crate::app::format::{format_bytes, format_seconds};
use crate::app::model::{
    cached_entries, clear_cache, load, set_loaded_models, LoadView, ModelInfo, ModelStatus,
};
use crate::app::state::{app_state, claim_gpu};
use crate::app::webgpu::{GpuNotice, GpuProbe};
use crate::app::yield_to_browser;
use crate::pipeline::fit::{gpu_estimate, judge, Fit};
use crate::pipeline::source::{PickedFiles, UrlSource};
use crate::pipeline::{
    LoadProgress, ModelSource, Phase, DEFAULT_MODEL_URL, LICENSE_NAME, LICENSE_URL,
};
use crate::weights::Scheme;

/// Which kind of source the user chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    Default,
    Url,
    Files,
}

/// The Model page.
#[component]
pub fn ModelPage() -> impl IntoView {
    let state = app_state();
    let kind = RwSignal::new(SourceKind::Default);
    let url = RwSignal::new(String::new());
    // 8-bit by default: the full UNet then takes under 1 GB of GPU memory (docs/quantization.md).
    let scheme = RwSignal::new(Scheme::Q8);
    // Picked files are JS objects: kept outside the reactive graph, counted in a signal.
    let picked = StoredValue::new_local(None::<PickedFiles>);
    let picked_count = RwSignal::new(0usize);
    let status = state.model;
    let cache_rows = RwSignal::new(None::<Result<Vec<(String, u64, bool)>, String>>);
    let loading = move || matches!(status.get(), ModelStatus::Loading(_));
    let gpu_busy = move || state.gpu_job.get().is_some();
    // Checked before anything is fetched: the adapter's limits and the machine's memory.
    let fit = move || -> Option<Fit> {
        match state.gpu.get() {
            GpuProbe::Ready(adapter) => Some(judge(scheme.get(), &adapter.gpu_facts())),
            _ => None,
        }
    };

    let refresh_cache = move || {
        leptos::task::spawn_local(async move {
            cache_rows.set(Some(cached_entries().await));
        });
    };
    refresh_cache();

    let chosen_source = move || -> Result<ModelSource, String> {
        match kind.get_untracked() {
            SourceKind::Default => Ok(ModelSource::default_source()),
            SourceKind::Url => {
                let text = url.get_untracked();
                let text = text.trim();
                let address = text.strip_prefix("pack:").unwrap_or(text);
                if !(address.starts_with("https://") || address.starts_with("http://")) {
                    return Err("Enter the URL of a model folder in the diffusers layout \
                                (it starts with https://), or of a pack (pack:https://…)."
                        .into());
                }
                if text.starts_with("pack:") {
                    return ModelSource::parse(text).map_err(|e| e.to_string());
                }
                Ok(ModelSource::Url(UrlSource::new(text)))
            }
            SourceKind::Files => picked
                .get_value()
                .map(ModelSource::picked)
                .ok_or_else(|| "Pick the model's folder first.".to_string()),
        }
    };

    let start_load = move || {
        let source = match chosen_source() {
            Ok(source) => source,
            Err(message) => {
                status.set(ModelStatus::Failed(message));
                return;
            }
        };
        let Some(claim) = claim_gpu(state, "loading the model") else {
            return;
        };
        // Drop the old model first: its GPU memory is needed for the new one.
        set_loaded_models(None);
        status.set(ModelStatus::Loading(LoadView::default()));
        leptos::task::spawn_local(async move {
            let _claim = claim;
            yield_to_browser().await;
            let mut view = LoadView::default();
            let result = load(&source, scheme.get_untracked(), &mut |event| {
                view.apply(event);
                status.set(ModelStatus::Loading(view.clone()));
            })
            .await;
            match result {
                Ok((models, info)) => {
                    set_loaded_models(Some(models));
                    status.set(ModelStatus::Ready(info));
                }
                Err(e) => {
                    leptos::logging::error!("loading the model: {e}");
                    status.set(ModelStatus::Failed(e));
                }
            }
            refresh_cache();
        });
    };

    let unload = move || {
        set_loaded_models(None);
        status.set(ModelStatus::Empty);
    };

    // `webkitdirectory` (pick a whole folder) has no typed attribute in Leptos: set it once
    // the element exists.
    let folder_input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder_input.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });

    let on_pick = move |ev: leptos::ev::Event| {
        let Some(input) = input_of(&ev) else {
            return;
        };
        if let Some(list) = input.files() {
            let files = PickedFiles::from_file_list(&list);
            picked_count.set(files.paths().count());
            picked.set_value(Some(files));
        }
    };

    let radio = move |value: SourceKind, id: &'static str, label: &'static str| {
        view! {
            <label class="choice" for=id>
                <input
                    type="radio"
                    name="model-source"
                    id=id
                    prop:checked=move || kind.get() == value
                    on:change=move |_| kind.set(value)
                />
                {label}
            </label>
        }
    };

    view! {
        <h1 class="page-title">"Model"</h1>
        <p class="lede">
            "Stable Diffusion 2.1-base in the diffusers folder layout, streamed onto your GPU one \
             tensor at a time and kept in this browser's storage for the next visit. Nothing is \
             downloaded until you press Load."
        </p>
        <GpuNotice/>
        <div class="panels">
            <section class="panel" aria-labelledby="source-title">
                <h2 id="source-title">"Source"</h2>
                <form
                    class="stack"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        start_load();
                    }
                >
                    <fieldset class="stack">
                        <legend>"Where the weights come from"</legend>
                        {radio(SourceKind::Default, "source-default", "The default mirror")}
                        <p class="hint"><code class="wrap">{DEFAULT_MODEL_URL}</code></p>
                        {radio(SourceKind::Url, "source-url", "Another URL")}
                        <div class="field" hidden=move || kind.get() != SourceKind::Url>
                            <label for="model-url">"Model URL"</label>
                            <input
                                id="model-url"
                                type="url"
                                placeholder="https://…/stable-diffusion-2-1-base/"
                                autocomplete="off"
                                spellcheck="false"
                                aria-describedby="model-url-hint"
                                prop:value=move || url.get()
                                on:input=move |ev| url.set(event_target_value(&ev))
                            />
                            <p class="hint" id="model-url-hint">
                                "The folder that holds unet/, vae/, text_encoder/ and tokenizer/, \
                                 on a server that lets this page read it (CORS); for a pack made \
                                 by sow pack, write pack: before its URL (its own schemes are used)."
                            </p>
                        </div>
                        {radio(SourceKind::Files, "source-files", "A folder on this computer")}
                        <div class="field" hidden=move || kind.get() != SourceKind::Files>
                            <label for="model-folder">"Model folder"</label>
                            <input
                                id="model-folder"
                                type="file"
                                node_ref=folder_input
                                multiple=true
                                on:change=on_pick
                            />
                            <p class="hint">
                                {move || match picked_count.get() {
                                    0 => "Files are read where they are: nothing is copied or \
                                          uploaded."
                                        .to_string(),
                                    n => format!("{n} files of the model layout picked."),
                                }}
                            </p>
                        </div>
                    </fieldset>
                    <div class="field">
                        <label for="model-scheme">"UNet weights on the GPU"</label>
                        <select
                            id="model-scheme"
                            on:change=move |ev| {
                                if let Ok(s) = event_target_value(&ev).parse::<Scheme>() {
                                    scheme.set(s);
                                }
                            }
                        >
                            <option value="q8" selected=move || scheme.get() == Scheme::Q8>
                                "8-bit (default: 0.93 GB, close to full precision)"
                            </option>
                            <option value="q4" selected=move || scheme.get() == Scheme::Q4>
                                "4-bit (0.50 GB, for small GPUs; less faithful)"
                            </option>
                            <option value="f32" selected=move || scheme.get() == Scheme::F32>
                                "32-bit float (3.5 GB, the reference)"
                            </option>
                        </select>
                        <p class="hint" id="gpu-estimate">
                            {move || format!(
                                "Stable Diffusion 2.1 then needs about {} of GPU memory in all \
                                 (weights and a 512 px run).",
                                format_bytes(gpu_estimate(scheme.get()))
                            )}
                        </p>
                        {move || fit().map(|fit| view! {
                            <p class="notice" id="gpu-fit" data-state=fit.state()>
                                {fit.message().to_string()}
                            </p>
                        })}
                    </div>
                    <p class="license" id="license">
                        "The weights of Stable Diffusion 2.1 are licensed under the "
                        <a href=LICENSE_URL target="_blank" rel="noopener noreferrer">
                            {LICENSE_NAME}
                        </a>
                        " license, which restricts how they and the images they make may be \
                         used. Loading them means you accept it. The full model is about 2.6 GB \
                         to download."
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
                            <button type="button" disabled=gpu_busy on:click=move |_| unload()>
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
                        ModelStatus::GpuFailed(message) => message,
                    }}
                </p>
                {move || match status.get() {
                    ModelStatus::Loading(view) => view! { <LoadRows view/> }.into_any(),
                    ModelStatus::Ready(info) => view! { <ModelFacts info/> }.into_any(),
                    _ => ().into_any(),
                }}
            </section>
            <section class="panel" aria-labelledby="cache-title">
                <h2 id="cache-title">"Stored in this browser"</h2>
                {move || match cache_rows.get() {
                    None => view! { <p class="hint">"Reading the cache…"</p> }.into_any(),
                    Some(Err(e)) => view! { <p class="hint">{e}</p> }.into_any(),
                    Some(Ok(rows)) if rows.is_empty() => {
                        view! { <p class="hint" id="cache-summary">"Nothing stored."</p> }
                            .into_any()
                    }
                    Some(Ok(rows)) => {
                        let total: u64 = rows.iter().map(|r| r.1).sum();
                        let items = rows
                            .into_iter()
                            .map(|(label, bytes, complete)| {
                                let state = if complete { "complete" } else { "partial" };
                                view! {
                                    <li>
                                        <code class="wrap">{label}</code>
                                        " "
                                        <span class="hint">
                                            {format!("{} · {state}", format_bytes(bytes))}
                                        </span>
                                    </li>
                                }
                            })
                            .collect_view();
                        view! {
                            <p class="hint" id="cache-summary">
                                {format!("{} stored.", format_bytes(total))}
                            </p>
                            <ul class="file-list" aria-label="Stored models">{items}</ul>
                        }
                            .into_any()
                    }
                }}
                <button
                    type="button"
                    disabled=move || loading() || gpu_busy()
                    on:click=move |_| {
                        leptos::task::spawn_local(async move {
                            if let Err(e) = clear_cache().await {
                                cache_rows.set(Some(Err(e)));
                                return;
                            }
                            cache_rows.set(Some(cached_entries().await));
                        });
                    }
                >
                    "Clear stored models"
                </button>
            </section>
        </div>
    }
}

/// A load in progress: one progress bar per component, and the notices.
#[component]
fn LoadRows(view: LoadView) -> impl IntoView {
    let rows = view
        .components
        .into_iter()
        .map(|row| {
            let LoadProgress {
                component,
                phase,
                done,
                total,
                rate,
                eta,
            } = row;
            let what = match phase {
                Phase::Reading => "reading",
                Phase::Building => "building",
                Phase::Done => "done",
            };
            let mut detail = format!("{} of {} · {what}", format_bytes(done), format_bytes(total));
            if let Some(rate) = rate.filter(|_| phase == Phase::Reading) {
                detail.push_str(&format!(" · {}/s", format_bytes(rate as u64)));
            }
            if let Some(eta) = eta.filter(|_| phase == Phase::Reading) {
                detail.push_str(&format!(" · {} left", format_seconds(eta)));
            }
            let name = component.to_string();
            view! {
                <li class="load-row">
                    <span class="load-name">{name.clone()}</span>
                    <progress
                        max=total.max(1).to_string()
                        value=done.to_string()
                        aria-label=format!("{name} download")
                    ></progress>
                    <span class="hint">{detail}</span>
                </li>
            }
        })
        .collect_view();
    let notices = view
        .notices
        .into_iter()
        .map(|n| view! { <li>{n}</li> })
        .collect_view();
    view! {
        <ul class="file-list" aria-label="Components">{rows}</ul>
        <ul class="notices">{notices}</ul>
    }
}

/// What is loaded.
#[component]
fn ModelFacts(info: ModelInfo) -> impl IntoView {
    let kind = if info.full_size {
        "Stable Diffusion 2.1 (full size)"
    } else {
        "a small test model (same layout, random weights): its images are noise"
    };
    let report = &info.report;
    let notices = info
        .notices
        .iter()
        .map(|n| view! { <li>{n.clone()}</li> })
        .collect_view();
    view! {
        <dl class="facts" id="model-facts">
            <dt>"Source"</dt>
            <dd><code class="wrap">{info.source.label.clone()}</code></dd>
            <dt>"Architecture"</dt>
            <dd>{kind}</dd>
            <dt>"Downloaded"</dt>
            <dd id="bytes-transferred">{format_bytes(report.transferred)}</dd>
            <dt>"From this browser's storage"</dt>
            <dd id="bytes-from-cache">{format_bytes(report.from_cache)}</dd>
            <dt>"On the GPU"</dt>
            <dd>{format_bytes(info.device_bytes())}</dd>
            <dt>"Load time"</dt>
            <dd>{format_seconds(report.seconds)}</dd>
        </dl>
        <ul class="notices">{notices}</ul>
    }
}
