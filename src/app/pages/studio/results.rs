//! The result (beside its conditions) with its PNG download, whose text chunk carries the
//! parameters in the same format the CLI reads; "reuse these parameters" (from the result, a
//! history entry or a dropped PNG); and the history, kept in this browser's private file
//! system (`sow-studio/history/`) until the user clears it.

use leptos::prelude::*;

use super::state::{ResultEntry, Studio};
use crate::app::files::{blob_url, dropped_files, files_of, input_of, read_file, revoke_url};
use crate::pipeline::generate::Generated;
use crate::pipeline::params::{from_png, to_png, ImageParameters};
use crate::weights::cache::BrowserStore;

/// The history's folder in the private file system.
const HISTORY_DIR: &str = "history";

/// Keeps a finished run: its PNG (parameters embedded) becomes the result and enters the
/// history.
pub fn finish_run(
    studio: Studio,
    generated: &Generated,
    params: ImageParameters,
) -> Result<(), String> {
    let png = to_png(&generated.rgb, generated.size, &params).map_err(|e| e.to_string())?;
    let stamp = js_sys::Date::now() as u64;
    let file_name = format!("sow-{stamp}-seed{}.png", params.seed);
    let entry = ResultEntry {
        url: blob_url(&png, "image/png")?,
        file_name: file_name.clone(),
        params,
    };
    studio.result.set(Some(entry.clone()));
    studio.history.update(|h| h.insert(0, entry));
    leptos::task::spawn_local(async move {
        // Storage problems never stop the studio: the result is on screen already.
        if let Ok((store, _)) = BrowserStore::open().await {
            if let Err(e) = store
                .write(&format!("{HISTORY_DIR}/{file_name}"), &[&png])
                .await
            {
                leptos::logging::warn!("keeping the result in the history failed: {e:?}");
            }
        }
    });
    Ok(())
}

/// Reads the history back from the private file system (newest first).
pub fn restore_history(studio: Studio) {
    leptos::task::spawn_local(async move {
        let Ok((store, _)) = BrowserStore::open().await else {
            return;
        };
        let Ok(mut names) = store.list(HISTORY_DIR).await else {
            return;
        };
        names.sort_unstable_by(|a, b| b.cmp(a));
        let mut entries = Vec::new();
        for name in names {
            let Ok(Some(png)) = store.read(&format!("{HISTORY_DIR}/{name}")).await else {
                continue;
            };
            let (Ok(params), Ok(url)) = (from_png(&png), blob_url(&png, "image/png")) else {
                continue;
            };
            entries.push(ResultEntry {
                url,
                file_name: name,
                params,
            });
        }
        studio.history.update(|h| h.extend(entries));
    });
}

/// Puts an image's parameters back into the form. The conditions' images are not in the
/// parameters (only their SHA-256): their boxes are applied to the conditions on the page when
/// the counts match, and the message says when the images differ.
pub fn reuse_parameters(studio: Studio, params: &ImageParameters) {
    studio.prompt.set(params.prompt.clone());
    studio.seed.set(params.seed);
    studio.method.set(params.method);
    studio.options.set(params.options.clone());
    if let Some(attention) = &params.attention {
        studio.attention.set(attention.clone());
    }
    let conditions = studio.conditions.get_untracked();
    let mut notes = Vec::new();
    if conditions.len() == params.conditions.len() {
        for (entry, record) in conditions.iter().zip(&params.conditions) {
            studio.place(entry.id, record.placement, true);
            if entry.files.image_sha256 != record.image_sha256 {
                notes.push(format!(
                    "condition “{}” is not the image these parameters were made with",
                    entry.files.label
                ));
            }
        }
    } else {
        let names: Vec<String> = params
            .conditions
            .iter()
            .map(|c| c.image_name.clone().unwrap_or_else(|| "an image".into()))
            .collect();
        notes.push(format!(
            "these parameters were made with {} condition(s) ({}); add the same images to \
             make the image again",
            params.conditions.len(),
            names.join(", ")
        ));
    }
    // The UNet's scheme is the Model page's choice, made at load time: name a difference.
    let loaded = crate::app::model::loaded_models().and_then(|m| m.source.unet_weights);
    if let (Some(made), Some(loaded)) = (params.model.unet_weights, loaded) {
        if made != loaded {
            notes.push(format!(
                "they were made with the UNet in {made} and the loaded model keeps it in \
                 {loaded} (Model page), so the image will differ slightly"
            ));
        }
    }
    studio.plan.set(params.plan.clone());
    studio.input_message.set(if notes.is_empty() {
        None
    } else {
        Some(format!("Parameters reused, but {}.", notes.join("; ")))
    });
}

