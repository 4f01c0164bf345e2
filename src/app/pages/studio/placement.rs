//! The canvas: each condition's box (drag it to move it, drag its corner to resize it, or
//! focus it and use the arrow keys: Shift resizes), and the plan's overlays: each condition's
//! related region (dashed) and the intensified prompt, which the user may edit. Positions are
//! set through the CSSOM (`style:` below), which the page's CSP allows.

use leptos::html::Div;
use leptos::prelude::*;

use super::state::{ConditionEntry, Studio};
use crate::imaging::{PixelRect, SquareBox};

/// What a drag moves.
#[derive(Clone, Copy, Debug)]
enum DragMode {
    Move,
    Resize,
}

/// A drag in progress.
#[derive(Clone, Copy, Debug)]
struct Drag {
    id: u32,
    mode: DragMode,
    /// Where the pointer went down (client pixels).
    start: (f64, f64),
    /// The box then.
    from: SquareBox,
    /// Canvas pixels per client pixel.
    scale: f64,
}

/// Snaps to the grid of 8 pixels boxes live on (docs/method.md §2.1).
fn snap(v: f64) -> i64 {
    (v / 8.0).round() as i64 * 8
}

/// The box a drag makes, kept inside the canvas and at least one latent cell wide.
fn dragged(drag: &Drag, dx: f64, dy: f64, canvas: usize) -> SquareBox {
    let canvas = canvas as i64;
    let (dx, dy) = (dx * drag.scale, dy * drag.scale);
    let b = drag.from;
    match drag.mode {
        DragMode::Move => {
            let side = b.side as i64;
            let x = (b.x as i64 + snap(dx)).clamp(0, canvas - side);
            let y = (b.y as i64 + snap(dy)).clamp(0, canvas - side);
            SquareBox::new(x as usize, y as usize, b.side)
        }
        DragMode::Resize => {
            let grow = snap(dx.max(dy));
            let room = canvas - (b.x.max(b.y) as i64);
            let side = (b.side as i64 + grow).clamp(8, room);
            SquareBox::new(b.x, b.y, side as usize)
        }
    }
}

/// Percent of the canvas, for CSS.
fn percent(v: i64, canvas: usize) -> String {
    format!("{:.4}%", v as f64 * 100.0 / canvas as f64)
}

