//! The Studio page (the landing page): visual conditions and their boxes on the canvas, the
//! prompt and every option of the run, the plan, the run with progress, preview and Cancel,
//! the result with its PNG and "reuse these parameters", and the history.
//!
//! Parts: [`conditions`] adds and lists the conditions, [`mask`] paints a condition's mask; [`placement`] draws the canvas with
//! the boxes (drag to move, the corner to resize, arrow keys) and the plan's overlays;
//! [`options`] is the form; [`run`] plans and runs on the loaded model; [`results`] shows
//! the result and the history.

mod conditions;
mod mask;
mod options;
mod placement;
mod results;
mod run;
mod state;

use leptos::prelude::*;

use crate::app::webgpu::GpuNotice;

pub use state::Studio;

/// The Studio page.
#[component]
pub fn StudioPage() -> impl IntoView {
    let studio = Studio::new();
    provide_context(studio);
    results::restore_history(studio);
    view! {
        <h1 class="page-title">"Studio"</h1>
        <p class="lede">
            "Give Stable Diffusion a visual condition (a face, part of a cat or a car) and a \
             prompt: it grows a whole image around the condition that keeps its pixels and \
             identity while following the text."
        </p>
        <GpuNotice/>
        <div class="studio">
            <div class="studio-inputs">
                <conditions::ConditionsPanel studio/>
                <placement::PlacementPanel studio/>
                <options::OptionsPanel studio/>
                <options::AdvancedPanel studio/>
            </div>
            <div class="studio-outputs">
                <run::RunPanel studio/>
                <results::ResultPanel studio/>
                <results::HistoryPanel studio/>
            </div>
        </div>
    }
}
