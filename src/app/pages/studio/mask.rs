//! The mask brush: paint over a condition what to keep (black in a mask file) and what to
//! discard. Every finished stroke becomes the condition's mask file (`imaging::brush`), the
//! same kind of file the CLI's `--mask` takes, so runs and the PNG's parameters (its hash)
//! treat both alike. The parts outside the centred square a run uses are shown darker.

use std::sync::Arc;

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::state::Studio;
use crate::app::canvas::draw_rgba;
use crate::app::files::{blob_url, revoke_url};
use crate::imaging::brush::MaskPainting;
use crate::imaging::png::encode_rgba_png;
use crate::imaging::{decode_image, decode_mask, RgbImage, SquareBox};
use crate::pipeline::conditions::ConditionFiles;

/// The editor's picture and painting, kept while it is open.
struct Sheet {
    painting: MaskPainting,
    picture: RgbImage,
}

/// Side of the picture of what a run keeps: the box on the canvas scales it.
const KEPT_SIDE: usize = 128;

/// What a run keeps of a condition, as a PNG: its used square prepared as for a run
/// (`ConditionFiles::prepare`), the discarded pixels transparent so that the canvas shows
/// through. None when the files do not prepare (their errors show when a run starts).
pub fn kept_picture(files: &ConditionFiles) -> Option<Vec<u8>> {
    let prepared = files.prepare(SquareBox::new(0, 0, KEPT_SIDE)).ok()?;
    let rgba: Vec<u8> = prepared
        .crop_rgb
        .chunks_exact(3)
        .zip(&prepared.keep_pixels)
        .flat_map(|(p, &keep)| [p[0], p[1], p[2], if keep { 255 } else { 0 }])
        .collect();
    encode_rgba_png(&rgba, KEPT_SIDE, KEPT_SIDE).ok()
}

/// When a mask editor closes (Done, the Mask button again, another condition's editor), the
/// condition's box on the canvas takes the painted mask. Once, not per stroke: preparing
/// decodes the whole image.
pub fn show_masks_when_editors_close(studio: Studio) {
    Effect::new(move |previous: Option<Option<u32>>| {
        let open = studio.mask_open.get();
        if let Some(Some(closed)) = previous {
            if open != Some(closed) {
                refresh_kept(studio, closed);
            }
        }
        open
    });
}

fn refresh_kept(studio: Studio, id: u32) {
    let Some(files) = studio
        .conditions
        .with_untracked(|list| list.iter().find(|c| c.id == id).map(|c| c.files.clone()))
    else {
        return;
    };
    if files.mask.is_none() {
        return;
    }
    let url = kept_picture(&files)
        .and_then(|png| blob_url(&png, "image/png").ok())
        .unwrap_or_default();
    studio.conditions.update(|list| {
        if let Some(entry) = list.iter_mut().find(|c| c.id == id) {
            if !entry.kept.is_empty() {
                revoke_url(&entry.kept);
            }
            entry.kept = url;
        }
    });
}

