//! The visual conditions: added with the file picker, by dropping files on the drop zone, or
//! by pasting an image anywhere on the Studio page; listed with their boxes as numbers (the
//! keyboard's way to place them) and a Remove button.

use std::sync::Arc;

use leptos::prelude::*;

use super::mask::{show_masks_when_editors_close, MaskEditor};
use super::state::{default_box, ConditionEntry, Studio};
use crate::app::files::{dropped_files, file_url, files_of, input_of, read_file};
use crate::imaging::{decode_image, SquareBox};
use crate::pipeline::conditions::ConditionFiles;

/// Reads each file, checks that it decodes, and adds it as a condition.
pub fn add_files(studio: Studio, files: Vec<web_sys::File>) {
    if files.is_empty() {
        return;
    }
    leptos::task::spawn_local(async move {
        for file in files {
            let name = file.name();
            let bytes = match read_file(&file).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    studio.input_message.set(Some(e));
                    continue;
                }
            };
            let size = match decode_image(&bytes, &name) {
                Ok(image) => (image.rgb.width(), image.rgb.height()),
                Err(e) => {
                    studio.input_message.set(Some(e.to_string()));
                    continue;
                }
            };
            let id = studio.next_id.get_untracked();
            studio.next_id.set(id + 1);
            let index = studio.conditions.with_untracked(Vec::len);
            let entry = ConditionEntry {
                id,
                files: Arc::new(ConditionFiles::new(&name, Some(name.clone()), bytes, None)),
                thumbnail: file_url(&file).unwrap_or_default(),
                kept: String::new(),
                size,
                placement: default_box(studio.canvas(), index),
                placed_by_hand: false,
            };
            studio.conditions.update(|list| list.push(entry));
            // A new condition invalidates the plan (it places every condition at once).
            studio.plan.set(None);
            studio.input_message.set(None);
        }
    });
}

/// The conditions panel.
#[component]
pub fn ConditionsPanel(studio: Studio) -> impl IntoView {
    let dragging = RwSignal::new(false);
    show_masks_when_editors_close(studio);
    // Paste anywhere on the page: an image on the clipboard becomes a condition.
    let paste = window_event_listener(leptos::ev::paste, move |ev: web_sys::ClipboardEvent| {
        let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            ev.prevent_default();
            add_files(studio, files);
        }
    });
    on_cleanup(move || paste.remove());

    let on_pick = move |ev: leptos::ev::Event| {
        let Some(input) = input_of(&ev) else {
            return;
        };
        add_files(studio, files_of(input.files()));
        // The same file picked again must fire `change` again.
        input.set_value("");
    };

    view! {
        <section class="panel" aria-labelledby="conditions-title">
            <h2 id="conditions-title">"Visual conditions"</h2>
            <div
                class="dropzone"
                data-active=move || dragging.get().to_string()
                on:dragover=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=move |ev: web_sys::DragEvent| {
                    ev.prevent_default();
                    dragging.set(false);
                    add_files(studio, dropped_files(&ev));
                }
            >
                <label for="condition-file" class="button">"Add an image…"</label>
                <input
                    id="condition-file"
                    class="visually-hidden"
                    type="file"
                    accept="image/png,image/jpeg,image/webp"
                    multiple=true
                    on:change=on_pick
                />
                <p class="hint">"or drop PNG, JPEG or WebP files here, or paste an image."</p>
            </div>
            <Show when=move || studio.input_message.with(Option::is_some)>
                <p class="status" data-state="error" id="input-message" role="alert">
                    {move || studio.input_message.get().unwrap_or_default()}
                </p>
            </Show>
            <ul class="condition-list" aria-label="Conditions">
                {move || {
                    studio
                        .conditions
                        .get()
                        .into_iter()
                        .enumerate()
                        .map(|(index, entry)| view! { <ConditionRow studio index entry/> })
                        .collect_view()
                }}
            </ul>
            // Outside the list, which redraws on every change: the editor stays open while
            // its strokes update the condition.
            {move || studio.mask_open.get().map(|id| view! { <MaskEditor studio id/> })}
        </section>
    }
}

/// One condition: thumbnail, name, its box as numbers, Remove.
#[component]
fn ConditionRow(studio: Studio, index: usize, entry: ConditionEntry) -> impl IntoView {
    let id = entry.id;
    let name = entry
        .files
        .name
        .clone()
        .unwrap_or_else(|| entry.files.label.clone());
    let number = index + 1;
    let field = move |label: &'static str,
                      read: fn(&SquareBox) -> usize,
                      write: fn(&mut SquareBox, usize)| {
        let input_id = format!("condition-{id}-{}", label.to_lowercase());
        let label_for = input_id.clone();
        let value = read(&entry.placement);
        view! {
            <label class="mini-field" for=label_for>
                <span>{label}</span>
                <input
                    id=input_id
                    type="number"
                    min="0"
                    step="8"
                    prop:value=value.to_string()
                    aria-label=format!("Condition {number} {label}")
                    on:change=move |ev| {
                        let Ok(v) = event_target_value(&ev).trim().parse::<usize>() else {
                            return;
                        };
                        let mut placement = studio
                            .conditions
                            .with_untracked(|l| l.iter().find(|c| c.id == id).map(|c| c.placement));
                        if let Some(p) = placement.as_mut() {
                            write(p, v / 8 * 8);
                            studio.place(id, *p, true);
                        }
                    }
                />
            </label>
        }
    };
    view! {
        <li class="condition-row">
            <img class="thumb" src=entry.thumbnail.clone() alt=format!("Condition {number}: {name}")/>
            <div class="stack tight">
                <span class="condition-name">{format!("{number}. {name}")}</span>
                <span class="hint">
                    {format!("{} × {} px", entry.size.0, entry.size.1)}
                    {entry.files.mask.is_some().then_some(" · painted mask")}
                </span>
                <div class="row tight">
                    {field("X", |b| b.x, |b, v| b.x = v)}
                    {field("Y", |b| b.y, |b, v| b.y = v)}
                    {field("Side", |b| b.side, |b, v| b.side = v)}
                </div>
            </div>
            <div class="stack tight">
            <button
                type="button"
                aria-label=format!("Paint the mask of condition {number}")
                aria-expanded=move || (studio.mask_open.get() == Some(id)).to_string()
                disabled=move || studio.busy()
                on:click=move |_| {
                    let open = studio.mask_open.get_untracked() == Some(id);
                    studio.mask_open.set((!open).then_some(id));
                }
            >
                "Mask"
            </button>
            <button
                type="button"
                aria-label=format!("Remove condition {number}")
                disabled=move || studio.busy()
                on:click=move |_| {
                    // The list's entry, not this row's copy: a mask painted since added a URL.
                    studio.conditions.update(|l| {
                        l.iter().filter(|c| c.id == id).for_each(ConditionEntry::revoke_urls);
                        l.retain(|c| c.id != id)
                    });
                    if studio.mask_open.get_untracked() == Some(id) {
                        studio.mask_open.set(None);
                    }
                    studio.plan.set(None);
                }
            >
                "Remove"
            </button>
            </div>
        </li>
    }
}