/// The placement panel.
#[component]
pub fn PlacementPanel(studio: Studio) -> impl IntoView {
    let area = NodeRef::<Div>::new();
    let drag = StoredValue::new(None::<Drag>);

    let start_drag = move |ev: &web_sys::PointerEvent, id: u32, mode: DragMode, from: SquareBox| {
        if studio.busy() {
            return;
        }
        let Some(area) = area.get() else { return };
        let width = area.get_bounding_client_rect().width().max(1.0);
        ev.prevent_default();
        ev.stop_propagation();
        if let Some(target) = ev.target() {
            use wasm_bindgen::JsCast;
            if let Ok(element) = target.dyn_into::<web_sys::Element>() {
                let _ = element.set_pointer_capture(ev.pointer_id());
            }
        }
        drag.set_value(Some(Drag {
            id,
            mode,
            start: (ev.client_x() as f64, ev.client_y() as f64),
            from,
            scale: studio.canvas() as f64 / width,
        }));
    };
    let move_drag = move |ev: web_sys::PointerEvent| {
        if let Some(d) = drag.get_value() {
            let dx = ev.client_x() as f64 - d.start.0;
            let dy = ev.client_y() as f64 - d.start.1;
            studio.place(d.id, dragged(&d, dx, dy, studio.canvas()), true);
        }
    };
    let end_drag = move |_| drag.set_value(None);

    let boxes = move || {
        let canvas = studio.canvas();
        studio
            .conditions
            .get()
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let ConditionEntry { id, placement: b, .. } = entry.clone();
                let on_key = move |ev: leptos::ev::KeyboardEvent| {
                    let (dx, dy) = match ev.key().as_str() {
                        "ArrowLeft" => (-8.0, 0.0),
                        "ArrowRight" => (8.0, 0.0),
                        "ArrowUp" => (0.0, -8.0),
                        "ArrowDown" => (0.0, 8.0),
                        _ => return,
                    };
                    ev.prevent_default();
                    let mode = if ev.shift_key() { DragMode::Resize } else { DragMode::Move };
                    let d = Drag { id, mode, start: (0.0, 0.0), from: b, scale: 1.0 };
                    studio.place(id, dragged(&d, dx, dy, canvas), true);
                };
                view! {
                    <div
                        class="placed"
                        role="button"
                        tabindex="0"
                        aria-label=format!(
                            "Condition {} at x {}, y {}, side {}: drag, or use the arrow keys (Shift resizes)",
                            index + 1, b.x, b.y, b.side
                        )
                        style:left=percent(b.x as i64, canvas)
                        style:top=percent(b.y as i64, canvas)
                        style:width=percent(b.side as i64, canvas)
                        style:height=percent(b.side as i64, canvas)
                        on:pointerdown=move |ev| start_drag(&ev, id, DragMode::Move, b)
                        on:pointermove=move_drag
                        on:pointerup=end_drag
                        on:pointercancel=end_drag
                        on:keydown=on_key
                    >
                        // What the run keeps (the painted mask's discards show the canvas).
                        <img
                            src=if entry.kept.is_empty() { entry.thumbnail.clone() } else { entry.kept.clone() }
                            alt=""
                            draggable="false"
                        />
                        <span class="placed-label">{index + 1}</span>
                        <span
                            class="resize-handle"
                            aria-hidden="true"
                            on:pointerdown=move |ev| start_drag(&ev, id, DragMode::Resize, b)
                            on:pointermove=move_drag
                            on:pointerup=end_drag
                        ></span>
                    </div>
                }
            })
            .collect_view()
    };

    let related = move || {
        let canvas = studio.canvas();
        studio.plan.get().map(|plan| {
            plan.conditions
                .iter()
                .flat_map(|c| c.related.clone())
                .filter_map(|r: PixelRect| r.clip(canvas))
                .map(|r| {
                    view! {
                        <div
                            class="related"
                            aria-hidden="true"
                            style:left=percent(r.x, canvas)
                            style:top=percent(r.y, canvas)
                            style:width=percent(r.w, canvas)
                            style:height=percent(r.h, canvas)
                        ></div>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <section class="panel" aria-labelledby="placement-title">
            <h2 id="placement-title">"Placement"</h2>
            <div class="placement" node_ref=area aria-label="Placement on the canvas" role="group">
                {related}
                {boxes}
                <Show when=move || studio.conditions.with(Vec::is_empty)>
                    <p class="placement-empty">"Add a condition to place it here."</p>
                </Show>
            </div>
            <p class="hint">
                {move || format!(
                    "The {0} × {0} px canvas. Dashed: the region the plan relates to a condition.",
                    studio.canvas()
                )}
            </p>
            <PlanView studio/>
        </section>
    }
}

/// The plan on screen: where it came from, its notice, the intensified prompt (editable).
#[component]
fn PlanView(studio: Studio) -> impl IntoView {
    view! {
        <Show when=move || studio.plan.with(Option::is_some)>
            <div class="plan" id="plan">
                <p class="hint" id="plan-source">
                    {move || studio.plan.with(|p| p.as_ref().map(|p| p.source.to_string()))}
                </p>
                <div class="field">
                    <label for="plan-prompt">"Intensified prompt (used for the run)"</label>
                    <textarea
                        id="plan-prompt"
                        rows="3"
                        prop:value=move || studio.plan.with(|p| p.as_ref().map(|p| p.prompt.clone()).unwrap_or_default())
                        on:input=move |ev| {
                            let text = event_target_value(&ev);
                            studio.plan.update(|p| if let Some(p) = p { p.prompt = text });
                        }
                    ></textarea>
                </div>
                <button type="button" disabled=move || studio.busy() on:click=move |_| studio.plan.set(None)>
                    "Discard the plan"
                </button>
            </div>
        </Show>
    }
}