/// The open editor, for the condition with id `id` (see `Studio::mask_open`).
#[component]
pub fn MaskEditor(studio: Studio, id: u32) -> impl IntoView {
    let found = studio.conditions.with_untracked(|list| {
        list.iter()
            .position(|c| c.id == id)
            .map(|i| (i + 1, list[i].files.clone()))
    });
    let Some((number, files)) = found else {
        return ().into_any();
    };
    let decoded = match decode_image(&files.image, &files.label) {
        Ok(decoded) => decoded,
        Err(e) => {
            return view! { <p class="status" data-state="error">{e.to_string()}</p> }.into_any()
        }
    };
    // Start from the mask painted before, else from the image's transparency.
    let start = files
        .mask
        .as_deref()
        .and_then(|m| decode_mask(m, "mask").ok())
        .or_else(|| decoded.implied_mask());
    let painting =
        MaskPainting::for_image(decoded.rgb.width(), decoded.rgb.height(), start.as_ref());
    let picture = decoded.rgb.resized(painting.width(), painting.height());
    let (width, height) = (painting.width(), painting.height());
    let kept = RwSignal::new(painting.kept_fraction());
    let sheet = StoredValue::new(Sheet { painting, picture });
    let keeps = RwSignal::new(true);
    let radius = RwSignal::new((width.max(height) as f64 / 16.0).round().max(2.0));
    let canvas = NodeRef::<Canvas>::new();
    let last = StoredValue::new(None::<(f64, f64)>);

    let redraw = move || {
        let Some(canvas) = canvas.get_untracked() else {
            return;
        };
        let rgba = sheet.with_value(|s| s.painting.overlay(&s.picture));
        draw_rgba(&canvas, &rgba, width, height);
    };
    Effect::new(move |_| {
        if canvas.get().is_some() {
            redraw();
        }
    });
    // The stroke's end: the painting becomes the condition's mask file.
    let commit = move || {
        let png = sheet.with_value(|s| s.painting.to_png());
        kept.set(sheet.with_value(|s| s.painting.kept_fraction()));
        studio.conditions.update(|list| {
            if let Some(entry) = list.iter_mut().find(|c| c.id == id) {
                let f = &entry.files;
                entry.files = Arc::new(ConditionFiles::new(
                    &f.label,
                    f.name.clone(),
                    f.image.clone(),
                    Some(png),
                ));
            }
        });
    };
    let grid_point = move |ev: &web_sys::PointerEvent| -> Option<(f64, f64)> {
        let rect = canvas.get_untracked()?.get_bounding_client_rect();
        if rect.width() <= 0.0 || rect.height() <= 0.0 {
            return None;
        }
        Some((
            (ev.client_x() as f64 - rect.left()) / rect.width() * width as f64,
            (ev.client_y() as f64 - rect.top()) / rect.height() * height as f64,
        ))
    };
    let paint_to = move |point: (f64, f64)| {
        let from = last.get_value().unwrap_or(point);
        let (r, keep) = (radius.get_untracked(), keeps.get_untracked());
        sheet.update_value(|s| s.painting.stroke(from, point, r, keep));
        last.set_value(Some(point));
        redraw();
    };
    let end_stroke = move || {
        if last.get_value().is_some() {
            last.set_value(None);
            commit();
        }
    };
    let fill = move |keep: bool| {
        sheet.update_value(|s| s.painting.fill(keep));
        redraw();
        commit();
    };

    view! {
        <div class="mask-editor" role="group" aria-labelledby="mask-title">
            <h3 id="mask-title">{format!("Mask of condition {number}")}</h3>
            <p class="hint">
                "Paint what to keep; the rest of the condition is discarded and grown anew. \
                 Dimmed: discarded. Darker: outside the centred square a run uses."
            </p>
            <canvas
                node_ref=canvas
                class="mask-canvas"
                width=width.to_string()
                height=height.to_string()
                aria-label=format!("Mask of condition {number}: paint with the pointer")
                on:pointerdown=move |ev: web_sys::PointerEvent| {
                    ev.prevent_default();
                    if let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                        let _ = target.set_pointer_capture(ev.pointer_id());
                    }
                    if let Some(point) = grid_point(&ev) {
                        last.set_value(None);
                        paint_to(point);
                    }
                }
                on:pointermove=move |ev: web_sys::PointerEvent| {
                    if last.get_value().is_some() {
                        if let Some(point) = grid_point(&ev) {
                            paint_to(point);
                        }
                    }
                }
                on:pointerup=move |_| end_stroke()
                on:pointercancel=move |_| end_stroke()
            ></canvas>
            <div class="row tight" role="radiogroup" aria-label="The brush">
                <label class="check">
                    <input
                        type="radio"
                        name="mask-brush"
                        prop:checked=move || keeps.get()
                        on:change=move |_| keeps.set(true)
                    />
                    "Brush keeps"
                </label>
                <label class="check">
                    <input
                        type="radio"
                        name="mask-brush"
                        prop:checked=move || !keeps.get()
                        on:change=move |_| keeps.set(false)
                    />
                    "Brush discards"
                </label>
            </div>
            <label class="mini-field" for="mask-brush-size">
                <span>"Brush size"</span>
                <input
                    id="mask-brush-size"
                    type="range"
                    min="1"
                    max=(width.max(height) / 4).max(2).to_string()
                    prop:value=move || radius.get().to_string()
                    on:input=move |ev| {
                        if let Ok(r) = event_target_value(&ev).parse::<f64>() {
                            radius.set(r);
                        }
                    }
                />
            </label>
            <div class="row tight">
                <button type="button" on:click=move |_| fill(true)>"Keep everything"</button>
                <button type="button" on:click=move |_| fill(false)>"Keep nothing"</button>
                <button type="button" class="primary" on:click=move |_| studio.mask_open.set(None)>
                    "Done"
                </button>
            </div>
            <p class="hint" id="mask-kept" role="status">
                {move || format!("{:.0} % of the used square is kept.", kept.get() * 100.0)}
            </p>
        </div>
    }
    .into_any()
}