/// Reads the parameters of a PNG the user gives.
fn reuse_from_file(studio: Studio, file: web_sys::File) {
    leptos::task::spawn_local(async move {
        let outcome = match read_file(&file).await {
            Ok(bytes) => from_png(&bytes).map_err(|e| format!("{}: {e}", file.name())),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(params) => reuse_parameters(studio, &params),
            Err(e) => studio.input_message.set(Some(e)),
        }
    });
}

/// The result panel.
#[component]
pub fn ResultPanel(studio: Studio) -> impl IntoView {
    let on_pick = move |ev: leptos::ev::Event| {
        let Some(input) = input_of(&ev) else {
            return;
        };
        if let Some(file) = files_of(input.files()).into_iter().next() {
            reuse_from_file(studio, file);
        }
        input.set_value("");
    };
    view! {
        <section
            class="panel"
            aria-labelledby="result-title"
            on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                if let Some(file) = dropped_files(&ev).into_iter().next() {
                    reuse_from_file(studio, file);
                }
            }
        >
            <h2 id="result-title">"Result"</h2>
            {move || match studio.result.get() {
                None => view! {
                    <p class="hint result-empty">"The image appears here, beside its conditions."</p>
                }
                .into_any(),
                Some(entry) => {
                    let params = entry.params.clone();
                    let conditions = studio
                        .conditions
                        .get()
                        .into_iter()
                        .map(|c| view! { <img class="thumb" src=c.thumbnail alt="Condition"/> })
                        .collect_view();
                    view! {
                        <div class="result">
                            <img
                                id="result-image"
                                src=entry.url.clone()
                                alt=format!("Result: {}", entry.params.prompt)
                            />
                            <div class="result-conditions" aria-label="Its conditions">{conditions}</div>
                        </div>
                        <p class="hint">
                            {format!(
                                "{} · seed {} · {} · {} px",
                                if entry.params.method == crate::pipeline::params::Method::Sow { "SOW" } else { "COW" },
                                entry.params.seed,
                                entry.params.options.setting.name(),
                                entry.params.options.canvas
                            )}
                        </p>
                        <div class="row">
                            <a class="button" href=entry.url.clone() download=entry.file_name.clone()>
                                "Download PNG"
                            </a>
                            <button type="button" on:click=move |_| reuse_parameters(studio, &params)>
                                "Reuse these parameters"
                            </button>
                        </div>
                    }
                    .into_any()
                }
            }}
            <div class="field">
                <label for="reuse-file">"Reuse the parameters of a PNG (or drop it here)"</label>
                <input id="reuse-file" type="file" accept="image/png" on:change=on_pick/>
            </div>
        </section>
    }
}

/// The history panel.
#[component]
pub fn HistoryPanel(studio: Studio) -> impl IntoView {
    let clear = move || {
        for entry in studio.history.get_untracked() {
            revoke_url(&entry.url);
        }
        studio.history.set(Vec::new());
        leptos::task::spawn_local(async move {
            if let Ok((store, _)) = BrowserStore::open().await {
                let _ = store.remove(HISTORY_DIR).await;
            }
        });
    };
    view! {
        <section class="panel" aria-labelledby="history-title">
            <h2 id="history-title">"History"</h2>
            <p class="hint">"Kept in this browser only."</p>
            <ul class="history" aria-label="Past results">
                {move || {
                    studio
                        .history
                        .get()
                        .into_iter()
                        .map(|entry| {
                            let params = entry.params.clone();
                            let label = format!("Reuse the parameters of “{}”", entry.params.prompt);
                            view! {
                                <li>
                                    <img src=entry.url.clone() alt=entry.params.prompt.clone()/>
                                    <button type="button" aria-label=label on:click=move |_| reuse_parameters(studio, &params)>
                                        "Reuse"
                                    </button>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
            <button
                type="button"
                disabled=move || studio.history.with(Vec::is_empty)
                on:click=move |_| clear()
            >
                "Clear history"
            </button>
        </section>
    }
}
